// Reading an ONNX file: the ModelProto with its structure checked, and TensorProtos as HostTensors.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <span>
#include <string>

#include "ds2rt/tensor.h"

namespace ds2rt::onnx_import {

// Parses and checks the container: a ModelProto with a non-empty graph, an opset for the default
// domain, and initializers that hold their data in the file. `source` names the file in errors.
onnx::ModelProto parseModel(std::span<const uint8_t> bytes, const std::string& source);
onnx::ModelProto readModel(const std::string& path);
// Whether the bytes parse as a ModelProto that has a graph (cheap enough for format detection).
bool looksLikeOnnx(std::span<const uint8_t> bytes);

// A TensorProto's values (float32, float16, bfloat16, float64, int64, int32, int8, uint8, bool).
// External data is refused. `where` names the tensor in errors.
HostTensor toHostTensor(const onnx::TensorProto& proto, const std::string& where);

// The ds2rt type of an ONNX TensorProto::DataType; throws for the types ds2rt does not read.
DataType dataType(int32_t onnx_type, const std::string& where);

// The version of the default ("" or "ai.onnx") opset the model imports.
int64_t defaultOpset(const onnx::ModelProto& model);

}  // namespace ds2rt::onnx_import
