// WeightStore and its safetensors reader/writer
// (format: u64 little-endian header size, JSON header, then the raw tensor bytes).
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/file.h"
#include "ds2rt/error.h"
#include "ds2rt/weights.h"

namespace ds2rt {

using nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // as the reference implementation

HostTensor parseEntry(const std::string& name, const json& entry, std::span<const uint8_t> data,
                      const std::shared_ptr<const void>& keep_alive, const std::string& path) {
  const auto where = [&] { return cat("'", path, "': tensor '", name, "'"); };
  check(entry.is_object() && entry.contains("dtype") && entry.contains("shape") && entry.contains("data_offsets"),
        where(), " lacks dtype, shape or data_offsets");
  check(entry["dtype"].is_string(), where(), " has a dtype that is not a string");
  DataType dtype;
  try {
    dtype = dataTypeFromString(entry["dtype"].get<std::string>());
  } catch (const Error& e) {
    fail(where(), ": ", e.what());
  }
  Shape shape;
  for (const auto& d : entry["shape"]) {
    check(d.is_number_integer() && d.get<int64_t>() >= 0, where(), " has a bad shape");
    shape.push_back(d.get<int64_t>());
  }
  const auto& offsets = entry["data_offsets"];
  check(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() && offsets[1].is_number_unsigned(),
        where(), " has bad data_offsets");
  const uint64_t begin = offsets[0], end = offsets[1];
  check(begin <= end && end <= data.size(), where(), " lies outside the file (offsets ", begin, "..", end,
        ", data section ", data.size(), " bytes): the file is truncated or corrupt");
  int64_t elements = 0;
  try {
    elements = numElements(shape);
  } catch (const Error& e) {
    fail(where(), ": ", e.what());
  }
  check(static_cast<uint64_t>(elements) <= std::numeric_limits<uint64_t>::max() / sizeOf(dtype), where(),
        " has a shape too large for 64-bit byte counts: ", toString(dtype), " ", toString(shape));
  const uint64_t expected = static_cast<uint64_t>(elements) * sizeOf(dtype);
  check(end - begin == expected, where(), " holds ", end - begin, " bytes but ", toString(dtype), " ",
        toString(shape), " needs ", expected);
  return HostTensor::view(dtype, shape, data.data() + begin, keep_alive);
}

}  // namespace

WeightStore WeightStore::load(const std::string& path) {
  const auto file = detail::MappedFile::open(path);
  const auto bytes = file.bytes();
  check(bytes.size() >= 8, "'", path, "' is not a safetensors file: only ", bytes.size(), " bytes");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];
  check(header_size <= kMaxHeaderBytes && header_size <= bytes.size() - 8, "'", path,
        "' is not a safetensors file or is truncated: header of ", header_size, " bytes in a file of ",
        bytes.size());
  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_size));
  } catch (const json::exception& e) {
    fail("'", path, "' has a corrupt safetensors header: ", e.what());
  }
  check(header.is_object(), "'", path, "' has a safetensors header that is not a JSON object");

  WeightStore store;
  store.source_ = path;
  const auto data = bytes.subspan(8 + header_size);
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      check(entry.is_object(), "'", path, "': __metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        check(value.is_string(), "'", path, "': metadata '", key, "' is not a string");
        store.metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    store.tensors_[name] = parseEntry(name, entry, data, file.keepAlive(), path);
  }
  return store;
}

void WeightStore::save(const std::string& path) const {
  json header = json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors_) {
    header[name] = {{"dtype", toString(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // align the data section, as the spec allows
  std::vector<uint8_t> out(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t* cursor = out.data() + 8 + text.size();
  for (const auto& [name, t] : tensors_) {
    if (t.bytes()) std::memcpy(cursor, t.data(), t.bytes());
    cursor += t.bytes();
  }
  detail::writeFileAtomically(path, out);
}

const HostTensor& WeightStore::get(const std::string& name) const {
  const auto it = tensors_.find(name);
  check(it != tensors_.end(), source_, ": missing tensor '", name, "'");
  return it->second;
}

HostTensor WeightStore::getFloat(const std::string& name, const Shape& expected_shape) const {
  const HostTensor& t = get(name);
  check(t.shape() == expected_shape, source_, ": tensor '", name, "' has shape ", toString(t.shape()), ", expected ",
        toString(expected_shape));
  const DataType type = t.dtype();
  check(type == DataType::kFloat32 || type == DataType::kFloat16 || type == DataType::kBFloat16 ||
            type == DataType::kFloat64,
        source_, ": tensor '", name, "' has data type ", toString(type), ", expected a floating type");
  return t.toFloat32();
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors_) out.push_back(name);
  return out;
}

}  // namespace ds2rt
