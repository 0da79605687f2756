// 2-D convolution through cuDNN (algorithm searched once per input shape and context), then
// one kernel for bias and activation (the batch norm is already folded into the filters).
// cuDNN's tensor-core convolutions are fastest on channels-last (NHWC) tensors, while the network
// passes NCHW between layers: where the search finds NHWC faster (its input transposition
// included), the input goes to NHWC (nothing to move for one input channel), cuDNN writes NHWC,
// and the bias/activation kernel writes the layer's NCHW output as it transposes.
#include <cudnn.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

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

// out[n][c][r] = in[n][r][c] for `rows` x `cols` matrices, in 32 x 32 tiles through shared
// memory (both sides coalesced). With `bias`, out rows are channels: act(value + bias[c]).
template <typename T>
__global__ void transposeKernel(const T* in, T* out, int64_t rows, int64_t cols, const float* bias,
                                DeviceActivation act) {
  __shared__ float tile[32][33];
  const int64_t matrix = static_cast<int64_t>(blockIdx.y) * rows * cols, col_tiles = (cols + 31) / 32;
  const int64_t r0 = blockIdx.x / col_tiles * 32, c0 = blockIdx.x % col_tiles * 32;
  for (int i = threadIdx.y; i < 32; i += blockDim.y)
    if (r0 + i < rows && c0 + threadIdx.x < cols)
      tile[i][threadIdx.x] = toFloat(in[matrix + (r0 + i) * cols + c0 + threadIdx.x]);
  __syncthreads();
  for (int i = threadIdx.y; i < 32; i += blockDim.y) {
    const int64_t c = c0 + i, r = r0 + threadIdx.x;
    if (c < cols && r < rows) {
      const float v = tile[threadIdx.x][i];
      out[matrix + c * rows + r] = fromFloat<T>(bias ? act(v + bias[c]) : v);
    }
  }
}

template <typename T>
void transpose(const void* in, void* out, int64_t matrices, int64_t rows, int64_t cols, const float* bias,
               DeviceActivation act, cudaStream_t stream) {
  // One tile per block along x (2^31 of them: any utterance), the matrices along y.
  const dim3 grid(static_cast<unsigned>((cols + 31) / 32 * ((rows + 31) / 32)), static_cast<unsigned>(matrices));
  transposeKernel<T><<<grid, dim3(32, 8), 0, stream>>>(static_cast<const T*>(in), static_cast<T*>(out), rows, cols,
                                                       bias, act);
}

// An N x C x H x W input copied to `out` as N x H x W x C.
template <typename T>
void toChannelsLast(const void* in, void* out, const Shape& shape, cudaStream_t stream) {
  transpose<T>(in, out, shape[0], shape[1], shape[2] * shape[3], nullptr, DeviceActivation{}, stream);
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
  bool channels_last = false;
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

// A K x C x R x S filter as K x R x S x C (cuDNN's NHWC filter layout), in float32.
HostTensor channelsLastFilter(const HostTensor& weight) {
  const HostTensor w = weight.toFloat32();
  const int64_t k = w.dim(0), c = w.dim(1), rs = w.dim(2) * w.dim(3);
  const auto in = w.floats();
  std::vector<float> out(in.size());
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t cc = 0; cc < c; ++cc)
      for (int64_t i = 0; i < rs; ++i) out[(kk * rs + i) * c + cc] = in[(kk * c + cc) * rs + i];
  return HostTensor::fromFloats({k, w.dim(2), w.dim(3), c}, std::move(out));
}

