// Options of the Builder: the target device and precision, and whether graph passes run.
#pragma once

#include <cstdint>
#include <string>

namespace ds2rt {

enum class Device : uint8_t { kCPU, kCUDA };
// kInt8 (CPU only): weights quantised per output channel (symmetric), activations per row at run
// time, int32 accumulation (VNNI); convolutions, the fully connected layer and cell math stay fp32.
// kBF16 on the CPU (AVX512_BF16 only, else the build fails with an error): recurrent layers and the
// fully connected layer take bf16 weights and bf16 inputs (h converted at every step) with fp32
// accumulation; cell state, gate math and activations stay fp32, convolutions run fp32.
enum class Precision : uint8_t { kFP32, kFP16, kBF16, kInt8 };
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
