// Constant folding for the ONNX importer: the shape plumbing that torch.onnx.export emits
// (Shape, Gather, Concat, Slice, Reshape, Cast, arithmetic on small integer tensors) is computed
// at import time on HostTensors. Element types are kept; integers compute in int64, floats in double.
#pragma once

#include <string>
#include <vector>

#include "ds2rt/tensor.h"

namespace ds2rt::onnx_import {

bool isFloating(DataType type);
std::vector<int64_t> toInts(const HostTensor& t);
std::vector<double> toDoubles(const HostTensor& t);
HostTensor fromInts(Shape shape, const std::vector<int64_t>& values);
HostTensor fromDoubles(Shape shape, const std::vector<double>& values, DataType type);
HostTensor castTo(const HostTensor& t, DataType type);

// An axis in [-rank, rank) made non-negative; throws naming `what` when out of range.
int64_t normalizeAxis(int64_t axis, int64_t rank, const std::string& what);

HostTensor transposeConst(const HostTensor& t, const std::vector<int64_t>& perm);
HostTensor sliceConst(const HostTensor& t, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                      const std::vector<int64_t>& axes, const std::vector<int64_t>& steps);
HostTensor gatherConst(const HostTensor& t, const HostTensor& indices, int64_t axis);
HostTensor concatConst(const std::vector<HostTensor>& parts, int64_t axis);
// ONNX Reshape semantics: 0 copies the input dimension (unless allowzero), -1 is inferred.
Shape reshapeTarget(const Shape& input, const std::vector<int64_t>& target, bool allowzero, const std::string& what);

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kEqual, kLess, kGreater, kLessOrEqual, kGreaterOrEqual, kAnd, kOr };
// Numpy-style broadcasting; comparisons give bool.
HostTensor binaryConst(BinaryOp op, const HostTensor& a, const HostTensor& b);
Shape broadcastShapes(const Shape& a, const Shape& b, const std::string& what);

}  // namespace ds2rt::onnx_import
