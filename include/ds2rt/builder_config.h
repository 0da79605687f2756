// Options of the Builder: the target device and precision, and whether graph passes run.
#pragma once

#include <cstdint>
#include <string>

namespace ds2rt {

enum class Device : uint8_t { kCPU, kCUDA };
enum class Precision : uint8_t { kFP32, kFP16, kBF16 };
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
