// 2-D convolution through cuDNN (algorithm searched once per tuning bucket of input lengths), then
// one kernel for bias and activation (the batch norm is already folded into the filters).
// cuDNN's tensor-core convolutions are fastest on channels-last (NHWC) tensors, while the network
// passes NCHW between layers: where the search finds NHWC faster (its input transposition
// included), the input goes to NHWC (nothing to move for one input channel), cuDNN writes NHWC,
// and the bias/activation kernel writes the layer's NCHW output as it transposes. A strided
// convolution of few input channels (DeepSpeech2's first) may instead run as a stride-1 one on its
// input's phases (convolution_phases.h), NHWC too, where the search finds that faster.
#include <cudnn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/context.cuh"
#include "cuda/convolution_phases.h"
#include "cuda/kernels.cuh"
#include "cuda/tuning_bucket.h"

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
__global__ void phasesKernel(const T* in, T* out, PhasePlan p, PhaseGeometry g, int64_t rows, int64_t cols,
                             int64_t total) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int channel = static_cast<int>(i % p.channels);
  const int64_t j = i / p.channels % g.lengths[1], row = i / p.channels / g.lengths[1] % g.lengths[0];
  const int64_t n = i / p.channels / g.lengths[1] / g.lengths[0];
  int source = 0;
  int64_t r = 0, c = 0;
  out[i] = phaseSource(p, g, channel, row, j, rows, cols, source, r, c)
               ? in[((n * p.in_channels + source) * rows + r) * cols + c]
               : fromFloat<T>(0.0f);
}

// The elements of the input's phases, and of the stride-1 convolution's output, for `batch` utterances.
int64_t phaseElements(const PhasePlan& p, const PhaseGeometry& g, int64_t batch) {
  return batch * g.lengths[0] * g.lengths[1] * p.channels;
}
int64_t phaseOutputElements(const PhasePlan& p, const PhaseGeometry& g, int64_t batch) {
  return batch * g.outputs[0] * g.outputs[1] * p.phaseOutChannels();
}

template <typename T>
void toPhases(const void* in, void* out, const PhasePlan& p, const PhaseGeometry& g, const Shape& in_shape,
              cudaStream_t stream) {
  const int64_t total = phaseElements(p, g, in_shape[0]);
  phasesKernel<T><<<blocksFor(total), 256, 0, stream>>>(static_cast<const T*>(in), static_cast<T*>(out), p, g,
                                                        in_shape[2], in_shape[3], total);
}

// The stride-1 convolution's N x U0 x U1 x (K q0 q1) output as the layer's N x K x H x W one, with
// bias and activation: a block takes 32 time positions u1 of one (n, u0) through shared memory, so
// that it reads whole rows of channels and writes runs of 32 q1 columns.
constexpr int kOutputTile = 32;

template <typename T>
__global__ void fromOutputPhasesKernel(const T* in, T* out, PhasePlan p, PhaseGeometry g, int64_t rows, int64_t cols,
                                       const float* bias, DeviceActivation act) {
  extern __shared__ float tile[];  // kOutputTile x (channels + 1)
  const int q0 = p.out_phases[0], q1 = p.out_phases[1], channels = p.phaseOutChannels();
  const int64_t tiles = (g.outputs[1] + kOutputTile - 1) / kOutputTile;
  const int64_t u1_first = blockIdx.x % tiles * kOutputTile, nu0 = blockIdx.x / tiles;
  const int64_t u0 = nu0 % g.outputs[0], n = nu0 / g.outputs[0];
  const int64_t base = (nu0 * g.outputs[1] + u1_first) * channels;
  const int64_t count = min(static_cast<int64_t>(kOutputTile), g.outputs[1] - u1_first) * channels;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x)
    tile[i / channels * (channels + 1) + i % channels] = toFloat(in[base + i]);
  __syncthreads();
  const int run = kOutputTile * q1;
  for (int i = threadIdx.x; i < p.out_channels * q0 * run; i += blockDim.x) {
    const int c = i % run, v0 = i / run % q0, k = i / run / q0;
    const int64_t row = u0 * q0 + v0, col = u1_first * q1 + c;
    if (row >= rows || col >= cols) continue;
    const float v = tile[c / q1 * (channels + 1) + (k * q0 + v0) * q1 + c % q1];
    out[((n * p.out_channels + k) * rows + row) * cols + col] = fromFloat<T>(act(v + bias[k]));
  }
}

