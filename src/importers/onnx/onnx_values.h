// What the ONNX importer knows about each ONNX tensor while it walks the graph. Only the data path
// (features -> conv -> RNN -> FC -> softmax) becomes ds2rt layers; everything else is folded at
// import time, symbolically where it depends on the batch size N or the length T.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "ds2rt/network.h"

namespace ds2rt::onnx_import {

// A dimension: factor x a product of symbols ("N", "T", "NT"); known when there is no symbol.
struct Dim {
  int64_t factor = 1;
  std::string symbols;  // sorted
  bool known() const { return symbols.empty(); }
  bool operator==(const Dim&) const = default;
  Dim operator*(const Dim& other) const;
  std::string str() const;
};

// A constant computed at import time (initializers, Constant nodes and everything folded from them).
struct ConstValue {
  HostTensor tensor;
};

// An integer tensor of rank 0 or 1 whose values depend on N or T (what Shape, Gather, Concat and
// arithmetic on sizes give).
struct ShapeValue {
  std::vector<Dim> dims;
  bool scalar = false;
};

// ConstantOfShape of a symbolic shape (zero initial states, for one).
struct FillValue {
  std::vector<Dim> shape;
  double value = 0;
};

// Valid lengths, from a lengths input through integer arithmetic: floor((L + add) / divisor) + offset,
// possibly unsqueezed to `rank` with the batch on `batch_axis`.
struct LengthsValue {
  Tensor base;
  int64_t add = 0, divisor = 1, offset = 0;
  int rank = 1, batch_axis = 0;
};

// 0 .. T-1 over the time axis of a tensor (Range(0, T, 1)), possibly unsqueezed.
struct TimeIndexValue {
  int rank = 1, time_axis = 0;
};

// time index < lengths (keep = true) or its negation, broadcast over `rank` axes.
struct MaskValue {
  Tensor lengths;
  bool keep = true;
  int rank = 2, batch_axis = 0, time_axis = 1;
};

// One atom of a data tensor's memory layout: N, T, C (channels), F (frequency), D (directions) or
// H (features), with its size.
struct Atom {
  char name;
  Dim size;
};

// A ds2rt tensor seen through ONNX eyes: each ONNX axis is a group of atoms (empty for an axis of
// size 1), and `memory` is the order of the atoms in the ds2rt tensor. Transposes and reshapes only
// regroup and reorder; materialising turns the view into a ds2rt layout (reshape-to-sequence,
// batch-major) or fails.
struct NetValue {
  Tensor tensor;
  std::vector<Atom> memory;
  std::vector<std::vector<Atom>> axes;
  Tensor lengths;         // valid frames of the time axis, where known
  int pending_rnn = -1;   // index of a recurrent layer not added yet (its direction merge is open)
  int final_state_of = -1;  // the final state (Y_h) of that pending recurrent layer
  int final_cell_of = -1;   // the final cell state (Y_c) of that pending LSTM
  int64_t pad_end = 0;    // zero frames padded after the time axis (a lookahead's Pad)
  bool pending() const { return pending_rnn >= 0 || final_state_of >= 0 || final_cell_of >= 0; }
};

// A value that exists in the ONNX graph but that ds2rt cannot produce; an error if anything uses it.
struct UnsupportedValue {
  std::string reason;
};

using Value = std::variant<ConstValue, ShapeValue, FillValue, LengthsValue, TimeIndexValue, MaskValue, NetValue,
                           UnsupportedValue>;

}  // namespace ds2rt::onnx_import
