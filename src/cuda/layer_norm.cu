// Layer normalisation over the last axis: one warp per frame, statistics in float (two passes
// over the frame: mean, then the centred sum of squares, as the CPU kernel does).
#include "cuda/common.cuh"
#include "cuda/context.cuh"
#include "cuda/kernels.cuh"

namespace ds2rt::detail::cuda {

namespace {

__device__ __forceinline__ float warpSum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Frame f of T x N x H (batch_major false) or N x T x H, `inner` = N or T, the second axis;
// `lengths` null when the layer has none.
template <typename T>
__global__ void layerNormKernel(const T* in, T* out, const float* scale, const float* bias, const int32_t* lengths,
                                int64_t frames, int64_t inner, int64_t h, bool batch_major,
                                float epsilon) {
  const int64_t frame = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (frame >= frames) return;
  const T* x = in + frame * h;
  T* y = out + frame * h;
  if (lengths) {
    const int64_t b = batch_major ? frame / inner : frame % inner, step = batch_major ? frame % inner : frame / inner;
    if (step >= lengths[b]) {
      for (int64_t c = lane; c < h; c += 32) y[c] = fromFloat<T>(0.0f);
      return;
    }
  }
  float sum = 0;
  for (int64_t c = lane; c < h; c += 32) sum += toFloat(x[c]);
  const float mean = warpSum(sum) / static_cast<float>(h);
  float squares = 0;
  for (int64_t c = lane; c < h; c += 32) {
    const float d = toFloat(x[c]) - mean;
    squares += d * d;
  }
  const float inv_std = rsqrtf(warpSum(squares) / static_cast<float>(h) + epsilon);
  for (int64_t c = lane; c < h; c += 32) y[c] = fromFloat<T>((toFloat(x[c]) - mean) * inv_std * scale[c] + bias[c]);
}

class LayerNormKernel final : public TypedKernel {
 public:
  LayerNormKernel(const LayerNormDesc& d, TensorLayout layout, int64_t features, bool masked, DataType type)
      : TypedKernel(type), epsilon_(d.epsilon), batch_major_(layout == TensorLayout::kBatchMajor), masked_(masked) {
    std::vector<float> scale(static_cast<size_t>(features), 1.0f), bias(static_cast<size_t>(features), 0.0f);
    if (!d.scale.empty()) scale.assign(d.scale.floats().begin(), d.scale.floats().end());
    if (!d.bias.empty()) bias.assign(d.bias.floats().begin(), d.bias.floats().end());
    scale_ = uploadFloats(scale.data(), scale.size(), DataType::kFloat32);
    bias_ = uploadFloats(bias.data(), bias.size(), DataType::kFloat32);
  }

  void run(const KernelIO& io, KernelState*) const override {
    const Shape& s = io.input_shape;
    const int64_t frames = s[0] * s[1];
    dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      layerNormKernel<T><<<blocksFor(frames * 32), 256, 0, stream(io)>>>(
          io.in<T>(), io.out<T>(), static_cast<const float*>(scale_.get()), static_cast<const float*>(bias_.get()),
          masked_ ? io.lengths : nullptr, frames, s[1], s[2], batch_major_, epsilon_);
    });
    DS2RT_CUDA_LAUNCHED();
  }
  bool inPlace() const override { return true; }
  std::string implementation() const override { return "CUDA layer norm (warp per frame)"; }

 private:
  float epsilon_;
  bool batch_major_, masked_;
  DeviceMemory scale_, bias_;
};

}  // namespace

std::unique_ptr<Kernel> makeLayerNorm(const LayerNormDesc& desc, TensorLayout layout, int64_t features, bool masked,
                                      DataType type) {
  return std::make_unique<LayerNormKernel>(desc, layout, features, masked, type);
}

}  // namespace ds2rt::detail::cuda
