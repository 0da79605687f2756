// 2-D convolution through cuDNN (algorithm searched once per input shape and context), then
// one kernel for bias and activation (the batch norm is already folded into the filters).
#include <cudnn.h>

#include <map>
#include <mutex>

#include "cuda/context.cuh"
#include "cuda/kernels.cuh"

namespace ds2rt::detail::cuda {

namespace {

#define DS2RT_CUDNN(call)                                                                   \
  do {                                                                                      \
    const cudnnStatus_t status_ = (call);                                                   \
    if (status_ != CUDNN_STATUS_SUCCESS) fail("cuDNN error ", cudnnGetErrorString(status_), " in " #call); \
  } while (0)

cudnnDataType_t cudnnType(DataType t) {
  switch (t) {
    case DataType::kFloat16: return CUDNN_DATA_HALF;
    case DataType::kBFloat16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
  }
}

template <typename T>
__global__ void channelBiasActivationKernel(T* data, const float* bias, DeviceActivation act, int64_t total,
                                            int64_t channels, int64_t inner) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < total) data[i] = fromFloat<T>(act(toFloat(data[i]) + bias[(i / inner) % channels]));
}

struct Descriptors {
  cudnnTensorDescriptor_t input = nullptr, output = nullptr;
  cudnnFilterDescriptor_t filter = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t algo{};
  size_t workspace = 0;
  Descriptors() = default;
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
  ~Descriptors() {
    if (input) cudnnDestroyTensorDescriptor(input);
    if (output) cudnnDestroyTensorDescriptor(output);
    if (filter) cudnnDestroyFilterDescriptor(filter);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

struct ConvState final : KernelState {
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Descriptors>> shapes;  // (N, T)
};

class ConvolutionKernel final : public TypedKernel {
 public:
  ConvolutionKernel(const ConvolutionDesc& d, DataType type, FloatMath math)
      : TypedKernel(type), desc_(d), exact_(type == DataType::kFloat32 && math == FloatMath::kExact),
        weight_(uploadAs(d.weight, type)) {
    std::vector<float> bias(d.out_channels, 0.0f);
    if (!d.bias.empty()) bias.assign(d.bias.floats().begin(), d.bias.floats().end());
    bias_ = uploadFloats(bias.data(), bias.size(), DataType::kFloat32);
    desc_.weight = {};
    desc_.bias = {};
  }

  std::unique_ptr<KernelState> createState(DeviceContext&) const override { return std::make_unique<ConvState>(); }

  void run(const KernelIO& io, KernelState* base) const override {
    auto& state = static_cast<ConvState&>(*base);
    CudaDeviceContext& dev = device(io);
    auto& slot = state.shapes[{io.input_shape[0], io.input_shape[3]}];
    if (!slot) slot = prepare(dev, io);
    const Descriptors& d = *slot;
    void* workspace = d.workspace ? dev.scratch(0, d.workspace) : nullptr;
    const float alpha = 1.0f, beta = 0.0f;
    DS2RT_CUDNN(cudnnConvolutionForward(dev.cudnn(), &alpha, d.input, io.input, d.filter, weight_.get(), d.conv, d.algo,
                                        workspace, d.workspace, &beta, d.output, io.output));
    const int64_t total = numElements(io.output_shape), inner = io.output_shape[2] * io.output_shape[3];
    dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      channelBiasActivationKernel<T><<<blocksFor(total), 256, 0, dev.stream()>>>(
          io.out<T>(), static_cast<const float*>(bias_.get()), DeviceActivation(desc_.activation), total,
          desc_.out_channels, inner);
    });
    DS2RT_CUDA_LAUNCHED();
  }

  std::string implementation() const override {
    return cat("cuDNN convolution + bias", desc_.activation.type == ActivationType::kNone ? "" : "/activation",
               " kernel");
  }

