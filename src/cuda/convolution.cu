// 2-D convolution through cuDNN (algorithm searched once per input shape and context), then
// one kernel for bias and activation (the batch norm is already folded into the filters).
// cuDNN's tensor-core convolutions are fastest on channels-last (NHWC) tensors, while the network
// passes NCHW between layers: where the search finds NHWC faster (its input transposition
// included), the input goes to NHWC (nothing to move for one input channel), cuDNN writes NHWC,
// and the bias/activation kernel writes the layer's NCHW output as it transposes. A strided
// convolution of few input channels (DeepSpeech2's first) may instead run as a stride-1 one on its
// input's phases (convolution_phases.h), NHWC too, where the search finds that faster.
#include <cudnn.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "cuda/context.cuh"
#include "cuda/convolution_phases.h"
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

// An N x C x H x W input's phases (convolution_phases.h) as N x H' x W' x channels.
template <typename T>
__global__ void phasesKernel(const T* in, T* out, PhasePlan p, int64_t rows, int64_t cols, int64_t phase_rows,
                             int64_t phase_cols, int64_t total) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int channel = static_cast<int>(i % p.channels);
  const int64_t j = i / p.channels % phase_cols, row = i / p.channels / phase_cols % phase_rows;
  const int64_t n = i / p.channels / phase_cols / phase_rows;
  int source = 0;
  int64_t r = 0, c = 0;
  out[i] = phaseSource(p, channel, row, j, rows, cols, source, r, c)
               ? in[((n * p.in_channels + source) * rows + r) * cols + c]
               : fromFloat<T>(0.0f);
}

// The elements of the input's phases for an output of `out` (their lengths are the output's: phasesFit).
int64_t phaseElements(const PhasePlan& p, const Shape& in, const Shape& out) { return in[0] * out[2] * out[3] * p.channels; }

