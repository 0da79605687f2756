#include "ds2rt/builder_config.h"

#include "ds2rt/error.h"

namespace ds2rt {

const char* toString(Device device) { return device == Device::kCPU ? "cpu" : "cuda"; }

const char* toString(Precision precision) {
  static const char* const names[] = {"fp32", "fp16", "bf16", "int8", "tf32"};
  return names[static_cast<int>(precision)];
}

Device deviceFromString(const std::string& name) {
  if (name == "cpu") return Device::kCPU;
  if (name == "cuda" || name == "gpu") return Device::kCUDA;
  fail("unknown device '", name, "' (expected cpu or cuda)");
}

Precision precisionFromString(const std::string& name) {
  if (name == "fp32") return Precision::kFP32;
  if (name == "fp16") return Precision::kFP16;
  if (name == "bf16") return Precision::kBF16;
  if (name == "int8") return Precision::kInt8;
  if (name == "tf32") return Precision::kTF32;
  fail("unknown precision '", name, "' (expected fp32, fp16, bf16, int8 or tf32)");
}

void BuilderConfig::validate() const {
#ifndef DS2RT_WITH_CUDA
  check(device != Device::kCUDA, "this build of ds2rt has no CUDA backend (configure with -DDS2RT_WITH_CUDA=ON)");
#endif
  check(device != Device::kCPU || precision != Precision::kFP16,
        "the CPU backend runs fp32, bf16 or int8; fp16 on CPU is not implemented");
  check(device != Device::kCPU || precision != Precision::kTF32,
        "tf32 is TensorFloat-32 tensor-core math on NVIDIA GPUs (--device cuda); the CPU backend runs fp32, bf16 or int8");
  check(device != Device::kCUDA || precision != Precision::kInt8,
        "int8 runs on the CPU backend only; the CUDA backend takes fp32, tf32, fp16 or bf16");
}

std::string BuilderConfig::toString() const {
  return cat("device=", ds2rt::toString(device), " precision=", ds2rt::toString(precision),
             " optimize=", optimize ? "on" : "off");
}

}  // namespace ds2rt
