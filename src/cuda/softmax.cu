#include "cuda/context.cuh"
#include "cuda/kernels.cuh"

namespace ds2rt::detail::cuda {

namespace {

// One warp per row; classes strided over the lanes.
template <typename T>
__global__ void softmaxKernel(const T* in, T* out, int64_t rows, int64_t classes, bool log) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const T* x = in + row * classes;
  T* y = out + row * classes;
  float peak = -INFINITY;
  for (int64_t c = lane; c < classes; c += 32) peak = fmaxf(peak, toFloat(x[c]));
  for (int offset = 16; offset > 0; offset /= 2) peak = fmaxf(peak, __shfl_xor_sync(0xffffffffu, peak, offset));
  float sum = 0;
  for (int64_t c = lane; c < classes; c += 32) sum += expf(toFloat(x[c]) - peak);
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  const float log_sum = logf(sum);
  for (int64_t c = lane; c < classes; c += 32) {
    const float shifted = toFloat(x[c]) - peak;
    y[c] = fromFloat<T>(log ? shifted - log_sum : expf(shifted) / sum);
  }
}

class SoftmaxKernel final : public TypedKernel {
 public:
  SoftmaxKernel(bool log, DataType type) : TypedKernel(type), log_(log) {}
  void run(const KernelIO& io, KernelState*) const override {
    const int64_t classes = io.input_shape.back(), rows = numElements(io.input_shape) / classes;
    dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      softmaxKernel<T><<<blocksFor(rows * 32), 256, 0, stream(io)>>>(io.in<T>(), io.out<T>(), rows, classes, log_);
    });
    DS2RT_CUDA_LAUNCHED();
  }
  bool inPlace() const override { return true; }
  std::string implementation() const override { return log_ ? "CUDA log-softmax (warp per frame)" : "CUDA softmax (warp per frame)"; }

 private:
  bool log_;
};

}  // namespace

std::unique_ptr<Kernel> makeSoftmax(bool log, DataType type) { return std::make_unique<SoftmaxKernel>(log, type); }

}  // namespace ds2rt::detail::cuda
