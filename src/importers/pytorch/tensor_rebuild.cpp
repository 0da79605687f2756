#include "importers/pytorch/tensor_rebuild.h"

#include <algorithm>
#include <cstring>

#include "ds2rt/error.h"

namespace ds2rt::pytorch {

namespace {

constexpr int64_t kMaxRepeatedBytes = int64_t{1} << 30;

int64_t checkedMulAdd(int64_t a, int64_t b, int64_t c, const std::string& what) {  // a * b + c
  int64_t product, sum;
  check(!__builtin_mul_overflow(a, b, &product) && !__builtin_add_overflow(product, c, &sum), what,
        ": its sizes and strides overflow 64 bits (corrupt file)");
  return sum;
}

bool isContiguous(const Shape& size, const Shape& stride) {
  int64_t expected = 1;
  for (size_t i = size.size(); i-- > 0;) {
    if (size[i] != 1 && stride[i] != expected) return false;
    expected *= size[i];
  }
  return true;
}

}  // namespace

HostTensor rebuildTensor(const TensorRef& t, const StorageBytes& storage, bool big_endian, const std::string& what) {
  const Global& type = *t.dtype;
  check(type.dtype.has_value(), what, " has element type ", type.qualifiedName(), ", which ds2rt has no tensors of");
  const DataType dtype = *type.dtype;
  const auto element = static_cast<int64_t>(sizeOf(dtype));
  const int64_t elements = numElements(t.size);
  if (elements == 0) return HostTensor(dtype, t.size);

  // Storage capacity in elements of the tensor's type, and the furthest element the view reads.
  const int64_t declared = checkedMulAdd(t.storage->numel, static_cast<int64_t>(t.storage->type->element_size), 0, what);
  check(declared <= static_cast<int64_t>(storage->size()), what, ": storage '", t.storage->key, "' holds ",
        storage->size(), " bytes, but the checkpoint declares ", declared, " (truncated or corrupt file)");
  const int64_t capacity = declared / element;
  int64_t last = t.offset;
  for (size_t i = 0; i < t.size.size(); ++i) last = checkedMulAdd(t.size[i] - 1, t.stride[i], last, what);
  check(last < capacity, what, " (size ", toString(t.size), ", stride ", toString(t.stride), ", offset ", t.offset,
        ") reaches past the end of storage '", t.storage->key, "' (", capacity, " elements): corrupt file");

  // Stride-0 (expanded) tensors repeat storage elements; a few may, gigabytes of them are an attack.
  check(elements <= capacity || elements <= kMaxRepeatedBytes / element, what, " (size ", toString(t.size),
        ") repeats its ", capacity, "-element storage into more than ", kMaxRepeatedBytes >> 20,
        " MiB: corrupt or hostile file");

  const uint8_t* base = storage->data();
  if (!big_endian && isContiguous(t.size, t.stride))
    return HostTensor::view(dtype, t.size, base + t.offset * element, storage);

  HostTensor out(dtype, t.size);
  auto* dst = static_cast<uint8_t*>(out.mutableData());
  std::vector<int64_t> index(t.size.size(), 0);
  for (int64_t n = 0; n < elements; ++n) {
    int64_t at = t.offset;
    for (size_t i = 0; i < index.size(); ++i) at += index[i] * t.stride[i];
    const uint8_t* src = base + at * element;
    if (big_endian)
      std::reverse_copy(src, src + element, dst + n * element);
    else
      std::memcpy(dst + n * element, src, static_cast<size_t>(element));
    for (size_t i = index.size(); i-- > 0;) {  // next multi-index, last dimension fastest
      if (++index[i] < t.size[i]) break;
      index[i] = 0;
    }
  }
  return out;
}

}  // namespace ds2rt::pytorch
