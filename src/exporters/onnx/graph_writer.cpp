#include "exporters/onnx/graph_writer.h"

#include <bit>

#include "core/overloaded.h"
#include "ds2rt/error.h"

namespace ds2rt::onnx_export {

// ONNX raw_data is little-endian; the tensors are copied as they lie in memory.
static_assert(std::endian::native == std::endian::little, "the ONNX exporter assumes a little-endian host");

void GraphWriter::claim(const std::string& name) {
  check(names_.insert(name).second, "ONNX export: the value name '", name, "' is used twice");
}

std::string GraphWriter::node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                              const std::vector<NamedAttribute>& attributes) {
  claim(name);
  onnx::NodeProto& n = *graph_.add_node();
  n.set_op_type(op);
  n.set_name(name);
  for (const std::string& input : inputs) n.add_input(input);
  n.add_output(name);
  for (const NamedAttribute& a : attributes) {
    onnx::AttributeProto& attribute = *n.add_attribute();
    attribute.set_name(a.name);
    std::visit(detail::Overloaded{
                   [&](int64_t v) { attribute.set_type(onnx::AttributeProto::INT), attribute.set_i(v); },
                   [&](float v) { attribute.set_type(onnx::AttributeProto::FLOAT), attribute.set_f(v); },
                   [&](const std::string& v) { attribute.set_type(onnx::AttributeProto::STRING), attribute.set_s(v); },
                   [&](const std::vector<int64_t>& v) {
                     attribute.set_type(onnx::AttributeProto::INTS);
                     for (int64_t x : v) attribute.add_ints(x);
                   },
               },
               a.value);
  }
  return name;
}

std::string GraphWriter::weight(const std::string& name, const HostTensor& tensor) {
  claim(name);
  const HostTensor values = tensor.toFloat32();
  onnx::TensorProto& t = *graph_.add_initializer();
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : values.shape()) t.add_dims(d);
  t.set_raw_data(values.data(), values.bytes());
  return name;
}

std::string GraphWriter::ints(const std::string& name, const std::vector<int64_t>& values) {
  claim(name);
  onnx::TensorProto& t = *graph_.add_initializer();
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) t.add_int64_data(v);
  return name;
}

std::string GraphWriter::scalar(const std::string& name, float value) {
  claim(name);
  onnx::TensorProto& t = *graph_.add_initializer();
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_float_data(value);
  return name;
}

std::string GraphWriter::scalar(const std::string& name, int64_t value) {
  claim(name);
  onnx::TensorProto& t = *graph_.add_initializer();
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_int64_data(value);
  return name;
}

void GraphWriter::describe(onnx::ValueInfoProto& value, const std::string& name, int32_t elem_type,
                           const Shape& shape, const std::vector<std::string>& symbols) {
  value.set_name(name);
  onnx::TypeProto::Tensor& type = *value.mutable_type()->mutable_tensor_type();
  type.set_elem_type(elem_type);
  size_t symbol = 0;
  for (int64_t d : shape) {
    onnx::TensorShapeProto::Dimension& dim = *type.mutable_shape()->add_dim();
    if (d >= 0) {
      dim.set_dim_value(d);
    } else {
      check(symbol < symbols.size(), "ONNX export: value '", name, "' has more dynamic dimensions than names");
      dim.set_dim_param(symbols[symbol++]);
    }
  }
}

void GraphWriter::input(const std::string& name, int32_t elem_type, const Shape& shape,
                        const std::vector<std::string>& symbols) {
  claim(name);
  describe(*graph_.add_input(), name, elem_type, shape, symbols);
}

void GraphWriter::output(const std::string& name, int32_t elem_type, const Shape& shape,
                         const std::vector<std::string>& symbols) {
  describe(*graph_.add_output(), name, elem_type, shape, symbols);
}

}  // namespace ds2rt::onnx_export
