// CUDA kernels, one file per layer kind (src/cuda/<layer>.cu), templated on the activation
// type (float, __half, __nv_bfloat16) with float arithmetic.
#pragma once

#include <memory>

#include "core/kernel.h"

namespace ds2rt::detail::cuda {

struct DeviceInfo {
  int sm_count = 0;
  int compute_capability = 0;  // 90 for sm_90
  size_t shared_memory_per_block = 0;  // opt-in maximum
};

// How fp32 GEMMs and convolutions multiply: exactly, or on the tensor cores in TensorFloat-32
// (Precision::kTF32). fp16/bf16 always use the tensor cores.
enum class FloatMath : uint8_t { kExact, kTF32 };

std::unique_ptr<Kernel> makeConvolution(const ConvolutionDesc& desc, DataType type, FloatMath math);
std::unique_ptr<Kernel> makeBatchNorm(const BatchNormDesc& desc, TensorLayout layout, DataType type);
std::unique_ptr<Kernel> makeActivation(const ActivationDesc& desc, DataType type);
std::unique_ptr<Kernel> makeSequenceMask(TensorLayout layout, DataType type);
std::unique_ptr<Kernel> makeReshapeToSequence(DataType type);
std::unique_ptr<Kernel> makeBatchMajor(DataType type);
std::unique_ptr<Kernel> makeRNN(const RNNDesc& desc, DataType type, FloatMath math, const DeviceInfo& device);
std::unique_ptr<Kernel> makeLookahead(const LookaheadDesc& desc, DataType type);
std::unique_ptr<Kernel> makeFullyConnected(const FullyConnectedDesc& desc, DataType input_type, DataType output_type,
                                           FloatMath math);
std::unique_ptr<Kernel> makeSoftmax(bool log, DataType type);
// `masked`: the layer has a lengths input; frames at and past each length become zeros.
std::unique_ptr<Kernel> makeLayerNorm(const LayerNormDesc& desc, TensorLayout layout, int64_t features, bool masked,
                                      DataType type);

}  // namespace ds2rt::detail::cuda
