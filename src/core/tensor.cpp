#include "ds2rt/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/file.h"
#include "ds2rt/error.h"

namespace ds2rt {

namespace {

struct TypeInfo {
  DataType type;
  const char* name;
  size_t size;
};

constexpr TypeInfo kTypes[] = {
    {DataType::kFloat32, "F32", 4}, {DataType::kFloat16, "F16", 2}, {DataType::kBFloat16, "BF16", 2},
    {DataType::kFloat64, "F64", 8}, {DataType::kInt64, "I64", 8},   {DataType::kInt32, "I32", 4},
    {DataType::kInt8, "I8", 1},     {DataType::kUInt8, "U8", 1},    {DataType::kBool, "BOOL", 1},
};

const TypeInfo& info(DataType type) {
  for (const auto& t : kTypes)
    if (t.type == type) return t;
  fail("unknown data type ", static_cast<int>(type));
}

template <typename Source>
void convertAll(const void* from, float* to, int64_t n) {
  const auto* src = static_cast<const Source*>(from);
  for (int64_t i = 0; i < n; ++i) to[i] = static_cast<float>(src[i]);
}

}  // namespace

size_t sizeOf(DataType type) { return info(type).size; }
const char* toString(DataType type) { return info(type).name; }

DataType dataTypeFromString(const std::string& name) {
  for (const auto& t : kTypes)
    if (name == t.name) return t.type;
  fail("unsupported tensor data type '", name, "'");
}

std::string toString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t numElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    check(d >= 0, "shape ", toString(shape), " has a dynamic dimension");
    check(d == 0 || n <= std::numeric_limits<int64_t>::max() / d, "shape ", toString(shape),
          " has more elements than fit in 64 bits");
    n *= d;
  }
  return n;
}

HostTensor::HostTensor(DataType type, Shape shape) : dtype_(type), shape_(std::move(shape)), writable_(true) {
  const size_t n = static_cast<size_t>(numElements(shape_)) * sizeOf(type);
  auto storage = std::shared_ptr<uint8_t[]>(new uint8_t[n == 0 ? 1 : n]());
  data_ = storage.get();
  owner_ = std::shared_ptr<const void>(storage, storage.get());
}

HostTensor HostTensor::view(DataType type, Shape shape, const void* data, std::shared_ptr<const void> keep_alive) {
  HostTensor t;
  t.dtype_ = type;
  t.shape_ = std::move(shape);
  numElements(t.shape_);
  t.data_ = data;
  t.owner_ = std::move(keep_alive);
  return t;
}

HostTensor HostTensor::fromFloats(Shape shape, std::vector<float> values) {
  check(numElements(shape) == static_cast<int64_t>(values.size()), "fromFloats: shape ", toString(shape),
        " does not hold ", values.size(), " values");
  HostTensor t(DataType::kFloat32, std::move(shape));
  std::memcpy(t.mutableData(), values.data(), values.size() * sizeof(float));
  return t;
}

HostTensor HostTensor::fromInts(Shape shape, const std::vector<int32_t>& values) {
  check(numElements(shape) == static_cast<int64_t>(values.size()), "fromInts: shape ", toString(shape),
        " does not hold ", values.size(), " values");
  HostTensor t(DataType::kInt32, std::move(shape));
  std::memcpy(t.mutableData(), values.data(), values.size() * sizeof(int32_t));
  return t;
}

void* HostTensor::mutableData() {
  check(writable_, "tensor ", toString(shape_), " is a read-only view");
  return const_cast<void*>(data_);
}

std::span<const float> HostTensor::floats() const {
  check(dtype_ == DataType::kFloat32, "expected a float32 tensor, got ", toString(dtype_));
  return {data<float>(), static_cast<size_t>(size())};
}

HostTensor HostTensor::clone() const {
  if (empty()) return {};
  HostTensor t(dtype_, shape_);
  if (bytes()) std::memcpy(t.mutableData(), data_, bytes());
  return t;
}

HostTensor HostTensor::reshaped(Shape shape) const {
  check(numElements(shape) == size(), "cannot reshape ", toString(shape_), " to ", toString(shape));
  HostTensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

HostTensor HostTensor::toFloat32() const {
  if (dtype_ == DataType::kFloat32) return *this;
  HostTensor t(DataType::kFloat32, shape_);
  float* out = t.mutableData<float>();
  const int64_t n = size();
  switch (dtype_) {
    case DataType::kFloat16:
      for (int64_t i = 0; i < n; ++i) out[i] = halfToFloat(data<uint16_t>()[i]);
      break;
    case DataType::kBFloat16:
      for (int64_t i = 0; i < n; ++i) out[i] = bfloat16ToFloat(data<uint16_t>()[i]);
      break;
    case DataType::kFloat64: convertAll<double>(data_, out, n); break;
    case DataType::kInt64: convertAll<int64_t>(data_, out, n); break;
    case DataType::kInt32: convertAll<int32_t>(data_, out, n); break;
    case DataType::kInt8: convertAll<int8_t>(data_, out, n); break;
    case DataType::kUInt8:
    case DataType::kBool: convertAll<uint8_t>(data_, out, n); break;
    case DataType::kFloat32: break;
  }
  detail::releaseMappedPages(data_, bytes());  // a model file's original (fp16, ...): the copy replaces it
  return t;
}

float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t floatToHalf(float value) {  // round to nearest even
  uint32_t x;
  std::memcpy(&x, &value, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow to inf
  if (abs < 0x38800000u) {  // subnormal or zero in half
    float magnitude;
    std::memcpy(&magnitude, &abs, 4);
    const float scaled = magnitude * 16777216.0f;  // 2^24: one unit = smallest subnormal
    const auto units = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | units);
  }
  const uint32_t rounded = abs + 0x0fffu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

float bfloat16ToFloat(uint16_t bits) {
  const uint32_t x = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace ds2rt