 private:
  std::unique_ptr<Descriptors> prepare(CudaDeviceContext& dev, const KernelIO& io) const {
    auto d = std::make_unique<Descriptors>();
    const auto& in = io.input_shape;
    const auto& out = io.output_shape;
    const cudnnDataType_t t = cudnnType(type_);
    DS2RT_CUDNN(cudnnCreateTensorDescriptor(&d->input));
    DS2RT_CUDNN(cudnnSetTensor4dDescriptor(d->input, CUDNN_TENSOR_NCHW, t, in[0], in[1], in[2], in[3]));
    DS2RT_CUDNN(cudnnCreateTensorDescriptor(&d->output));
    DS2RT_CUDNN(cudnnSetTensor4dDescriptor(d->output, CUDNN_TENSOR_NCHW, t, out[0], out[1], out[2], out[3]));
    DS2RT_CUDNN(cudnnCreateFilterDescriptor(&d->filter));
    DS2RT_CUDNN(cudnnSetFilter4dDescriptor(d->filter, t, CUDNN_TENSOR_NCHW, desc_.out_channels, in[1], desc_.kernel[0],
                                           desc_.kernel[1]));
    DS2RT_CUDNN(cudnnCreateConvolutionDescriptor(&d->conv));
    DS2RT_CUDNN(cudnnSetConvolution2dDescriptor(d->conv, desc_.padding[0], desc_.padding[1], desc_.stride[0],
                                                desc_.stride[1], desc_.dilation[0], desc_.dilation[1],
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    // Exact fp32 stays on FMA (no TF32); tf32 lets cuDNN pick TF32 tensor-core algorithms (default
    // math); fp16/bf16 use the tensor cores.
    const cudnnMathType_t math = exact_ ? CUDNN_FMA_MATH
                                 : type_ == DataType::kFloat32 ? CUDNN_DEFAULT_MATH
                                                               : CUDNN_TENSOR_OP_MATH;
    DS2RT_CUDNN(cudnnSetConvolutionMathType(d->conv, math));
    int n = 0, c = 0, h = 0, w = 0;
    DS2RT_CUDNN(cudnnGetConvolution2dForwardOutputDim(d->conv, d->input, d->filter, &n, &c, &h, &w));
    check(n == out[0] && c == out[1] && h == out[2] && w == out[3], "cuDNN output shape ", n, "x", c, "x", h, "x", w,
          " differs from ", toString(out));
    // The first context to meet a shape times cuDNN's algorithms; every context of the engine
    // then uses the same one, so that all of them give bit-identical results.
    std::lock_guard<std::mutex> lock(choices_mutex_);
    auto& choice = choices_[{in[0], in[3]}];
    if (!choice.found) {
      cudnnConvolutionFwdAlgoPerf_t perf[8];
      int found = 0;
      DS2RT_CUDNN(cudnnFindConvolutionForwardAlgorithm(dev.cudnn(), d->input, d->filter, d->conv, d->output, 8, &found, perf));
      for (int i = 0; i < found && !choice.found; ++i)
        // Never CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: it would round fp32 data to fp16.
        if (perf[i].status == CUDNN_STATUS_SUCCESS && (!exact_ || perf[i].mathType == CUDNN_FMA_MATH) &&
            perf[i].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
          choice = {true, perf[i].algo, perf[i].mathType, perf[i].memory};
      check(choice.found, "cuDNN found no convolution algorithm for input ", toString(in));
    }
    d->algo = choice.algo;
    d->workspace = choice.workspace;
    DS2RT_CUDNN(cudnnSetConvolutionMathType(d->conv, choice.math));
    return d;
  }

  struct Choice {
    bool found = false;
    cudnnConvolutionFwdAlgo_t algo{};
    cudnnMathType_t math{};
    size_t workspace = 0;
  };
  mutable std::mutex choices_mutex_;
  mutable std::map<std::pair<int64_t, int64_t>, Choice> choices_;

  ConvolutionDesc desc_;
  bool exact_;  // fp32 without TF32
  DeviceMemory weight_, bias_;
};

}  // namespace

std::unique_ptr<Kernel> makeConvolution(const ConvolutionDesc& desc, DataType type, FloatMath math) {
  // cuDNN pads both ends alike; uneven padding (TensorFlow's "same" with a stride) runs on the CPU backend only.
  check(desc.symmetric(), "convolution: padding ", desc.padding[0], "/", desc.paddingEnd(0), " (frequency) and ",
        desc.padding[1], "/", desc.paddingEnd(1), " (time) differs before and after the data; the CUDA backend "
        "supports symmetric padding only (build for the CPU)");
  return std::make_unique<ConvolutionKernel>(desc, type, math);
}

}  // namespace ds2rt::detail::cuda
