// The per-step recurrent path: after each step's recurrent product, one thread per
// (direction, utterance, unit) applies the cell and writes h.
#include "cuda/rnn.cuh"

namespace ds2rt::detail::cuda {

namespace {

// The grid: x over the hidden units, y over (direction, utterance), so that a thread finds its
// place without 64-bit divisions (they cost more than the cell itself at batch 64).
struct StepIndex {
  int dir;
  int64_t b, j, t;
  int64_t state;  // index into the dirs x N x H state buffers
  bool active;
};

__device__ __forceinline__ StepIndex stepIndex(const RecurrenceArgs& a, int64_t step) {
  StepIndex s;
  const int row = static_cast<int>(blockIdx.y);  // dir * N + b
  s.dir = row / static_cast<int>(a.n);
  s.b = row - s.dir * a.n;
  s.j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  s.state = row * a.h + s.j;
  const int64_t len = a.lengths[s.b];
  s.active = s.j < a.h && step < len;
  s.t = (a.reverse_only || s.dir == 1) ? len - 1 - step : step;
  return s;
}

dim3 stepGrid(const RecurrenceArgs& a) {
  return dim3(blocksFor(a.h), static_cast<unsigned>(a.dirs * a.n));
}

__device__ __forceinline__ void loadInputs(const RecurrenceArgs& a, const StepIndex& s, const float* recurrent,
                                           float* x, float* r) {
  const int64_t gh = a.gates * a.h;
  const float* p = a.projection + (s.t * a.n + s.b) * a.dirs * gh + s.dir * gh + s.j;
  const float* bias = a.bias + s.dir * gh + s.j;
  const float* rec = recurrent + (s.dir * a.n + s.b) * gh + s.j;
  for (int g = 0; g < a.gates; ++g) {
    x[g] = p[g * a.h] + bias[g * a.h];
    r[g] = rec[g * a.h];
  }
}

template <typename T>
__global__ void cellStepKernel(RecurrenceArgs a, int64_t step, const float* recurrent, float* h, float* c, T* h_typed) {
  const StepIndex s = stepIndex(a, step);
  if (!s.active) return;
  float x[4], r[4];
  loadInputs(a, s, recurrent, x, r);
  const float b_hn = a.hidden_bias ? a.hidden_bias[s.dir * a.h + s.j] : 0.0f;
  // fp16/bf16 layers round h to 16 bits for the next product: the fast activations suffice. (A
  // tf32 layer is T = float here, like exact fp32, and keeps the accurate ones.)
  const float next = cellStep<!std::is_same_v<T, float>>(a.cell, x, r, b_hn, h[s.state], c[s.state]);
  h[s.state] = next;
  h_typed[s.state] = fromFloat<T>(next);
  static_cast<T*>(a.output)[(s.t * a.n + s.b) * a.out_width + s.dir * a.column_stride + s.j] = fromFloat<T>(next);
}

template <typename T>
__global__ void resetHiddenKernel(RecurrenceArgs a, int64_t step, const float* recurrent, const float* h, T* out) {
  const StepIndex s = stepIndex(a, step);
  if (!s.active) return;
  float x[4], r[4];
  loadInputs(a, s, recurrent, x, r);
  out[s.state] = fromFloat<T>(sigmoidf(x[0] + r[0]) * h[s.state]);
}

template <typename T>
__global__ void sumDirectionsKernel(const T* concat, T* out, int64_t rows, int64_t h) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows * h) return;
  const int64_t row = i / h, j = i % h;
  out[i] = fromFloat<T>(toFloat(concat[row * 2 * h + j]) + toFloat(concat[row * 2 * h + h + j]));
}

}  // namespace

void launchCellStep(const RecurrenceArgs& a, int64_t step, const float* recurrent, float* h, float* c, void* h_typed,
                    DataType type, cudaStream_t stream) {
  dispatchType(type, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    cellStepKernel<T><<<stepGrid(a), 256, 0, stream>>>(a, step, recurrent, h, c, static_cast<T*>(h_typed));
  });
  DS2RT_CUDA_LAUNCHED();
}

void launchResetHidden(const RecurrenceArgs& a, int64_t step, const float* recurrent, const float* h,
                       void* reset_hidden, DataType type, cudaStream_t stream) {
  dispatchType(type, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    resetHiddenKernel<T><<<stepGrid(a), 256, 0, stream>>>(a, step, recurrent, h, static_cast<T*>(reset_hidden));
  });
  DS2RT_CUDA_LAUNCHED();
}

void launchSumDirections(const void* concat, void* out, int64_t rows, int64_t h, DataType type, cudaStream_t stream) {
  dispatchType(type, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    sumDirectionsKernel<T><<<blocksFor(rows * h), 256, 0, stream>>>(static_cast<const T*>(concat), static_cast<T*>(out),
                                                                    rows, h);
  });
  DS2RT_CUDA_LAUNCHED();
}

}  // namespace ds2rt::detail::cuda
