#include "cuda/context.cuh"
#include "cuda/kernels.cuh"
#include "core/overloaded.h"

namespace ds2rt::detail {

namespace cuda {

namespace {

DataType activationTypeFor(Precision p) {
  switch (p) {
    case Precision::kFP16: return DataType::kFloat16;
    case Precision::kBF16: return DataType::kBFloat16;
    default: return DataType::kFloat32;
  }
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const BuilderConfig& config)
      : type_(activationTypeFor(config.precision)),
        math_(config.precision == Precision::kTF32 ? FloatMath::kTF32 : FloatMath::kExact) {
    int device = 0, count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    check(status == cudaSuccess && count > 0, "no CUDA device is available (",
          status == cudaSuccess ? "none found" : cudaGetErrorString(status), ")");
    DS2RT_CUDA(cudaGetDevice(&device));
    cudaDeviceProp prop{};
    DS2RT_CUDA(cudaGetDeviceProperties(&prop, device));
    info_.sm_count = prop.multiProcessorCount;
    info_.compute_capability = prop.major * 10 + prop.minor;
    info_.shared_memory_per_block = prop.sharedMemPerBlockOptin;
    check(config.precision != Precision::kInt8,
          "int8 runs on the CPU backend only; the CUDA backend takes fp32, tf32, fp16 or bf16");
    check((config.precision != Precision::kBF16 && config.precision != Precision::kTF32) ||
              info_.compute_capability >= 80,
          toString(config.precision), " needs compute capability 8.0+, ", prop.name, " has ", prop.major, ".", prop.minor);
  }

  std::unique_ptr<Kernel> compile(const Layer& layer, const Graph& graph) const override {
    const TensorLayout layout = graph.tensors[layer.inputs[0]].layout;
    const DataType in = tensorType(graph, layer.inputs[0]), out = tensorType(graph, layer.output);
    return std::visit(
        Overloaded{
            [&](const ConvolutionDesc& d) { return makeConvolution(d, out, math_); },
            [&](const BatchNormDesc& d) { return makeBatchNorm(d, layout, out); },
            [&](const ActivationDesc& d) { return makeActivation(d, out); },
            [&](const SequenceMaskDesc&) { return makeSequenceMask(layout, out); },
            [&](const LengthsTransformDesc&) -> std::unique_ptr<Kernel> { return nullptr; },
            [&](const ReshapeToSequenceDesc&) { return makeReshapeToSequence(out); },
            [&](const RNNDesc& d) {
              const std::vector<std::string> extras = rnnExtras(layer);
              std::string list;
              for (const auto& e : extras) list += (list.empty() ? "" : ", ") + e;
              check(extras.empty(), "layer '", layer.name, "': the CUDA backend runs plain recurrent cells only; this ",
                    "layer has ", list, ". Build this network for the CPU");
              return makeRNN(d, out, math_, info_);
            },
            [&](const LookaheadDesc& d) { return makeLookahead(d, out); },
            [&](const FullyConnectedDesc& d) { return makeFullyConnected(d, in, out, math_); },
            [&](const SoftmaxDesc& d) { return makeSoftmax(d.log, out); },
            [&](const BatchMajorDesc&) { return makeBatchMajor(out); },
            [&](const LayerNormDesc& d) {
              return makeLayerNorm(d, layout, graph.tensors[layer.inputs[0]].shape.back(), layer.inputs.size() > 1, out);
            },
            [&](const SamePaddingShiftDesc&) -> std::unique_ptr<Kernel> {
              fail("layer '", layer.name, "': SamePaddingShift (TensorFlow's length-dependent 'same' padding before ",
                   "a strided convolution) has no CUDA kernel yet; build this network for the CPU");
            },
            [&](const RNNFinalStateDesc&) -> std::unique_ptr<Kernel> {
              fail("layer '", layer.name, "': RNNFinalState (the final state of a recurrent layer, ONNX's Y_h) has no ",
                   "CUDA kernel yet; build this network for the CPU");
            },
        },
        layer.desc);
  }

  // Reduced precision up to the fully connected output layer; from its output on (logits,
  // softmax, the network's probabilities) float32, which costs nothing and keeps small
  // probabilities exact.
  DataType tensorType(const Graph& graph, int tensor) const override {
    if (type_ == DataType::kFloat32) return type_;
    const int producer = graph.producer(tensor);
    if (producer < 0) return type_;
    const Layer& layer = graph.layers[producer];
    if (std::holds_alternative<FullyConnectedDesc>(layer.desc)) return DataType::kFloat32;
    return tensorType(graph, layer.inputs[0]);
  }

  std::unique_ptr<DeviceContext> createContext(const ContextOptions& options) const override {
    return std::make_unique<CudaDeviceContext>(options, type_);
  }

  DataType activationType() const override { return type_; }

 private:
  DataType type_;
  FloatMath math_;
  DeviceInfo info_;
};

}  // namespace
}  // namespace cuda

std::unique_ptr<Backend> createCudaBackend(const BuilderConfig& config) {
  return std::make_unique<cuda::CudaBackend>(config);
}

int currentCudaArchitecture() {
  int device = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&device) != cudaSuccess || cudaGetDeviceProperties(&prop, device) != cudaSuccess) return 0;
  return prop.major * 10 + prop.minor;
}

}  // namespace ds2rt::detail
