// The cell update of the general recurrent path: any gate functions, a clip and LSTM peepholes
// (what ONNX's LSTM, GRU and RNN operators can ask for), one utterance's row at a time. The plain
// cells take the fused AVX-512 step (rnn_cell_avx512.cpp) or the scalar loop in rnn.cpp.
#pragma once

#include <cstdint>

#include "ds2rt/network.h"

namespace ds2rt::detail::cpu {

class GeneralCell {
 public:
  GeneralCell(const RNNDesc& desc, int direction);

  // The gate function f of a pre-activation (clipped first): GRU's reset gate before the
  // candidate GEMM of the not-linear-before-reset form needs it alone.
  float gate(float pre) const { return f_.apply(clipped(pre)); }

  // x and g: the input and recurrent parts of the pre-activations (G*H, canonical gates, biases
  // folded into x). peephole: 3*H (i, f, o) or null. h and c are updated in place.
  void lstm(const float* x, const float* g, const float* peephole, float* h, float* c) const;
  // b_hn: the hidden bias kept inside r * (W_hn h + b_hn) when linear before reset; otherwise g's
  // third block already holds W_hn (r * h).
  void gru(const float* x, const float* g, const float* b_hn, bool linear_before_reset, float* h) const;
  void vanilla(const float* x, const float* g, float* h) const;

 private:
  float clipped(float v) const { return clip_ > 0 ? (v < -clip_ ? -clip_ : v > clip_ ? clip_ : v) : v; }

  int64_t hidden_;
  float clip_;
  RNNActivation f_, g_, h_;
};

}  // namespace ds2rt::detail::cpu
