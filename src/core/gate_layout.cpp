// Gate orders of each framework and the reordering of recurrent weights between them.
#include <algorithm>
#include <cstring>

#include "core/file.h"
#include "ds2rt/error.h"
#include "ds2rt/weights.h"

namespace ds2rt {

int gateCount(RNNCell cell) {
  switch (cell) {
    case RNNCell::kLSTM: return 4;
    case RNNCell::kGRU: return 3;
    default: return 1;
  }
}

const char* toString(RNNCell cell) {
  switch (cell) {
    case RNNCell::kRNNTanh: return "rnn_tanh";
    case RNNCell::kRNNRelu: return "rnn_relu";
    case RNNCell::kLSTM: return "lstm";
    case RNNCell::kGRU: return "gru";
  }
  return "?";
}

const char* toString(Gate gate) {
  static const char* const names[] = {"input", "forget", "cell", "output", "update", "reset", "hidden"};
  return names[static_cast<int>(gate)];
}

const char* toString(GateLayout layout) {
  static const char* const names[] = {"canonical", "pytorch", "cudnn", "onnx", "keras", "tf1"};
  return names[static_cast<int>(layout)];
}

std::vector<Gate> gateOrder(RNNCell cell, GateLayout layout) {
  using G = Gate;
  if (cell == RNNCell::kRNNTanh || cell == RNNCell::kRNNRelu) return {G::kInput};
  if (cell == RNNCell::kLSTM) {
    switch (layout) {
      case GateLayout::kONNX: return {G::kInput, G::kOutput, G::kForget, G::kCell};
      case GateLayout::kTF1: return {G::kInput, G::kCell, G::kForget, G::kOutput};  // i, j, f, o
      default: return {G::kInput, G::kForget, G::kCell, G::kOutput};  // PyTorch, cuDNN, Keras
    }
  }
  switch (layout) {  // GRU
    case GateLayout::kONNX:
    case GateLayout::kKeras: return {G::kUpdate, G::kReset, G::kHidden};
    case GateLayout::kTF1: fail("TensorFlow 1 GRUCell stores gates in two kernels; convert them with the Keras layout");
    default: return {G::kReset, G::kUpdate, G::kHidden};  // PyTorch, cuDNN
  }
}

namespace {

// out block `to_pos[g]` <- in block g, along `axis` of a rank-1 or rank-2 tensor. The order
// already right (PyTorch's into canonical): the float32 tensor itself, without a copy.
HostTensor permuteBlocks(const HostTensor& tensor, const std::vector<int>& to_pos, int axis) {
  const HostTensor in = tensor.toFloat32();
  const int gates = static_cast<int>(to_pos.size());
  check(in.rank() == 1 || in.rank() == 2, "gate reordering needs a rank-1 or rank-2 tensor, got ", toString(in.shape()));
  check(axis >= 0 && axis < static_cast<int>(in.rank()), "gate axis ", axis, " out of range for ", toString(in.shape()));
  const int64_t extent = in.dim(axis);
  check(extent % gates == 0, "tensor ", toString(in.shape()), " axis ", axis, " is not a multiple of ", gates, " gates");
  const int64_t block = extent / gates;
  bool identity = true;
  for (int g = 0; g < gates; ++g) identity = identity && to_pos[g] == g;
  if (identity) return in;
  HostTensor out(DataType::kFloat32, in.shape());
  const float* src = in.data<float>();
  float* dst = out.mutableData<float>();
  if (axis == 0) {
    const int64_t row = in.rank() == 2 ? in.dim(1) : 1;
    for (int g = 0; g < gates; ++g)
      std::memcpy(dst + to_pos[g] * block * row, src + g * block * row, sizeof(float) * block * row);
  } else {
    const int64_t rows = in.dim(0);
    for (int64_t r = 0; r < rows; ++r)
      for (int g = 0; g < gates; ++g)
        std::memcpy(dst + r * extent + to_pos[g] * block, src + r * extent + g * block, sizeof(float) * block);
  }
  detail::releaseMappedPages(tensor.data(), tensor.bytes());  // a model file's original: the copy replaces it
  return out;
}

std::vector<int> positions(const std::vector<Gate>& from, const std::vector<Gate>& to) {
  std::vector<int> pos;
  for (Gate g : from) pos.push_back(static_cast<int>(std::find(to.begin(), to.end(), g) - to.begin()));
  return pos;
}

}  // namespace

HostTensor toCanonicalGates(const HostTensor& tensor, RNNCell cell, GateLayout from, int axis) {
  return permuteBlocks(tensor, positions(gateOrder(cell, from), gateOrder(cell, GateLayout::kCanonical)), axis);
}

HostTensor fromCanonicalGates(const HostTensor& tensor, RNNCell cell, GateLayout to, int axis) {
  return permuteBlocks(tensor, positions(gateOrder(cell, GateLayout::kCanonical), gateOrder(cell, to)), axis);
}

HostTensor transpose2d(const HostTensor& tensor) {
  const HostTensor in = tensor.toFloat32();
  check(in.rank() == 2, "transpose2d needs a rank-2 tensor, got ", toString(in.shape()));
  const int64_t rows = in.dim(0), cols = in.dim(1);
  HostTensor out(DataType::kFloat32, {cols, rows});
  const float* src = in.data<float>();
  float* dst = out.mutableData<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
  detail::releaseMappedPages(tensor.data(), tensor.bytes());  // a model file's original: the copy replaces it
  return out;
}

}  // namespace ds2rt
