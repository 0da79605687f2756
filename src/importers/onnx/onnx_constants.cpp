#include "importers/onnx/onnx_constants.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ds2rt/error.h"

namespace ds2rt::onnx_import {

namespace {

std::vector<int64_t> strides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

// Calls body(flat_output_index, input_offset) over every output element; `source_of` maps an
// output multi-index to the input's flat offset.
template <typename Map>
HostTensor remap(const HostTensor& t, const Shape& out_shape, Map source_of) {
  HostTensor out(t.dtype(), out_shape);
  const size_t elem = sizeOf(t.dtype());
  const int64_t n = out.size();
  std::vector<int64_t> index(out_shape.size(), 0);
  auto* dst = static_cast<uint8_t*>(out.mutableData());
  const auto* src = static_cast<const uint8_t*>(t.data());
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(dst + i * elem, src + source_of(index) * elem, elem);
    for (int64_t a = static_cast<int64_t>(index.size()) - 1; a >= 0; --a) {
      if (++index[a] < out_shape[a]) break;
      index[a] = 0;
    }
  }
  return out;
}

int64_t clampToInt64(double v) {
  if (!(v == v)) return 0;
  if (v >= 9.2e18) return std::numeric_limits<int64_t>::max();
  if (v <= -9.2e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

}  // namespace

bool isFloating(DataType type) {
  return type == DataType::kFloat32 || type == DataType::kFloat16 || type == DataType::kBFloat16 ||
         type == DataType::kFloat64;
}

std::vector<int64_t> toInts(const HostTensor& t) {
  std::vector<int64_t> out(static_cast<size_t>(t.size()));
  switch (t.dtype()) {
    case DataType::kInt64: std::copy_n(t.data<int64_t>(), out.size(), out.begin()); break;
    case DataType::kInt32: std::copy_n(t.data<int32_t>(), out.size(), out.begin()); break;
    case DataType::kInt8: std::copy_n(t.data<int8_t>(), out.size(), out.begin()); break;
    case DataType::kUInt8:
    case DataType::kBool: std::copy_n(t.data<uint8_t>(), out.size(), out.begin()); break;
    default: {
      const std::vector<double> d = toDoubles(t);
      std::transform(d.begin(), d.end(), out.begin(), clampToInt64);
    }
  }
  return out;
}

std::vector<double> toDoubles(const HostTensor& t) {
  if (!isFloating(t.dtype())) {
    const std::vector<int64_t> i = toInts(t);
    return {i.begin(), i.end()};
  }
  if (t.dtype() == DataType::kFloat64) return {t.data<double>(), t.data<double>() + t.size()};
  const HostTensor f = t.toFloat32();
  return {f.data<float>(), f.data<float>() + f.size()};
}

HostTensor fromInts(Shape shape, const std::vector<int64_t>& values) {
  HostTensor out(DataType::kInt64, std::move(shape));
  check(out.size() == static_cast<int64_t>(values.size()), "internal: value count does not match the shape");
  std::copy(values.begin(), values.end(), out.mutableData<int64_t>());
  return out;
}

HostTensor fromDoubles(Shape shape, const std::vector<double>& values, DataType type) {
  HostTensor out(type, std::move(shape));
  check(out.size() == static_cast<int64_t>(values.size()), "internal: value count does not match the shape");
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    switch (type) {
      case DataType::kFloat64: out.mutableData<double>()[i] = v; break;
      case DataType::kInt64: out.mutableData<int64_t>()[i] = clampToInt64(v); break;
      case DataType::kInt32: out.mutableData<int32_t>()[i] = static_cast<int32_t>(std::clamp(v, -2147483648.0, 2147483647.0)); break;
      case DataType::kInt8: out.mutableData<int8_t>()[i] = static_cast<int8_t>(std::clamp(v, -128.0, 127.0)); break;
      case DataType::kUInt8: out.mutableData<uint8_t>()[i] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0)); break;
      case DataType::kBool: out.mutableData<uint8_t>()[i] = v != 0; break;
      case DataType::kFloat16: out.mutableData<uint16_t>()[i] = floatToHalf(static_cast<float>(v)); break;
      default: out.mutableData<float>()[i] = static_cast<float>(v); break;  // bfloat16 folds to float32
    }
  }
  return out;
}

HostTensor castTo(const HostTensor& t, DataType type) {
  if (t.dtype() == type) return t;
  if (type == DataType::kBFloat16) type = DataType::kFloat32;
  if (!isFloating(type) && !isFloating(t.dtype())) {
    const std::vector<int64_t> v = toInts(t);
    return fromDoubles(t.shape(), {v.begin(), v.end()}, type);
  }
  return fromDoubles(t.shape(), toDoubles(t), type);
}

