// Options of the Builder: the target device and precision, and whether graph passes run.
#pragma once

#include <cstdint>
#include <string>

namespace ds2rt {

enum class Device : uint8_t { kCPU, kCUDA };
// kInt8 (CPU only): recurrent weights quantised per output channel (symmetric), activations per row
// at run time, int32 accumulation (VNNI); the fully connected layer and cell math stay fp32.
// Convolutions: bf16 where the CPU has AMX (as fast as int8 there, far more accurate); else int8
// for those of 4 or more input channels (filters per output channel, one scale per utterance's
// input) and fp32 for the spectrogram's one-channel convolution.
// kBF16 on the CPU (AVX512_BF16 only, else the build fails with an error): recurrent layers and the
// fully connected layer take bf16 weights and bf16 inputs (h converted at every step) with fp32
// accumulation; cell state, gate math and activations stay fp32; convolutions bf16 with AMX, fp32
// without.
// kTF32 (CUDA only, compute capability 8.0+): fp32 weights and activations, with the GEMMs and
// convolutions on the tensor cores in TensorFloat-32 (10-bit mantissa inputs, fp32 accumulation),
// as TensorRT's fp32 engines and PyTorch's cuDNN RNNs and convolutions run by default. Relative
// error ~1e-3 instead of fp32's ~1e-7; the recurrent steps that run on CUDA cores stay exact.
enum class Precision : uint8_t { kFP32, kFP16, kBF16, kInt8, kTF32 };
const char* toString(Device device);
const char* toString(Precision precision);
Device deviceFromString(const std::string& name);
Precision precisionFromString(const std::string& name);

struct BuilderConfig {
  Device device = Device::kCPU;
  Precision precision = Precision::kFP32;
  bool optimize = true;  // graph passes: folding, fusion, dead-layer removal
  void validate() const;  // throws when the combination is not available in this build
  std::string toString() const;
};

}  // namespace ds2rt
