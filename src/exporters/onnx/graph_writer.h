// A thin layer over onnx::GraphProto for exporters: nodes, attributes and initializers in one call
// each, with names checked for uniqueness (ONNX requires every value to be produced once).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "ds2rt/tensor.h"

namespace ds2rt::onnx_export {

using Attribute = std::variant<int64_t, float, std::string, std::vector<int64_t>>;
struct NamedAttribute {
  std::string name;
  Attribute value;
};

class GraphWriter {
 public:
  explicit GraphWriter(onnx::GraphProto& graph) : graph_(graph) {}

  // Adds node `name` computing `op` of `inputs` into one output value, also called `name`; returns it.
  std::string node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                   const std::vector<NamedAttribute>& attributes = {});

  // Initializers: a float32 tensor of any shape (converted from the tensor's type), 1-D int64
  // values, and 0-d scalars.
  std::string weight(const std::string& name, const HostTensor& tensor);
  std::string ints(const std::string& name, const std::vector<int64_t>& values);
  std::string scalar(const std::string& name, float value);
  std::string scalar(const std::string& name, int64_t value);

  // Graph inputs and outputs; a dimension < 0 is dynamic and takes the next name of `symbols`.
  void input(const std::string& name, int32_t elem_type, const Shape& shape, const std::vector<std::string>& symbols);
  void output(const std::string& name, int32_t elem_type, const Shape& shape, const std::vector<std::string>& symbols);

 private:
  void claim(const std::string& name);
  static void describe(onnx::ValueInfoProto& value, const std::string& name, int32_t elem_type, const Shape& shape,
                       const std::vector<std::string>& symbols);

  onnx::GraphProto& graph_;
  std::set<std::string> names_;
};

}  // namespace ds2rt::onnx_export
