#include "importers/pickle/numpy_array.h"

#include <algorithm>
#include <cstring>

#include "ds2rt/error.h"

namespace ds2rt::pickle {

namespace {

DataType elementType(const std::string& code, const std::string& what) {
  static const std::pair<const char*, DataType> kTypes[] = {
      {"f2", DataType::kFloat16}, {"f4", DataType::kFloat32}, {"f8", DataType::kFloat64}, {"i1", DataType::kInt8},
      {"i4", DataType::kInt32},   {"i8", DataType::kInt64},   {"u1", DataType::kUInt8},   {"b1", DataType::kBool},
  };
  for (const auto& [name, type] : kTypes)
    if (code == name) return type;
  fail(what, ": numpy dtype '", code, "' is not one ds2rt reads (float16/32/64, int8/32/64, uint8, bool)");
}

// Fortran order: the data is the C-order array of the reversed shape; transpose it back.
std::vector<uint8_t> toCOrder(const uint8_t* data, const Shape& shape, size_t element) {
  const int64_t count = numElements(shape);
  std::vector<uint8_t> out(static_cast<size_t>(count) * element);
  const size_t rank = shape.size();
  std::vector<int64_t> index(rank, 0);
  for (int64_t c = 0; c < count; ++c) {  // c walks the C-order positions; index is its multi-index
    int64_t f = 0;
    for (size_t d = rank; d-- > 0;) f = f * shape[d] + index[d];
    std::memcpy(out.data() + static_cast<size_t>(c) * element, data + static_cast<size_t>(f) * element, element);
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace

HostTensor toHostTensor(const NumpyArray& array, const std::string& what) {
  check(array.built && array.dtype && array.data, what, ": a numpy array that was never given its data (corrupt pickle)");
  std::string code = array.dtype->code;
  char order = array.dtype->byte_order;
  if (!code.empty() && (code[0] == '<' || code[0] == '>' || code[0] == '|' || code[0] == '=')) {
    order = code[0];
    code.erase(0, 1);
  }
  const DataType type = elementType(code, what);
  const size_t element = sizeOf(type);
  const int64_t count = numElements(array.shape);
  const std::string& bytes = array.data->data;
  check(bytes.size() == static_cast<size_t>(count) * element, what, ": numpy array ", toString(array.shape), " of '",
        code, "' needs ", static_cast<size_t>(count) * element, " bytes of data, the file holds ", bytes.size(),
        " (corrupt file?)");
  HostTensor out(type, array.shape);
  auto* dst = static_cast<uint8_t*>(out.mutableData());
  const auto* src = reinterpret_cast<const uint8_t*>(bytes.data());
  if (array.fortran_order && array.shape.size() > 1) {
    const std::vector<uint8_t> c_order = toCOrder(src, array.shape, element);
    std::copy(c_order.begin(), c_order.end(), dst);
  } else {
    std::copy(src, src + bytes.size(), dst);
  }
  if (order == '>' && element > 1)
    for (size_t i = 0; i < bytes.size(); i += element) std::reverse(dst + i, dst + i + element);
  return out;
}

}  // namespace ds2rt::pickle
