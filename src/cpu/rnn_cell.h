// The sequential part of a recurrent layer on the CPU: one time step of h W^T fused with the gate
// math, over the units of a range of 16-unit blocks. The recurrent matrix is packed so that a
// block's gates sit side by side ([block][k][gate][16 units]): one pass over the weights gives
// every gate of those units, and the cell update follows while the sums are still in registers.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "ds2rt/error.h"
#include "ds2rt/weights.h"

namespace ds2rt::detail::cpu {

constexpr int kUnitBlock = 16;  // one AVX-512 register of float32

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// `count` elements on a 64-byte boundary (the packed weights' layout), for the packers.
template <typename T>
std::unique_ptr<T[], AlignedFree> alignedArray(int64_t count) {
  std::unique_ptr<T[], AlignedFree> p(
      static_cast<T*>(std::aligned_alloc(64, (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64)));
  check(p != nullptr, "out of memory packing a recurrent matrix");
  return p;
}

// A G*H x H recurrent matrix (canonical gate layout), packed for recurrentStep().
struct PackedRecurrent {
  int gates = 0;
  int64_t hidden = 0;
  int64_t blocks = 0;  // ceil(hidden / 16); units past `hidden` have zero weights
  std::unique_ptr<float[], AlignedFree> data;
};
PackedRecurrent packRecurrent(const float* weight, int gates, int64_t hidden);

// The same matrix in int8 for VNNI: [block][k/4][gate][16 units][4 k], symmetric per output row.
// Packed from the rows and row scales quantizeRows gives (the AMX step reuses the same rows).
struct PackedRecurrentInt8 {
  int gates = 0;
  int64_t hidden = 0, blocks = 0, depth = 0;  // depth: hidden rounded up to 4
  std::unique_ptr<int8_t[], AlignedFree> data;
  std::unique_ptr<float[], AlignedFree> scale;     // [block][gate][16]: weight scale per output
  std::unique_ptr<int32_t[], AlignedFree> offset;  // [block][gate][16]: 128 * sum_k q, the u8 zero point's share
};
PackedRecurrentInt8 packRecurrentInt8(const int8_t* q, const float* row_scale, int gates, int64_t hidden);

// The same matrix in bf16 pairs for vdpbf16ps: [block][k/2][gate][16 units][2 k].
struct PackedRecurrentBF16 {
  int gates = 0;
  int64_t hidden = 0, blocks = 0, depth = 0;  // depth: hidden rounded up to 2
  std::unique_ptr<uint16_t[], AlignedFree> data;
};
PackedRecurrentBF16 packRecurrentBF16(const float* weight, int gates, int64_t hidden);

// Symmetric int8 quantisation of a rows x cols matrix, one scale per row: q = round(w / scale).
void quantizeRows(const float* w, int64_t rows, int64_t cols, int8_t* q, float* scale);
// Activations to u8 with zero point 128 and one scale per row (x ~ scale * (q - 128)); cols..ld-1 get 128.
// AVX-512 code: int8 engines only (they need AVX512_VNNI).
void quantizeActivations(const float* x, int64_t rows, int64_t cols, int64_t ld_x, uint8_t* q, int64_t ld_q,
                         float* scale);

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
  // int8 only: this thread's room for h quantised (rows x depth bytes) and its row scales (rows)
  uint8_t* h_quantized = nullptr;
  float* h_scale = nullptr;
  uint16_t* h_bf16 = nullptr;  // bf16 only: this thread's room for h in bf16 (rows x depth)
  float* h_interleaved = nullptr;  // fp32 only: this thread's room for h regrouped (rows x hidden)
};

// Gates of a cell type at compile time (gateCount() at run time).
template <RNNCell C>
constexpr int kGates = C == RNNCell::kLSTM ? 4 : C == RNNCell::kGRU ? 3 : 1;

// Calls f.template operator()<C>() for C = cell: one switch per call, outside the kernels, which
// are instantiated per cell type. f: e.g. [&]<RNNCell C>() { step<C>(w, a); }.
template <typename F>
void dispatchCell(RNNCell cell, F&& f) {
  switch (cell) {
    case RNNCell::kLSTM: return f.template operator()<RNNCell::kLSTM>();
    case RNNCell::kGRU: return f.template operator()<RNNCell::kGRU>();
    case RNNCell::kRNNTanh: return f.template operator()<RNNCell::kRNNTanh>();
    case RNNCell::kRNNRelu: return f.template operator()<RNNCell::kRNNRelu>();
  }
}

// Whether this CPU has the AVX-512 that the DS2RT_AVX512 functions are compiled for (recurrentStep(),
// the FFT convolution's products); without it the recurrent layers fall back to GEMM + scalar cells
// and the convolutions stay on oneDNN.
bool haveAvx512();
// One time step. GRU must be linear-before-reset (PyTorch/cuDNN semantics).
void recurrentStep(const PackedRecurrent& w, const StepArgs& args);
// The same with int8 weights and h quantised per row at each step (needs AVX512_VNNI).
void recurrentStepInt8(const PackedRecurrentInt8& w, const StepArgs& args);
bool haveVnni();
// The same with bf16 weights and h converted to bf16 at each step, fp32 sums (needs haveBF16()).
void recurrentStepBF16(const PackedRecurrentBF16& w, const StepArgs& args);

}  // namespace ds2rt::detail::cpu
