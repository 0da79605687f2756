// The per-step recurrent path: after each step's recurrent product, one thread per
// (direction, utterance, unit) applies the cell and writes h.
#include "cuda/rnn.cuh"

namespace ds2rt::detail::cuda {

namespace {

struct StepIndex {
  int dir;
  int64_t b, j, t;
  bool active;
};

__device__ __forceinline__ StepIndex stepIndex(const RecurrenceArgs& a, int64_t step, int64_t i) {
  StepIndex s;
  s.dir = static_cast<int>(i / (a.n * a.h));
  s.b = (i / a.h) % a.n;
  s.j = i % a.h;
  const int64_t len = a.lengths[s.b];
  s.active = step < len;
  s.t = (a.reverse_only || s.dir == 1) ? len - 1 - step : step;
  return s;
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
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= a.dirs * a.n * a.h) return;
  const StepIndex s = stepIndex(a, step, i);
  if (!s.active) return;
  float x[4], r[4];
  loadInputs(a, s, recurrent, x, r);
  const float b_hn = a.hidden_bias ? a.hidden_bias[s.dir * a.h + s.j] : 0.0f;
  const float next = cellStep(a.cell, x, r, b_hn, h[i], c[i]);
  h[i] = next;
  h_typed[i] = fromFloat<T>(next);
  static_cast<T*>(a.output)[(s.t * a.n + s.b) * a.out_width + s.dir * a.column_stride + s.j] = fromFloat<T>(next);
}

template <typename T>
__global__ void resetHiddenKernel(RecurrenceArgs a, int64_t step, const float* recurrent, const float* h, T* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= a.dirs * a.n * a.h) return;
  const StepIndex s = stepIndex(a, step, i);
  if (!s.active) return;
  float x[4], r[4];
  loadInputs(a, s, recurrent, x, r);
  out[i] = fromFloat<T>(sigmoidf(x[0] + r[0]) * h[i]);
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
  const int64_t total = a.dirs * a.n * a.h;
  dispatchType(type, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    cellStepKernel<T><<<blocksFor(total), 256, 0, stream>>>(a, step, recurrent, h, c, static_cast<T*>(h_typed));
  });
  DS2RT_CUDA_LAUNCHED();
}

void launchResetHidden(const RecurrenceArgs& a, int64_t step, const float* recurrent, const float* h,
                       void* reset_hidden, DataType type, cudaStream_t stream) {
  const int64_t total = a.dirs * a.n * a.h;
  dispatchType(type, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    resetHiddenKernel<T><<<blocksFor(total), 256, 0, stream>>>(a, step, recurrent, h, static_cast<T*>(reset_hidden));
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
