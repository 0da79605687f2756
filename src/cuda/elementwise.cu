// Per-element layers: batch norm (when not folded), activation, sequence mask, and the two
// transposes between the conv front end, the recurrent part and the batch-major output.
#include "cuda/common.cuh"
#include "cuda/context.cuh"
#include "cuda/kernels.cuh"

namespace ds2rt::detail::cuda {

namespace {

template <typename T>
__global__ void batchNormKernel(const T* in, T* out, const float* scale, const float* shift, int64_t total,
                                int64_t channels, int64_t inner) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t c = (i / inner) % channels;
  out[i] = fromFloat<T>(toFloat(in[i]) * scale[c] + shift[c]);
}

template <typename T>
__global__ void activationKernel(const T* in, T* out, DeviceActivation act, int64_t total) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < total) out[i] = fromFloat<T>(act(toFloat(in[i])));
}

// Generic time-axis mask: element i has batch index (i / batch_stride) % n and time index
// (i / time_stride) % t.
template <typename T>
__global__ void maskKernel(const T* in, T* out, const int32_t* lengths, int64_t total, int64_t n, int64_t batch_stride,
                           int64_t t, int64_t time_stride) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t b = (i / batch_stride) % n, step = (i / time_stride) % t;
  out[i] = step < lengths[b] ? in[i] : fromFloat<T>(0.0f);
}

// In place, N x C x F x T: zeros frames lengths[b] .. t-1 of every (channel, frequency) row of
// utterance b and touches nothing else (a warp a row, its writes contiguous). A batch of equal
// lengths costs one length read a warp instead of a pass over the whole tensor.
template <typename T>
__global__ void zeroPaddedRowsKernel(T* data, const int32_t* lengths, int64_t rows, int64_t rows_per_utterance,
                                     int64_t t) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  if (row >= rows) return;
  T* frames = data + row * t;
  for (int64_t step = lengths[row / rows_per_utterance] + threadIdx.x % 32; step < t; step += 32)
    frames[step] = fromFloat<T>(0.0f);
}

// N x C x F x T -> T x N x (C*F)
template <typename T>
__global__ void reshapeToSequenceKernel(const T* in, T* out, int64_t n, int64_t features, int64_t t) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * features * t) return;
  const int64_t f = i % features, b = (i / features) % n, step = i / (features * n);
  out[i] = in[(b * features + f) * t + step];
}

// T x N x H -> N x T x H
template <typename T>
__global__ void batchMajorKernel(const T* in, T* out, int64_t t, int64_t n, int64_t h) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * t * h) return;
  const int64_t c = i % h, step = (i / h) % t, b = i / (h * t);
  out[i] = in[(step * n + b) * h + c];
}

class BatchNormKernel final : public TypedKernel {
 public:
  BatchNormKernel(const BatchNormDesc& d, TensorLayout layout, DataType type)
      : TypedKernel(type), image_(layout == TensorLayout::kImage), channels_(d.scale.size()) {
    std::vector<float> scale, shift;
    for (int64_t c = 0; c < channels_; ++c) {
      scale.push_back(d.scale.floats()[c] / std::sqrt(d.variance.floats()[c] + d.epsilon));
      shift.push_back(d.bias.floats()[c] - d.mean.floats()[c] * scale.back());
    }
    scale_ = uploadFloats(scale.data(), scale.size(), DataType::kFloat32);
    shift_ = uploadFloats(shift.data(), shift.size(), DataType::kFloat32);
  }
  void run(const KernelIO& io, KernelState*) const override {
    const int64_t total = numElements(io.input_shape);
    const int64_t inner = image_ ? io.input_shape[2] * io.input_shape[3] : 1;
    dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      batchNormKernel<T><<<blocksFor(total), 256, 0, stream(io)>>>(io.in<T>(), io.out<T>(),
          static_cast<const float*>(scale_.get()), static_cast<const float*>(shift_.get()), total, channels_, inner);
    });
    DS2RT_CUDA_LAUNCHED();
  }
  bool inPlace() const override { return true; }
  std::string implementation() const override { return "CUDA per-channel scale and shift"; }

 private:
  bool image_;
  int64_t channels_;
  DeviceMemory scale_, shift_;
};

