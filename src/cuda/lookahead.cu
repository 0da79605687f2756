// Lookahead (row) convolution: y[t] = act(sum_k w[k] * x[t + k]) per feature; frames past the
// utterance's end read as zero and come out as zero.
#include "cuda/context.cuh"
#include "cuda/kernels.cuh"

namespace ds2rt::detail::cuda {

namespace {

template <typename T>
__global__ void lookaheadKernel(const T* in, T* out, const float* weight, const int32_t* lengths, DeviceActivation act,
                                int64_t t, int64_t n, int64_t h, int64_t context) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= t * n * h) return;
  const int64_t f = i % h, b = (i / h) % n, step = i / (h * n);
  const int64_t valid = lengths[b];
  if (step >= valid) {
    out[i] = fromFloat<T>(0.0f);
    return;
  }
  const int64_t taps = min(context, valid - step);
  float sum = 0;
  for (int64_t k = 0; k < taps; ++k) sum += weight[f * context + k] * toFloat(in[((step + k) * n + b) * h + f]);
  out[i] = fromFloat<T>(act(sum));
}

class LookaheadKernel final : public TypedKernel {
 public:
  LookaheadKernel(const LookaheadDesc& d, DataType type)
      : TypedKernel(type), context_(d.weight.dim(1)), act_(d.activation), weight_(uploadAs(d.weight, DataType::kFloat32)) {}
  void run(const KernelIO& io, KernelState*) const override {
    const int64_t t = io.input_shape[0], n = io.input_shape[1], h = io.input_shape[2];
    dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      lookaheadKernel<T><<<blocksFor(t * n * h), 256, 0, stream(io)>>>(
          io.in<T>(), io.out<T>(), static_cast<const float*>(weight_.get()), io.lengths, act_, t, n, h, context_);
    });
    DS2RT_CUDA_LAUNCHED();
  }
  std::string implementation() const override { return "CUDA row convolution"; }

 private:
  int64_t context_;
  DeviceActivation act_;
  DeviceMemory weight_;
};

}  // namespace

std::unique_ptr<Kernel> makeLookahead(const LookaheadDesc& desc, DataType type) {
  return std::make_unique<LookaheadKernel>(desc, type);
}

}  // namespace ds2rt::detail::cuda
