// The sequential part of a recurrent layer on the CPU: one time step of h W^T fused with the gate
// math, over the units of a range of 16-unit blocks. The recurrent matrix is packed so that a
// block's gates sit side by side ([block][k][gate][16 units]): one pass over the weights gives
// every gate of those units, and the cell update follows while the sums are still in registers.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "ds2rt/weights.h"

namespace ds2rt::detail::cpu {

constexpr int kUnitBlock = 16;  // one AVX-512 register of float32

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// A G*H x H recurrent matrix (canonical gate layout), packed for recurrentStep().
struct PackedRecurrent {
  int gates = 0;
  int64_t hidden = 0;
  int64_t blocks = 0;  // ceil(hidden / 16); units past `hidden` have zero weights
  std::unique_ptr<float[], AlignedFree> data;
};
PackedRecurrent packRecurrent(const float* weight, int gates, int64_t hidden);

struct StepArgs {
  RNNCell cell = RNNCell::kLSTM;
  int64_t hidden = 0;
  int64_t rows = 0;              // active utterances: rows 0..rows-1 of the state buffers
  const float* h_prev = nullptr;  // rows x hidden
  float* h_next = nullptr;        // rows x hidden
  float* c = nullptr;             // rows x hidden (LSTM), updated in place
  const float* const* x = nullptr;  // per row: its input projection at this step (G*H, canonical gates)
  float* const* y = nullptr;        // per row: where its new h goes (hidden floats)
  const float* bias = nullptr;      // G*H added to the projection (input + foldable recurrent biases)
  const float* hidden_bias = nullptr;  // H: GRU's b_hn, inside r * (W_hn h + b_hn)
  int64_t block_begin = 0, block_end = 0;  // 16-unit blocks this call computes
};

// Whether this CPU runs recurrentStep() (AVX-512F); callers fall back to GEMM + scalar cells.
bool haveFusedRecurrentStep();
// One time step. GRU must be linear-before-reset (PyTorch/cuDNN semantics).
void recurrentStep(const PackedRecurrent& w, const StepArgs& args);

}  // namespace ds2rt::detail::cpu
