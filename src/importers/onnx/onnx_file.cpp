#include "importers/onnx/onnx_file.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "ds2rt/error.h"

namespace ds2rt::onnx_import {

namespace {

}  // namespace

DataType dataType(int32_t onnx_type, const std::string& where) {
  switch (onnx_type) {
    case onnx::TensorProto::FLOAT: return DataType::kFloat32;
    case onnx::TensorProto::FLOAT16: return DataType::kFloat16;
    case onnx::TensorProto::BFLOAT16: return DataType::kBFloat16;
    case onnx::TensorProto::DOUBLE: return DataType::kFloat64;
    case onnx::TensorProto::INT64: return DataType::kInt64;
    case onnx::TensorProto::INT32: return DataType::kInt32;
    case onnx::TensorProto::INT8: return DataType::kInt8;
    case onnx::TensorProto::UINT8: return DataType::kUInt8;
    case onnx::TensorProto::BOOL: return DataType::kBool;
    default: break;
  }
  fail(where, ": ONNX data type ", onnx_type, " (", onnx::TensorProto::DataType_Name(onnx_type),
       ") is not supported (float, float16, bfloat16, double, int64, int32, int8, uint8 and bool are)");
}

namespace {

template <typename Field, typename T>
void copyTyped(const Field& field, HostTensor& out, const std::string& where) {
  check(static_cast<int64_t>(field.size()) == out.size(), where, ": holds ", field.size(), " values, its shape ",
        toString(out.shape()), " needs ", out.size());
  T* dst = out.mutableData<T>();
  for (int i = 0; i < field.size(); ++i) dst[i] = static_cast<T>(field.Get(i));
}

}  // namespace

onnx::ModelProto parseModel(std::span<const uint8_t> bytes, const std::string& source) {
  check(!bytes.empty(), "'", source, "' is empty, not an ONNX model");
  check(bytes.size() < static_cast<size_t>(std::numeric_limits<int>::max()), "'", source,
        "' is larger than 2 GiB: ONNX models that large keep their weights as external data, which ds2rt does not read");
  onnx::ModelProto model;
  check(model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())), "'", source,
        "' is not an ONNX model: its bytes do not parse as an ONNX ModelProto (truncated or another format)");
  check(model.has_graph(), "'", source, "' is not an ONNX model: the ModelProto has no graph");
  const onnx::GraphProto& g = model.graph();
  check(g.node_size() > 0, "'", source, "': the ONNX graph '", g.name(), "' has no nodes");
  check(g.output_size() > 0, "'", source, "': the ONNX graph '", g.name(), "' has no outputs");
  (void)defaultOpset(model);
  for (const auto& init : g.initializer()) {
    check(!init.name().empty(), "'", source, "': an initializer has no name");
    check(init.data_location() != onnx::TensorProto::EXTERNAL && init.external_data_size() == 0, "'", source,
          "': initializer '", init.name(),
          "' keeps its data in an external file; ds2rt reads self-contained ONNX files only (save the model with "
          "onnx.save(model, path, save_as_external_data=False))");
  }
  return model;
}

onnx::ModelProto readModel(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open '", path, "'");
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parseModel(bytes, path);
}

bool looksLikeOnnx(std::span<const uint8_t> bytes) {
  if (bytes.empty() || bytes.size() >= static_cast<size_t>(std::numeric_limits<int>::max())) return false;
  onnx::ModelProto model;
  return model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) && model.has_graph() &&
         model.graph().node_size() > 0;
}

int64_t defaultOpset(const onnx::ModelProto& model) {
  for (const auto& opset : model.opset_import())
    if (opset.domain().empty() || opset.domain() == "ai.onnx") return opset.version();
  fail("the ONNX model imports no version of the default operator set (opset_import is empty)");
}

HostTensor toHostTensor(const onnx::TensorProto& proto, const std::string& where) {
  check(proto.data_location() != onnx::TensorProto::EXTERNAL && proto.external_data_size() == 0, where,
        ": keeps its data in an external file, which ds2rt does not read");
  const DataType type = dataType(proto.data_type(), where);
  Shape shape;
  for (int64_t d : proto.dims()) {
    check(d >= 0 && d < (int64_t{1} << 40), where, ": bad dimension ", d);
    shape.push_back(d);
  }
  int64_t count = 1;
  for (int64_t d : shape) {
    check(d == 0 || count <= (int64_t{1} << 40) / d, where, ": too many elements");
    count *= d;
  }
  // The data must be there before anything is allocated for it (a forged shape must not allocate).
  const int64_t stored = proto.has_raw_data() ? static_cast<int64_t>(proto.raw_data().size() / sizeOf(type))
                                              : std::max<int64_t>({proto.float_data_size(), proto.double_data_size(),
                                                                   proto.int64_data_size(), proto.int32_data_size()});
  check(stored >= count, where, ": holds ", stored, " values, its shape ", toString(shape), " needs ", count);
  HostTensor out(type, shape);
  if (proto.has_raw_data()) {
    check(proto.raw_data().size() == out.bytes(), where, ": raw data holds ", proto.raw_data().size(),
          " bytes, its shape ", toString(shape), " of ", toString(type), " needs ", out.bytes());
    if (out.bytes() > 0) std::memcpy(out.mutableData(), proto.raw_data().data(), out.bytes());
    return out;
  }
  switch (type) {
    case DataType::kFloat32: copyTyped<decltype(proto.float_data()), float>(proto.float_data(), out, where); break;
    case DataType::kFloat64: copyTyped<decltype(proto.double_data()), double>(proto.double_data(), out, where); break;
    case DataType::kInt64: copyTyped<decltype(proto.int64_data()), int64_t>(proto.int64_data(), out, where); break;
    case DataType::kInt32: copyTyped<decltype(proto.int32_data()), int32_t>(proto.int32_data(), out, where); break;
    case DataType::kInt8: copyTyped<decltype(proto.int32_data()), int8_t>(proto.int32_data(), out, where); break;
    case DataType::kUInt8:
    case DataType::kBool: copyTyped<decltype(proto.int32_data()), uint8_t>(proto.int32_data(), out, where); break;
    case DataType::kFloat16:
    case DataType::kBFloat16:  // the bits, one per int32
      copyTyped<decltype(proto.int32_data()), uint16_t>(proto.int32_data(), out, where);
      break;
  }
  return out;
}

}  // namespace ds2rt::onnx_import
