// Host-side typed arrays: weights, inputs and outputs all travel as HostTensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ds2rt {

enum class DataType : uint8_t { kFloat32, kFloat16, kBFloat16, kFloat64, kInt64, kInt32, kInt8, kUInt8, kBool };

size_t sizeOf(DataType type);
const char* toString(DataType type);  // safetensors spelling: "F32", "F16", "BF16", ...
DataType dataTypeFromString(const std::string& name);  // throws on unknown names

using Shape = std::vector<int64_t>;
std::string toString(const Shape& shape);  // "[4, 1, 161, 50]"
int64_t numElements(const Shape& shape);   // throws on negative (dynamic) dimensions

// A shaped, typed, contiguous row-major array. Copies share the storage (cheap and immutable
// in spirit); clone() makes an independent copy. A view over memory owned elsewhere keeps
// the owner alive through `keep_alive`.
class HostTensor {
 public:
  HostTensor() = default;
  HostTensor(DataType type, Shape shape);  // zero-filled, owned
  static HostTensor view(DataType type, Shape shape, const void* data, std::shared_ptr<const void> keep_alive);
  static HostTensor fromFloats(Shape shape, std::vector<float> values);
  static HostTensor fromInts(Shape shape, const std::vector<int32_t>& values);

  DataType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t axis) const { return shape_.at(axis); }
  size_t rank() const { return shape_.size(); }
  int64_t size() const { return numElements(shape_); }
  size_t bytes() const { return static_cast<size_t>(size()) * sizeOf(dtype_); }
  bool empty() const { return data_ == nullptr; }

  const void* data() const { return data_; }
  void* mutableData();  // only for tensors that own their storage
  template <typename T> const T* data() const { return static_cast<const T*>(data_); }
  template <typename T> T* mutableData() { return static_cast<T*>(mutableData()); }
  std::span<const float> floats() const;  // requires kFloat32

  HostTensor clone() const;
  HostTensor reshaped(Shape shape) const;  // same storage, same element count
  // Converts any floating or integer type to float32 (a copy; returns *this if already f32). The
  // pages of a memory-mapped original are given back after a copy (they read back if used again).
  HostTensor toFloat32() const;

 private:
  DataType dtype_ = DataType::kFloat32;
  Shape shape_;
  std::shared_ptr<const void> owner_;
  const void* data_ = nullptr;
  bool writable_ = false;
};

float halfToFloat(uint16_t bits);
uint16_t floatToHalf(float value);
float bfloat16ToFloat(uint16_t bits);

}  // namespace ds2rt