class ActivationKernel final : public TypedKernel {
 public:
  ActivationKernel(const ActivationDesc& d, DataType type) : TypedKernel(type), act_(d) {}
  void run(const KernelIO& io, KernelState*) const override {
    const int64_t total = numElements(io.input_shape);
    dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      activationKernel<T><<<blocksFor(total), 256, 0, stream(io)>>>(io.in<T>(), io.out<T>(), act_, total);
    });
    DS2RT_CUDA_LAUNCHED();
  }
  bool inPlace() const override { return true; }
  std::string implementation() const override { return "CUDA element-wise"; }

 private:
  DeviceActivation act_;
};

class SequenceMaskKernel final : public TypedKernel {
 public:
  SequenceMaskKernel(TensorLayout layout, DataType type) : TypedKernel(type), layout_(layout) {}
  void run(const KernelIO& io, KernelState*) const override {
    const Shape& s = io.input_shape;
    const int64_t total = numElements(s);
    int64_t n, batch_stride, t, time_stride;
    if (layout_ == TensorLayout::kImage) {  // N x C x F x T
      n = s[0], batch_stride = s[1] * s[2] * s[3], t = s[3], time_stride = 1;
    } else if (layout_ == TensorLayout::kSequence) {  // T x N x H
      n = s[1], batch_stride = s[2], t = s[0], time_stride = s[1] * s[2];
    } else {  // N x T x H
      n = s[0], batch_stride = s[1] * s[2], t = s[1], time_stride = s[2];
    }
    dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      if (layout_ == TensorLayout::kImage && io.input == io.output) {
        const int64_t rows = s[0] * s[1] * s[2];
        zeroPaddedRowsKernel<T><<<blocksFor(rows * 32), 256, 0, stream(io)>>>(io.out<T>(), io.lengths, rows,
                                                                              s[1] * s[2], t);
        return;
      }
      maskKernel<T><<<blocksFor(total), 256, 0, stream(io)>>>(io.in<T>(), io.out<T>(), io.lengths, total, n,
                                                              batch_stride, t, time_stride);
    });
    DS2RT_CUDA_LAUNCHED();
  }
  bool inPlace() const override { return true; }
  std::string implementation() const override { return "CUDA zero padded frames"; }

 private:
  TensorLayout layout_;
};

class ReshapeToSequenceKernel final : public TypedKernel {
 public:
  using TypedKernel::TypedKernel;
  void run(const KernelIO& io, KernelState*) const override {
    const int64_t n = io.input_shape[0], features = io.input_shape[1] * io.input_shape[2], t = io.input_shape[3];
    dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      reshapeToSequenceKernel<T><<<blocksFor(n * features * t), 256, 0, stream(io)>>>(io.in<T>(), io.out<T>(), n,
                                                                                      features, t);
    });
    DS2RT_CUDA_LAUNCHED();
  }
  std::string implementation() const override { return "CUDA transpose"; }
};

class BatchMajorKernel final : public TypedKernel {
 public:
  using TypedKernel::TypedKernel;
  void run(const KernelIO& io, KernelState*) const override {
    const int64_t t = io.input_shape[0], n = io.input_shape[1], h = io.input_shape[2];
    dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      batchMajorKernel<T><<<blocksFor(n * t * h), 256, 0, stream(io)>>>(io.in<T>(), io.out<T>(), t, n, h);
    });
    DS2RT_CUDA_LAUNCHED();
  }
  std::string implementation() const override { return "CUDA transpose"; }
};

}  // namespace

std::unique_ptr<Kernel> makeBatchNorm(const BatchNormDesc& desc, TensorLayout layout, DataType type) {
  return std::make_unique<BatchNormKernel>(desc, layout, type);
}
std::unique_ptr<Kernel> makeActivation(const ActivationDesc& desc, DataType type) {
  return std::make_unique<ActivationKernel>(desc, type);
}
std::unique_ptr<Kernel> makeSequenceMask(TensorLayout layout, DataType type) {
  return std::make_unique<SequenceMaskKernel>(layout, type);
}
std::unique_ptr<Kernel> makeReshapeToSequence(DataType type) { return std::make_unique<ReshapeToSequenceKernel>(type); }
std::unique_ptr<Kernel> makeBatchMajor(DataType type) { return std::make_unique<BatchMajorKernel>(type); }

}  // namespace ds2rt::detail::cuda