template <typename T>
void fromOutputPhases(const void* in, void* out, const PhasePlan& p, const PhaseGeometry& g, const Shape& out_shape,
                      const float* bias, DeviceActivation act, cudaStream_t stream) {
  const int64_t blocks = out_shape[0] * g.outputs[0] * ((g.outputs[1] + kOutputTile - 1) / kOutputTile);
  const size_t shared = kOutputTile * (p.phaseOutChannels() + 1) * sizeof(float);
  fromOutputPhasesKernel<T><<<static_cast<unsigned>(blocks), 256, shared, stream>>>(
      static_cast<const T*>(in), static_cast<T*>(out), p, g, out_shape[2], out_shape[3], bias, act);
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
  int plan = -1;  // >= 0: the stride-1 convolution on the input's phases of that plan (implies channels_last)
  PhaseGeometry geometry;
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

constexpr int kTimedRuns = 3;  // runs of the whole layer timed per form when a length is searched

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
    // The phase plans the search may time: the input's phases alone, and 2 output phases per axis.
    for (const std::array<int, 2> q : {std::array<int, 2>{1, 1}, {1, 2}, {2, 1}, {2, 2}}) {
      const PhasePlan plan = exact_ ? PhasePlan{} : planPhases(d, d.weight.dim(1), q);
      if (plan.usable) plans_.push_back({plan, uploadAs(channelsLastFilter(phaseFilter(plan, d)), type)});
    }
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
    launch(dev, io, *it->second);
  }

  // The layer with these descriptors: cuDNN and the passes around it (input layout, bias, activation).
  void launch(CudaDeviceContext& dev, const KernelIO& io, const Descriptors& d) const {
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
      if (d.plan >= 0) {
        const PhasePlan& p = plans_[d.plan].plan;
        void* phased = dev.scratch(1, phaseElements(p, d.geometry, in[0]) * sizeof(T));
        toPhases<T>(io.input, phased, p, d.geometry, in, dev.stream());
        void* result = dev.scratch(2, phaseOutputElements(p, d.geometry, in[0]) * sizeof(T));
        DS2RT_CUDNN(cudnnConvolutionForward(dev.cudnn(), &alpha, d.input, phased, d.filter, plans_[d.plan].weight.get(),
                                            d.conv, d.algo, workspace, d.workspace, &beta, d.output, result));
        if (p.phaseOutChannels() == p.out_channels)  // one output a position: the plain transposition
          transpose<T>(result, io.output, out[0], out[2] * out[3], out[1], bias, act, dev.stream());
        else
          fromOutputPhases<T>(result, io.output, p, d.geometry, out, bias, act, dev.stream());
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
    std::string phases;
    std::vector<Choice> all;
    for (const auto* choices : {&choices_, &own_choices_})
      for (const auto& [shape, choice] : *choices) all.push_back(choice);
    for (const Choice& choice : all) {
      nhwc = nhwc || (choice.channels_last && choice.plan < 0);
      if (choice.plan < 0) continue;
      const PhasePlan& p = plans_[choice.plan].plan;
      const std::string form = cat(" (as a stride-1 one on the input's ", p.phases[0] * p.phases[1], " phases",
                                   p.phaseOutChannels() > p.out_channels
                                       ? cat(", ", p.out_phases[0] * p.out_phases[1], " outputs a position")
                                       : std::string(),
                                   " where faster)");
      if (phases.find(form) == std::string::npos) phases += form;
    }
    return cat("cuDNN convolution", nhwc ? " (NHWC where faster)" : "", phases, " + bias",
               desc_.activation.type == ActivationType::kNone ? "" : "/activation", " kernel");
  }

 private:
  struct Choice {
    bool found = false;
    cudnnConvolutionFwdAlgo_t algo{};
    cudnnMathType_t math{};
    float ms = 0;  // cuDNN's time for it, then the whole layer's (kTimedRuns runs)
    bool channels_last = false;
    int plan = -1;
  };

  struct PhaseForm {
    PhasePlan plan;
    DeviceMemory weight;  // its filter, channels last
  };

  std::unique_ptr<Descriptors> describe(const KernelIO& io, bool channels_last, int plan = -1) const {
    auto d = std::make_unique<Descriptors>();
    const auto& in = io.input_shape;
    const auto& out = io.output_shape;
    const cudnnDataType_t t = cudnnType(type_);
    const bool phases = plan >= 0;
    const cudnnTensorFormat_t format = channels_last || phases ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    d->channels_last = channels_last || phases;
    d->plan = plan;
    // With phases: their channels and lengths, the rearranged filter, stride 1, q x the output channels.
    std::array<int64_t, 4> x{in[0], in[1], in[2], in[3]}, y{out[0], out[1], out[2], out[3]};
    std::array<int, 2> kernel = desc_.kernel, padding = desc_.padding, stride = desc_.stride,
                       dilation = desc_.dilation;
    if (phases) {
      const PhasePlan& p = plans_[plan].plan;
      d->geometry = phaseGeometry(p, {in[2], in[3]}, {out[2], out[3]});
      const PhaseGeometry& g = d->geometry;
      x = {in[0], p.channels, g.lengths[0], g.lengths[1]};
      y = {out[0], p.phaseOutChannels(), g.outputs[0], g.outputs[1]};
      kernel = p.kernel;
      padding = g.padding;
      stride = dilation = {1, 1};
    }
    DS2RT_CUDNN(cudnnCreateTensorDescriptor(&d->input));
    DS2RT_CUDNN(cudnnSetTensor4dDescriptor(d->input, format, t, x[0], x[1], x[2], x[3]));
    DS2RT_CUDNN(cudnnCreateTensorDescriptor(&d->output));
    DS2RT_CUDNN(cudnnSetTensor4dDescriptor(d->output, format, t, y[0], y[1], y[2], y[3]));
    DS2RT_CUDNN(cudnnCreateFilterDescriptor(&d->filter));
    DS2RT_CUDNN(cudnnSetFilter4dDescriptor(d->filter, t, format, y[1], x[1], kernel[0], kernel[1]));
    DS2RT_CUDNN(cudnnCreateConvolutionDescriptor(&d->conv));
    DS2RT_CUDNN(cudnnSetConvolution2dDescriptor(d->conv, padding[0], padding[1], stride[0], stride[1], dilation[0],
                                                dilation[1], CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    // Exact fp32 stays on FMA (no TF32); tf32 lets cuDNN pick TF32 tensor-core algorithms (default
    // math); fp16/bf16 use the tensor cores.
    const cudnnMathType_t math = exact_ ? CUDNN_FMA_MATH
                                 : type_ == DataType::kFloat32 ? CUDNN_DEFAULT_MATH
                                                               : CUDNN_TENSOR_OP_MATH;
    DS2RT_CUDNN(cudnnSetConvolutionMathType(d->conv, math));
    int n = 0, c = 0, h = 0, w = 0;
    DS2RT_CUDNN(cudnnGetConvolution2dForwardOutputDim(d->conv, d->input, d->filter, &n, &c, &h, &w));
    check(n == y[0] && c == y[1] && h == y[2] && w == y[3], "cuDNN output shape ", n, "x", c, "x", h, "x", w,
          " differs from ", y[0], "x", y[1], "x", y[2], "x", y[3]);
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
        return {true, perf[i].algo, perf[i].mathType, perf[i].time, d.channels_last, d.plan};
    return {};
  }

  // cuDNN's fastest algorithm for this input shape in every layout and phase plan (the layout may be forced).
  Choice search(CudaDeviceContext& dev, const KernelIO& io) const {
    Choice choice;
    // DS2RT_CUDA_CONV_LAYOUT=nchw, nhwc, phases or phases:QxQ (one plan's output phases per axis)
    // forces a layout (tests, benchmarks; exact fp32 is always NCHW; phases only where the
    // convolution has them, else the others compete).
    const char* forced = std::getenv("DS2RT_CUDA_CONV_LAYOUT");
    std::string layout = forced ? forced : "";
    std::array<int, 2> forced_phases{0, 0};
    if (layout.rfind("phases:", 0) == 0) {
      char x = 0, rest = 0;
      check(std::sscanf(layout.c_str() + 7, "%d%c%d%c", &forced_phases[0], &x, &forced_phases[1], &rest) == 3 &&
                x == 'x' && forced_phases[0] > 0 && forced_phases[1] > 0,
            "DS2RT_CUDA_CONV_LAYOUT is '", layout, "': phases:QxQ takes two positive output-phase counts (phases:1x2)");
      layout = "phases";
    }
    check(layout.empty() || layout == "nchw" || layout == "nhwc" || layout == "phases", "DS2RT_CUDA_CONV_LAYOUT is '",
          layout, "': nchw, nhwc, phases or phases:QxQ");
    const auto wanted = [&](const PhasePlan& p) { return forced_phases[0] == 0 || p.out_phases == forced_phases; };
    if (layout == "phases" && std::none_of(plans_.begin(), plans_.end(), [&](const PhaseForm& f) { return wanted(f.plan); }))
      layout.clear();
    // cuDNN's fastest algorithm for each form, then each form timed as the layer runs it (cuDNN's own
    // times leave out the passes around it, and their sum misjudged the phase plans).
    std::vector<Choice> forms;
    if (layout.empty() || layout == "nchw" || !weight_nhwc_) forms.push_back(fastest(dev, *describe(io, false)));
    if ((layout.empty() || layout == "nhwc") && weight_nhwc_) forms.push_back(fastest(dev, *describe(io, true)));
    for (int plan = 0; plan < static_cast<int>(plans_.size()) && (layout.empty() || layout == "phases"); ++plan)
      if (wanted(plans_[plan].plan)) forms.push_back(fastest(dev, *describe(io, true, plan)));
    for (Choice& form : forms) {
      if (!form.found) continue;
      const auto d = adopt(dev, io, form);
      if (!d) continue;
      launch(dev, io, *d);  // warm-up
      form.ms = gpuMs(dev.stream(), [&] {
        for (int i = 0; i < kTimedRuns; ++i) launch(dev, io, *d);
      });
      if (!choice.found || form.ms < choice.ms) choice = form;
    }
    check(choice.found, "cuDNN found no convolution algorithm for input ", toString(io.input_shape));
    return choice;
  }

  // Descriptors for this input with a choice timed on another length of its bucket; none where the
  // algorithm refuses this shape.
  std::unique_ptr<Descriptors> adopt(CudaDeviceContext& dev, const KernelIO& io, const Choice& choice) const {
    auto d = describe(io, choice.channels_last, choice.plan);
    DS2RT_CUDNN(cudnnSetConvolutionMathType(d->conv, choice.math));
    size_t workspace = 0;
    if (cudnnGetConvolutionForwardWorkspaceSize(dev.cudnn(), d->input, d->filter, d->conv, d->output, choice.algo,
                                                &workspace) != CUDNN_STATUS_SUCCESS)
      return nullptr;
    d->algo = choice.algo;
    d->workspace = workspace;
    return d;
  }

  std::unique_ptr<Descriptors> prepare(CudaDeviceContext& dev, const KernelIO& io) const {
    const auto& in = io.input_shape;
    // The first context to meet a length times cuDNN's algorithms in every layout, and the lengths of
    // its tuning bucket take that choice (tuning_bucket.h); one whose shape the algorithm refuses gets
    // a search of its own. Every context of the engine uses the same choices, so that all of them give
    // bit-identical results.
    std::lock_guard<std::mutex> lock(choices_mutex_);
    Choice& shared = choices_[{in[0], tuningBucket(in[3])}];
    if (!shared.found) shared = search(dev, io);
    if (auto d = adopt(dev, io, shared)) return d;
    Choice& own = own_choices_[{in[0], in[3]}];
    if (!own.found) own = search(dev, io);
    auto d = adopt(dev, io, own);
    check(d != nullptr, "cuDNN refused the algorithm it found for input ", toString(in));
    return d;
  }

  mutable std::mutex choices_mutex_;
  mutable std::map<std::pair<int64_t, int64_t>, Choice> choices_;      // (N, tuning bucket of T)
  mutable std::map<std::pair<int64_t, int64_t>, Choice> own_choices_;  // (N, T) that refused their bucket's

  ConvolutionDesc desc_;
  bool exact_;  // fp32 without TF32
  std::vector<PhaseForm> plans_;  // the phase forms this convolution can take
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
