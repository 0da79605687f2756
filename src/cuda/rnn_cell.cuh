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

// The activations of a cell. Fast: for layers whose h is rounded to 16 bits for the next product
// anyway (fp16/bf16, and tf32 layers with fp16 products): one tanh.approx on the special-function
// unit (sm_75+; relative error at most 2^-10.99, as fp16's rounding of h; +-1 at the ends), the
// sigmoid as 0.5 + 0.5 tanh(x / 2). tanhf and the IEEE division are chains of dozens of dependent
// instructions, ex2 then a reciprocal two trips through that unit, and the cell is on the critical
// path of every step of the persistent kernels (H100, fp16 1 x 10 s against ex2 + reciprocal:
// biLSTM 5.27 -> 5.07 ms, biGRU 5.19 -> 5.04; the PyTorch fixtures' errors within 4%).
__device__ __forceinline__ float tanhApprox(float x) {
  float y;
  asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
template <bool Fast>
__device__ __forceinline__ float activationTanh(float x) {
  if constexpr (Fast) return tanhApprox(x);
  else return tanhf(x);
}
template <bool Fast>
__device__ __forceinline__ float activationSigmoid(float x) {
  if constexpr (Fast) return fmaf(0.5f, tanhApprox(0.5f * x), 0.5f);
  else return sigmoidf(x);
}

// Updates h (and c for LSTM) of one unit. For a GRU without linear-before-reset, r[2] must
// already hold R_n (reset * h) (computed by a second product).
// Gates: 4 or 3 fixes the cell at compile time (LSTM, GRU): no branch over cell types in the code
// of every step; 0 takes p.cell.
template <bool Fast = false, int Gates = 0>
__device__ __forceinline__ float cellStep(const CellParams& p, const float* x, const float* r, float b_hn, float h,
                                          float& c) {
  const auto sigmoid = activationSigmoid<Fast>;
  const auto tanh = activationTanh<Fast>;
  const RNNCell cell = Gates == 4 ? RNNCell::kLSTM : Gates == 3 ? RNNCell::kGRU : p.cell;
  switch (cell) {
    case RNNCell::kRNNTanh: return tanh(x[0] + r[0]);
    case RNNCell::kRNNRelu: return fmaxf(x[0] + r[0], 0.0f);
    case RNNCell::kLSTM: {
      const float i = sigmoid(x[0] + r[0]), f = sigmoid(x[1] + r[1]);
      const float g = tanh(x[2] + r[2]), o = sigmoid(x[3] + r[3]);
      c = f * c + i * g;
      return o * tanh(c);
    }
    case RNNCell::kGRU: {
      const float reset = sigmoid(x[0] + r[0]), update = sigmoid(x[1] + r[1]);
      const float n = tanh(p.linear_before_reset ? x[2] + reset * (r[2] + b_hn) : x[2] + r[2]);
      return (1.0f - update) * n + update * h;
    }
  }
  return 0.0f;
}

}  // namespace ds2rt::detail::cuda