int64_t normalizeAxis(int64_t axis, int64_t rank, const std::string& what) {
  check(axis >= -rank && axis < rank, what, ": axis ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

HostTensor transposeConst(const HostTensor& t, const std::vector<int64_t>& perm) {
  const Shape& in = t.shape();
  Shape out(in.size());
  for (size_t i = 0; i < perm.size(); ++i) out[i] = in[perm[i]];
  const std::vector<int64_t> s = strides(in);
  return remap(t, out, [&](const std::vector<int64_t>& index) {
    int64_t offset = 0;
    for (size_t i = 0; i < perm.size(); ++i) offset += index[i] * s[perm[i]];
    return offset;
  });
}

HostTensor sliceConst(const HostTensor& t, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                      const std::vector<int64_t>& axes, const std::vector<int64_t>& steps) {
  const Shape& in = t.shape();
  const int64_t rank = static_cast<int64_t>(in.size());
  std::vector<int64_t> first(in.size(), 0), step(in.size(), 1);
  Shape out = in;
  for (size_t k = 0; k < axes.size(); ++k) {
    const int64_t a = normalizeAxis(axes[k], rank, "Slice");
    const int64_t dim = in[a], st = steps[k];
    check(st != 0, "Slice: step 0");
    int64_t b = 0, e = 0;
    if (st > 0) {
      b = std::clamp<int64_t>(starts[k] < 0 ? starts[k] + dim : starts[k], 0, dim);
      e = std::clamp<int64_t>(ends[k] < 0 ? ends[k] + dim : ends[k], 0, dim);
      out[a] = e > b ? (e - b + st - 1) / st : 0;
    } else {
      b = std::clamp<int64_t>(starts[k] < 0 ? starts[k] + dim : starts[k], -1, dim - 1);
      e = std::clamp<int64_t>(ends[k] < -dim ? -1 : (ends[k] < 0 ? ends[k] + dim : ends[k]), -1, dim - 1);
      out[a] = b > e ? (b - e - st - 1) / -st : 0;
    }
    first[a] = b;
    step[a] = st;
  }
  const std::vector<int64_t> s = strides(in);
  return remap(t, out, [&](const std::vector<int64_t>& index) {
    int64_t offset = 0;
    for (size_t i = 0; i < index.size(); ++i) offset += (first[i] + index[i] * step[i]) * s[i];
    return offset;
  });
}

HostTensor gatherConst(const HostTensor& t, const HostTensor& indices, int64_t axis) {
  const Shape& in = t.shape();
  check(!in.empty(), "Gather: the data is a scalar");
  std::vector<int64_t> idx = toInts(indices);
  for (int64_t& i : idx) {
    check(i >= -in[axis] && i < in[axis], "Gather: index ", i, " is out of range for a dimension of ", in[axis]);
    if (i < 0) i += in[axis];
  }
  Shape out(in.begin(), in.begin() + axis);
  out.insert(out.end(), indices.shape().begin(), indices.shape().end());
  out.insert(out.end(), in.begin() + axis + 1, in.end());
  const std::vector<int64_t> s = strides(in);
  const size_t irank = indices.rank();
  const std::vector<int64_t> is = strides(indices.shape());
  return remap(t, out, [&](const std::vector<int64_t>& index) {
    int64_t offset = 0, flat = 0;
    for (int64_t i = 0; i < axis; ++i) offset += index[i] * s[i];
    for (size_t k = 0; k < irank; ++k) flat += index[axis + k] * is[k];
    offset += idx[flat] * s[axis];
    for (size_t i = axis + 1; i < in.size(); ++i) offset += index[i - 1 + irank] * s[i];
    return offset;
  });
}

HostTensor concatConst(const std::vector<HostTensor>& parts, int64_t axis) {
  check(!parts.empty(), "Concat: no inputs");
  Shape out = parts[0].shape();
  check(!out.empty(), "Concat: scalar inputs");
  axis = normalizeAxis(axis, static_cast<int64_t>(out.size()), "Concat");
  out[axis] = 0;
  std::vector<HostTensor> cast;
  for (const HostTensor& p : parts) {
    Shape rest = p.shape();
    check(rest.size() == out.size(), "Concat: inputs of different ranks");
    out[axis] += rest[axis];
    rest[axis] = out[axis];
    Shape expect = out;
    check(rest == expect, "Concat: shapes ", toString(parts[0].shape()), " and ", toString(p.shape()), " do not fit");
    cast.push_back(castTo(p, parts[0].dtype()));
  }
  HostTensor result(parts[0].dtype(), out);
  const size_t elem = sizeOf(result.dtype());
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= out[i];
  auto* dst = static_cast<uint8_t*>(result.mutableData());
  for (int64_t o = 0; o < outer; ++o)
    for (const HostTensor& p : cast) {
      const size_t chunk = static_cast<size_t>(p.size() / std::max<int64_t>(outer, 1)) * elem;
      std::memcpy(dst, static_cast<const uint8_t*>(p.data()) + o * chunk, chunk);
      dst += chunk;
    }
  return result;
}

Shape reshapeTarget(const Shape& input, const std::vector<int64_t>& target, bool allowzero, const std::string& what) {
  Shape out;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t d = target[i];
    if (d == 0 && !allowzero) {
      check(i < input.size(), what, ": 0 in the target shape has no input dimension to copy");
      d = input[i];
    }
    if (d == -1) {
      check(infer < 0, what, ": more than one -1 in the target shape");
      infer = static_cast<int>(i);
    } else {
      check(d >= 0, what, ": bad target dimension ", d);
      known *= d;
    }
    out.push_back(d);
  }
  const int64_t total = numElements(input);
  if (infer >= 0) {
    check(known > 0 && total % known == 0, what, ": cannot reshape ", toString(input), " to ", toString(out));
    out[infer] = total / known;
  }
  check(numElements(out) == total, what, ": cannot reshape ", toString(input), " to ", toString(out));
  return out;
}

Shape broadcastShapes(const Shape& a, const Shape& b, const std::string& what) {
  Shape out(std::max(a.size(), b.size()), 1);
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    const int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    check(da == db || da == 1 || db == 1, what, ": shapes ", toString(a), " and ", toString(b), " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

HostTensor binaryConst(BinaryOp op, const HostTensor& a, const HostTensor& b) {
  const Shape out = broadcastShapes(a.shape(), b.shape(), "constant folding");
  const bool floating = isFloating(a.dtype()) || isFloating(b.dtype());
  const auto index_of = [&](const Shape& s, const std::vector<int64_t>& index) {
    int64_t offset = 0, stride = 1;
    for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
      const int64_t at = index[i + out.size() - s.size()];
      offset += (s[i] == 1 ? 0 : at) * stride;
      stride *= s[i];
    }
    return offset;
  };
  const std::vector<double> da = toDoubles(a), db = toDoubles(b);
  const std::vector<int64_t> ia = toInts(a), ib = toInts(b);
  const int64_t n = numElements(out);
  std::vector<double> result(static_cast<size_t>(n));
  std::vector<int64_t> index(out.size(), 0);
  bool comparison = false;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = index_of(a.shape(), index), j = index_of(b.shape(), index);
    const double x = da[i], y = db[j];
    double r = 0;
    switch (op) {
      case BinaryOp::kAdd: r = floating ? x + y : static_cast<double>(ia[i] + ib[j]); break;
      case BinaryOp::kSub: r = floating ? x - y : static_cast<double>(ia[i] - ib[j]); break;
      case BinaryOp::kMul: r = floating ? x * y : static_cast<double>(ia[i] * ib[j]); break;
      case BinaryOp::kDiv:
        if (floating) r = x / y;
        else {
          check(ib[j] != 0, "constant folding: integer division by zero");
          r = static_cast<double>(ia[i] / ib[j]);  // ONNX integer Div truncates
        }
        break;
      case BinaryOp::kEqual: r = x == y; comparison = true; break;
      case BinaryOp::kLess: r = x < y; comparison = true; break;
      case BinaryOp::kGreater: r = x > y; comparison = true; break;
      case BinaryOp::kLessOrEqual: r = x <= y; comparison = true; break;
      case BinaryOp::kGreaterOrEqual: r = x >= y; comparison = true; break;
      case BinaryOp::kAnd: r = x != 0 && y != 0; comparison = true; break;
      case BinaryOp::kOr: r = x != 0 || y != 0; comparison = true; break;
    }
    result[k] = r;
    for (int64_t ax = static_cast<int64_t>(index.size()) - 1; ax >= 0; --ax) {
      if (++index[ax] < out[ax]) break;
      index[ax] = 0;
    }
  }
  return fromDoubles(out, result, comparison ? DataType::kBool : a.dtype());
}

}  // namespace ds2rt::onnx_import