class ConvolutionKernel final : public TypedKernel {
 public:
  ConvolutionKernel(const ConvolutionDesc& d, DataType type, FloatMath math)
      : TypedKernel(type), desc_(d), exact_(type == DataType::kFloat32 && math == FloatMath::kExact),
        weight_(uploadAs(d.weight, type)) {
    // Exact fp32 stays NCHW: cuDNN's NHWC algorithms are tensor-core ones.
    if (!exact_) weight_nhwc_ = uploadAs(channelsLastFilter(d.weight), type);
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
    const auto& in = io.input_shape;
    const auto& out = io.output_shape;
    void* workspace = d.workspace ? dev.scratch(0, d.workspace) : nullptr;
    const float* bias = static_cast<const float*>(bias_.get());
    const DeviceActivation act(desc_.activation);
    const float alpha = 1.0f, beta = 0.0f;
    dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      if (!d.channels_last) {
        DS2RT_CUDNN(cudnnConvolutionForward(dev.cudnn(), &alpha, d.input, io.input, d.filter, weight_.get(), d.conv,
                                            d.algo, workspace, d.workspace, &beta, d.output, io.output));
        const int64_t total = numElements(out), inner = out[2] * out[3];
        channelBiasActivationKernel<T><<<blocksFor(total), 256, 0, dev.stream()>>>(io.out<T>(), bias, act, total,
                                                                                   desc_.out_channels, inner);
        return;
      }
      const void* input = io.input;
      if (in[1] > 1) {
        void* nhwc = dev.scratch(1, numElements(in) * sizeof(T));
        toChannelsLast<T>(io.input, nhwc, in, dev.stream());
        input = nhwc;
      }
      void* result = dev.scratch(2, numElements(out) * sizeof(T));
      DS2RT_CUDNN(cudnnConvolutionForward(dev.cudnn(), &alpha, d.input, input, d.filter, weight_nhwc_.get(), d.conv,
                                          d.algo, workspace, d.workspace, &beta, d.output, result));
      transpose<T>(result, io.output, out[0], out[2] * out[3], out[1], bias, act, dev.stream());
    });
    DS2RT_CUDA_LAUNCHED();
  }

  std::string implementation() const override {
    std::lock_guard<std::mutex> lock(choices_mutex_);
    bool nhwc = false;
    for (const auto& [shape, choice] : choices_) nhwc = nhwc || choice.channels_last;
    return cat("cuDNN convolution", nhwc ? " (NHWC where faster)" : "", " + bias",
               desc_.activation.type == ActivationType::kNone ? "" : "/activation", " kernel");
  }

 private:
  struct Choice {
    bool found = false;
    cudnnConvolutionFwdAlgo_t algo{};
    cudnnMathType_t math{};
    size_t workspace = 0;
    float ms = 0;  // cuDNN's time for it (with the NHWC input's transposition)
    bool channels_last = false;
  };

  std::unique_ptr<Descriptors> describe(const KernelIO& io, bool channels_last) const {
    auto d = std::make_unique<Descriptors>();
    const auto& in = io.input_shape;
    const auto& out = io.output_shape;
    const cudnnDataType_t t = cudnnType(type_);
    const cudnnTensorFormat_t format = channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    d->channels_last = channels_last;
    DS2RT_CUDNN(cudnnCreateTensorDescriptor(&d->input));
    DS2RT_CUDNN(cudnnSetTensor4dDescriptor(d->input, format, t, in[0], in[1], in[2], in[3]));
    DS2RT_CUDNN(cudnnCreateTensorDescriptor(&d->output));
    DS2RT_CUDNN(cudnnSetTensor4dDescriptor(d->output, format, t, out[0], out[1], out[2], out[3]));
    DS2RT_CUDNN(cudnnCreateFilterDescriptor(&d->filter));
    DS2RT_CUDNN(cudnnSetFilter4dDescriptor(d->filter, t, format, desc_.out_channels, in[1], desc_.kernel[0],
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
    return d;
  }

  // cuDNN's fastest algorithm for these descriptors (none found: found stays false).
  Choice fastest(CudaDeviceContext& dev, const Descriptors& d) const {
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    int found = 0;
    DS2RT_CUDNN(cudnnFindConvolutionForwardAlgorithm(dev.cudnn(), d.input, d.filter, d.conv, d.output, 8, &found, perf));
    for (int i = 0; i < found; ++i)
      // Never CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: it would round fp32 data to fp16.
      if (perf[i].status == CUDNN_STATUS_SUCCESS && (!exact_ || perf[i].mathType == CUDNN_FMA_MATH) &&
          perf[i].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
        return {true, perf[i].algo, perf[i].mathType, perf[i].memory, perf[i].time, d.channels_last};
    return {};
  }

  // The time of moving this input to NHWC (the NHWC path's one extra pass), in ms.
  float transpositionMs(CudaDeviceContext& dev, const KernelIO& io) const {
    const auto& in = io.input_shape;
    if (in[1] == 1) return 0.0f;
    return dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      void* nhwc = dev.scratch(1, numElements(in) * sizeof(T));
      const auto move = [&] { toChannelsLast<T>(io.input, nhwc, in, dev.stream()); };
      move();  // warm-up
      return gpuMs(dev.stream(), move);
    });
  }

  std::unique_ptr<Descriptors> prepare(CudaDeviceContext& dev, const KernelIO& io) const {
    const auto& in = io.input_shape;
    // The first context to meet a shape times cuDNN's algorithms in both layouts; every context
    // of the engine then uses the same one, so that all of them give bit-identical results.
    std::lock_guard<std::mutex> lock(choices_mutex_);
    auto& choice = choices_[{in[0], in[3]}];
    if (!choice.found) {
      // DS2RT_CUDA_CONV_LAYOUT=nchw or nhwc forces a layout (tests, benchmarks; exact fp32 is always NCHW).
      const char* forced = std::getenv("DS2RT_CUDA_CONV_LAYOUT");
      const std::string layout = forced ? forced : "";
      check(layout.empty() || layout == "nchw" || layout == "nhwc", "DS2RT_CUDA_CONV_LAYOUT is '", layout,
            "': nchw or nhwc");
      if (layout != "nhwc" || !weight_nhwc_) choice = fastest(dev, *describe(io, false));
      if (layout != "nchw" && weight_nhwc_) {
        Choice nhwc = fastest(dev, *describe(io, true));
        nhwc.ms += transpositionMs(dev, io);
        if (nhwc.found && (!choice.found || nhwc.ms < choice.ms)) choice = nhwc;
      }
      check(choice.found, "cuDNN found no convolution algorithm for input ", toString(in));
    }
    auto d = describe(io, choice.channels_last);
    d->algo = choice.algo;
    d->workspace = choice.workspace;
    DS2RT_CUDNN(cudnnSetConvolutionMathType(d->conv, choice.math));
    return d;
  }

  mutable std::mutex choices_mutex_;
  mutable std::map<std::pair<int64_t, int64_t>, Choice> choices_;

  ConvolutionDesc desc_;
  bool exact_;  // fp32 without TF32
  DeviceMemory weight_, weight_nhwc_, bias_;
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
