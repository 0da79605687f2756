// The recurrent cell equations, shared by the per-step and the persistent RNN kernels.
// Gates in the canonical order (LSTM i, f, g, o; GRU r, z, n); `x` holds the input projection
// with its biases, `r` the recurrent product R h.
#pragma once

#include "cuda/common.cuh"

namespace ds2rt::detail::cuda {

struct CellParams {
  RNNCell cell = RNNCell::kLSTM;
  bool linear_before_reset = true;
};

// Updates h (and c for LSTM) of one unit. For a GRU without linear-before-reset, r[2] must
// already hold R_n (reset * h) (computed by a second product).
__device__ __forceinline__ float cellStep(const CellParams& p, const float* x, const float* r, float b_hn, float h,
                                          float& c) {
  switch (p.cell) {
    case RNNCell::kRNNTanh: return tanhf(x[0] + r[0]);
    case RNNCell::kRNNRelu: return fmaxf(x[0] + r[0], 0.0f);
    case RNNCell::kLSTM: {
      const float i = sigmoidf(x[0] + r[0]), f = sigmoidf(x[1] + r[1]);
      const float g = tanhf(x[2] + r[2]), o = sigmoidf(x[3] + r[3]);
      c = f * c + i * g;
      return o * tanhf(c);
    }
    case RNNCell::kGRU: {
      const float reset = sigmoidf(x[0] + r[0]), update = sigmoidf(x[1] + r[1]);
      const float n = tanhf(p.linear_before_reset ? x[2] + reset * (r[2] + b_hn) : x[2] + r[2]);
      return (1.0f - update) * n + update * h;
    }
  }
  return 0.0f;
}

}  // namespace ds2rt::detail::cuda