template <typename T>
void toPhases(const void* in, void* out, const PhasePlan& p, const Shape& in_shape, const Shape& out_shape,
              cudaStream_t stream) {
  const int64_t total = phaseElements(p, in_shape, out_shape);
  phasesKernel<T><<<blocksFor(total), 256, 0, stream>>>(static_cast<const T*>(in), static_cast<T*>(out), p, in_shape[2],
                                                        in_shape[3], out_shape[2], out_shape[3], total);
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
  bool phases = false;  // the input's phases, stride 1 (implies channels_last)
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
  // (N, T) -> descriptors; cheap to remake (the algorithm choice is the kernel's), so a context that
  // has met many lengths starts over rather than keep them all.
  static constexpr size_t kMaxShapes = 64;
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Descriptors>> shapes;
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
    if (!exact_) phases_ = planPhases(d, d.weight.dim(1));
    if (phases_.usable) weight_phases_ = uploadAs(channelsLastFilter(phaseFilter(phases_, d)), type);
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
    const std::pair<int64_t, int64_t> shape{io.input_shape[0], io.input_shape[3]};
    auto it = state.shapes.find(shape);
    if (it == state.shapes.end()) {
      if (state.shapes.size() >= ConvState::kMaxShapes) state.shapes.clear();
      it = state.shapes.emplace(shape, prepare(dev, io)).first;
    }
    const Descriptors& d = *it->second;
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
      const void* weight = weight_nhwc_.get();
      if (d.phases) {
        void* phased = dev.scratch(1, phaseElements(phases_, in, out) * sizeof(T));
        toPhases<T>(io.input, phased, phases_, in, out, dev.stream());
        input = phased;
        weight = weight_phases_.get();
      } else if (in[1] > 1) {
        void* nhwc = dev.scratch(1, numElements(in) * sizeof(T));
        toChannelsLast<T>(io.input, nhwc, in, dev.stream());
        input = nhwc;
      }
      void* result = dev.scratch(2, numElements(out) * sizeof(T));
      DS2RT_CUDNN(cudnnConvolutionForward(dev.cudnn(), &alpha, d.input, input, d.filter, weight, d.conv, d.algo,
                                          workspace, d.workspace, &beta, d.output, result));
      transpose<T>(result, io.output, out[0], out[2] * out[3], out[1], bias, act, dev.stream());
    });
    DS2RT_CUDA_LAUNCHED();
  }

  std::string implementation() const override {
    std::lock_guard<std::mutex> lock(choices_mutex_);
    bool nhwc = false, phases = false;
    for (const auto& [shape, choice] : choices_) {
      nhwc = nhwc || (choice.channels_last && !choice.phases);
      phases = phases || choice.phases;
    }
    return cat("cuDNN convolution", nhwc ? " (NHWC where faster)" : "",
               phases ? cat(" (as a stride-1 one on the input's ", phases_.stride[0] * phases_.stride[1],
                            " phases where faster)")
                      : "",
               " + bias",
               desc_.activation.type == ActivationType::kNone ? "" : "/activation", " kernel");
  }

 private:
  struct Choice {
    bool found = false;
    cudnnConvolutionFwdAlgo_t algo{};
    cudnnMathType_t math{};
    size_t workspace = 0;
    float ms = 0;  // cuDNN's time for it (with the NHWC input's transposition, or the phases' gathering)
    bool channels_last = false;
    bool phases = false;
  };

  // The input's phases give this output (phase lengths equal the output's; see planPhases).
  bool phasesFit(const KernelIO& io) const {
    const auto& in = io.input_shape;
    const auto& out = io.output_shape;
    return phases_.usable && phaseLength(in[2], phases_.stride[0]) == out[2] &&
           phaseLength(in[3], phases_.stride[1]) == out[3];
  }

  std::unique_ptr<Descriptors> describe(const KernelIO& io, bool channels_last, bool phases = false) const {
    auto d = std::make_unique<Descriptors>();
    const auto& in = io.input_shape;
    const auto& out = io.output_shape;
    const cudnnDataType_t t = cudnnType(type_);
    const cudnnTensorFormat_t format = channels_last || phases ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    d->channels_last = channels_last || phases;
    d->phases = phases;
    // With phases: their channels and lengths, the rearranged filter, stride 1.
    const int64_t channels = phases ? phases_.channels : in[1];
    const std::array<int, 2> kernel = phases ? phases_.kernel : desc_.kernel;
    const std::array<int, 2> padding = phases ? phases_.padding : desc_.padding;
    const std::array<int, 2> stride = phases ? std::array<int, 2>{1, 1} : desc_.stride;
    const int64_t rows = phases ? out[2] : in[2], cols = phases ? out[3] : in[3];
    DS2RT_CUDNN(cudnnCreateTensorDescriptor(&d->input));
    DS2RT_CUDNN(cudnnSetTensor4dDescriptor(d->input, format, t, in[0], channels, rows, cols));
    DS2RT_CUDNN(cudnnCreateTensorDescriptor(&d->output));
    DS2RT_CUDNN(cudnnSetTensor4dDescriptor(d->output, format, t, out[0], out[1], out[2], out[3]));
    DS2RT_CUDNN(cudnnCreateFilterDescriptor(&d->filter));
    DS2RT_CUDNN(cudnnSetFilter4dDescriptor(d->filter, t, format, desc_.out_channels, channels, kernel[0], kernel[1]));
    DS2RT_CUDNN(cudnnCreateConvolutionDescriptor(&d->conv));
    DS2RT_CUDNN(cudnnSetConvolution2dDescriptor(d->conv, padding[0], padding[1], stride[0], stride[1],
                                                phases ? 1 : desc_.dilation[0], phases ? 1 : desc_.dilation[1],
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
        return {true, perf[i].algo, perf[i].mathType, perf[i].memory, perf[i].time, d.channels_last, d.phases};
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

  // The time of gathering this input's phases (the phases path's one extra pass), in ms.
  float gatheringMs(CudaDeviceContext& dev, const KernelIO& io) const {
    const auto& in = io.input_shape;
    const auto& out = io.output_shape;
    return dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      void* phased = dev.scratch(1, phaseElements(phases_, in, out) * sizeof(T));
      const auto gather = [&] { toPhases<T>(io.input, phased, phases_, in, out, dev.stream()); };
      gather();  // warm-up
      return gpuMs(dev.stream(), gather);
    });
  }

  std::unique_ptr<Descriptors> prepare(CudaDeviceContext& dev, const KernelIO& io) const {
    const auto& in = io.input_shape;
    // The first context to meet a shape times cuDNN's algorithms in both layouts; every context
    // of the engine then uses the same one, so that all of them give bit-identical results.
    std::lock_guard<std::mutex> lock(choices_mutex_);
    auto& choice = choices_[{in[0], in[3]}];
    if (!choice.found) {
      // DS2RT_CUDA_CONV_LAYOUT=nchw, nhwc or phases forces a layout (tests, benchmarks; exact fp32 is
      // always NCHW; phases only where the convolution has them, else the others compete).
      const char* forced = std::getenv("DS2RT_CUDA_CONV_LAYOUT");
      std::string layout = forced ? forced : "";
      check(layout.empty() || layout == "nchw" || layout == "nhwc" || layout == "phases", "DS2RT_CUDA_CONV_LAYOUT is '",
            layout, "': nchw, nhwc or phases");
      const bool phases = phasesFit(io);
      if (layout == "phases" && !phases) layout.clear();
      if (layout.empty() || layout == "nchw" || !weight_nhwc_) choice = fastest(dev, *describe(io, false));
      if ((layout.empty() || layout == "nhwc") && weight_nhwc_) {
        Choice nhwc = fastest(dev, *describe(io, true));
        nhwc.ms += transpositionMs(dev, io);
        if (nhwc.found && (!choice.found || nhwc.ms < choice.ms)) choice = nhwc;
      }
      if ((layout.empty() || layout == "phases") && phases) {
        Choice phased = fastest(dev, *describe(io, true, true));
        phased.ms += gatheringMs(dev, io);
        if (phased.found && (!choice.found || phased.ms < choice.ms)) choice = phased;
      }
      check(choice.found, "cuDNN found no convolution algorithm for input ", toString(in));
    }
    auto d = describe(io, choice.channels_last, choice.phases);
    d->algo = choice.algo;
    d->workspace = choice.workspace;
    DS2RT_CUDNN(cudnnSetConvolutionMathType(d->conv, choice.math));
    return d;
  }

  mutable std::mutex choices_mutex_;
  mutable std::map<std::pair<int64_t, int64_t>, Choice> choices_;

  ConvolutionDesc desc_;
  bool exact_;  // fp32 without TF32
  PhasePlan phases_;  // usable: the convolution may run on its input's phases
  DeviceMemory weight_, weight_nhwc_, weight_phases_, bias_;
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
