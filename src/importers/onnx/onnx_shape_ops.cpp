// The ONNX nodes that fold at import: constants, shape plumbing (Shape, Gather, Reshape, Transpose,
// Concat, Slice, ...), the lengths arithmetic, and masks built from the lengths.
#include <algorithm>
#include <cmath>

#include "importers/onnx/onnx_translator.h"

namespace ds2rt::onnx_import {

void Translator::constantNode() {
  const onnx::AttributeProto* a = nullptr;
  for (const auto& at : node_->attribute()) a = &at;
  check(a != nullptr, where_, ": has no value");
  if (a->name() == "value") return setOutput(0, ConstValue{toHostTensor(a->t(), where_)});
  if (a->name() == "value_float") return setOutput(0, ConstValue{HostTensor::fromFloats({}, {a->f()})});
  if (a->name() == "value_floats")
    return setOutput(0, ConstValue{HostTensor::fromFloats({a->floats_size()}, {a->floats().begin(), a->floats().end()})});
  if (a->name() == "value_int") return setOutput(0, ConstValue{fromInts({}, {a->i()})});
  if (a->name() == "value_ints")
    return setOutput(0, ConstValue{fromInts({a->ints_size()}, {a->ints().begin(), a->ints().end()})});
  fail(where_, ": a Constant of kind '", a->name(), "' is not supported");
}

void Translator::castNode() {
  const Value& v = input(0);
  const int64_t to = attrInt("to", onnx::TensorProto::FLOAT);
  if (const auto* c = std::get_if<ConstValue>(&v)) {
    return setOutput(0, ConstValue{castTo(c->tensor, dataType(static_cast<int32_t>(to), where_))});
  }
  setOutput(0, v);  // sizes, lengths, masks and data keep their meaning across casts
}

void Translator::shapeNode() {
  const Value& v = input(0);
  ShapeValue s;
  if (const auto* n = std::get_if<NetValue>(&v)) {
    for (const auto& g : n->axes) s.dims.push_back(product(g));
  } else if (const auto* c = std::get_if<ConstValue>(&v)) {
    for (int64_t d : c->tensor.shape()) s.dims.push_back(Dim{d, ""});
  } else if (const auto* f = std::get_if<FillValue>(&v)) {
    s.dims = f->shape;
  } else if (const auto* l = std::get_if<LengthsValue>(&v)) {
    s.dims.assign(static_cast<size_t>(l->rank), Dim{});
    s.dims[l->batch_axis] = Dim{1, "N"};
  } else {
    fail(where_, ": Shape of ", kindOf(v), " is not supported");
  }
  const int64_t rank = static_cast<int64_t>(s.dims.size());
  int64_t start = attrInt("start", 0), end = attrInt("end", rank);
  start = std::clamp<int64_t>(start < 0 ? start + rank : start, 0, rank);
  end = std::clamp<int64_t>(end < 0 ? end + rank : end, 0, rank);
  s.dims = std::vector<Dim>(s.dims.begin() + start, s.dims.begin() + std::max(start, end));
  setOutput(0, fromShape(s));
}

void Translator::gatherNode() {
  const Value& data = input(0);
  const HostTensor& indices = constInput(1, "indices");
  const int64_t axis = attrInt("axis", 0);
  if (const auto* c = std::get_if<ConstValue>(&data))
    return setOutput(0, ConstValue{gatherConst(c->tensor, indices, normalizeAxis(axis, c->tensor.rank(), where_))});
  const auto s = asShape(data);
  check(s && !s->scalar && indices.rank() <= 1, where_, ": Gather from ", kindOf(data), " is not supported");
  ShapeValue out{{}, indices.rank() == 0};
  for (int64_t i : toInts(indices)) {
    const int64_t n = static_cast<int64_t>(s->dims.size());
    check(i >= -n && i < n, where_, ": index ", i, " is out of range for ", n, " values");
    out.dims.push_back(s->dims[i < 0 ? i + n : i]);
  }
  setOutput(0, fromShape(out));
}

namespace {

// Where each old axis lands when `axes` (of the new rank) are inserted.
std::vector<int> insertedPositions(int old_rank, std::vector<int64_t> axes, const std::string& where) {
  const int64_t rank = old_rank + static_cast<int64_t>(axes.size());
  for (int64_t& a : axes) a = normalizeAxis(a, rank, where);
  std::vector<int> positions;
  for (int64_t i = 0; i < rank; ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) positions.push_back(static_cast<int>(i));
  check(static_cast<int64_t>(positions.size()) == old_rank, where, ": repeated axes");
  return positions;
}

}  // namespace

void Translator::unsqueezeNode() {
  const Value& v = input(0);
  const auto axes = axesArgument(1);
  check(axes.has_value(), where_, ": no axes");
  const int64_t k = static_cast<int64_t>(axes->size());
  if (const auto* c = std::get_if<ConstValue>(&v)) {
    const auto pos = insertedPositions(static_cast<int>(c->tensor.rank()), *axes, where_);
    Shape shape(c->tensor.rank() + k, 1);
    for (size_t i = 0; i < pos.size(); ++i) shape[pos[i]] = c->tensor.dim(i);
    return setOutput(0, ConstValue{c->tensor.reshaped(shape)});
  }
  if (const auto* s = std::get_if<ShapeValue>(&v); s && s->scalar && k == 1) {
    ShapeValue out = *s;
    out.scalar = false;
    return setOutput(0, out);
  }
  if (auto* l = std::get_if<LengthsValue>(&v)) {
    LengthsValue out = *l;
    out.batch_axis = insertedPositions(l->rank, *axes, where_)[l->batch_axis];
    out.rank += static_cast<int>(k);
    return setOutput(0, out);
  }
  if (auto* t = std::get_if<TimeIndexValue>(&v)) {
    TimeIndexValue out = *t;
    out.time_axis = insertedPositions(t->rank, *axes, where_)[t->time_axis];
    out.rank += static_cast<int>(k);
    return setOutput(0, out);
  }
  if (auto* m = std::get_if<MaskValue>(&v)) {
    MaskValue out = *m;
    const auto pos = insertedPositions(m->rank, *axes, where_);
    out.batch_axis = pos[m->batch_axis];
    out.time_axis = pos[m->time_axis];
    out.rank += static_cast<int>(k);
    return setOutput(0, out);
  }
  if (auto* n = std::get_if<NetValue>(&v)) {
    NetValue out = *n;
    const auto pos = insertedPositions(static_cast<int>(n->axes.size()), *axes, where_);
    out.axes.assign(n->axes.size() + k, {});
    for (size_t i = 0; i < pos.size(); ++i) out.axes[pos[i]] = n->axes[i];
    return setOutput(0, out);
  }
  fail(where_, ": Unsqueeze of ", kindOf(v), " is not supported");
}

void Translator::squeezeNode() {
  const Value& v = input(0);
  const auto axes = axesArgument(1);
  if (const auto* c = std::get_if<ConstValue>(&v)) {
    Shape shape;
    for (int64_t i = 0; i < static_cast<int64_t>(c->tensor.rank()); ++i) {
      const bool listed = axes && std::any_of(axes->begin(), axes->end(), [&](int64_t a) {
        return normalizeAxis(a, c->tensor.rank(), where_) == i;
      });
      if (listed) check(c->tensor.dim(i) == 1, where_, ": axis ", i, " has size ", c->tensor.dim(i), ", not 1");
      if (!(listed || (!axes && c->tensor.dim(i) == 1))) shape.push_back(c->tensor.dim(i));
    }
    return setOutput(0, ConstValue{c->tensor.reshaped(shape)});
  }
  if (const auto* s = std::get_if<ShapeValue>(&v); s && !s->scalar && s->dims.size() == 1) {
    return setOutput(0, ShapeValue{s->dims, true});
  }
  if (const auto* n = std::get_if<NetValue>(&v)) {
    NetValue out = *n;
    out.axes.clear();
    const int64_t rank = static_cast<int64_t>(n->axes.size());
    for (int64_t i = 0; i < rank; ++i) {
      const bool unit = product(n->axes[i]) == Dim{};
      const bool listed = axes && std::any_of(axes->begin(), axes->end(), [&](int64_t a) {
        return normalizeAxis(a, rank, where_) == i;
      });
      check(!listed || unit, where_, ": axis ", i, " of ", describeAxes(n->axes), " does not have size 1");
      if (listed || (!axes && unit)) {
        if (!n->axes[i].empty()) out.axes.back().insert(out.axes.back().end(), n->axes[i].begin(), n->axes[i].end());
        continue;
      }
      out.axes.push_back(n->axes[i]);
    }
    return setOutput(0, out);
  }
  fail(where_, ": Squeeze of ", kindOf(v), " is not supported");
}

void Translator::concatNode() {
  std::vector<HostTensor> consts;
  bool all_const = true;
  for (int i = 0; i < node_->input_size(); ++i) {
    const auto* c = std::get_if<ConstValue>(&input(i));
    if (c) consts.push_back(c->tensor);
    all_const = all_const && c;
  }
  if (all_const) return setOutput(0, ConstValue{concatConst(consts, attrInt("axis", 0))});
  ShapeValue out;
  for (int i = 0; i < node_->input_size(); ++i) {
    const auto s = asShape(input(i));
    check(s && !s->scalar, where_, ": Concat of ", kindOf(input(i)), " is not supported (only of sizes and constants)");
    out.dims.insert(out.dims.end(), s->dims.begin(), s->dims.end());
  }
  setOutput(0, fromShape(out));
}

void Translator::reshapeNode(bool flatten_op) {
  const Value& v = input(0);
  if (const auto* c = std::get_if<ConstValue>(&v)) {
    Shape target;
    if (flatten_op) {
      const int64_t axis = normalizeAxis(attrInt("axis", 1), c->tensor.rank() + 1, where_);
      int64_t a = 1, b = 1;
      for (int64_t i = 0; i < static_cast<int64_t>(c->tensor.rank()); ++i) (i < axis ? a : b) *= c->tensor.dim(i);
      target = {a, b};
    } else {
      target = reshapeTarget(c->tensor.shape(), intsInput(1, "shape"), attrInt("allowzero", 0) != 0, where_);
    }
    return setOutput(0, ConstValue{c->tensor.reshaped(target)});
  }
  const auto* n = std::get_if<NetValue>(&v);
  check(n != nullptr, where_, ": reshaping ", kindOf(v), " is not supported");
  NetValue out = *n;
  std::vector<Dim> target;
  if (flatten_op) {
    const int64_t axis = normalizeAxis(attrInt("axis", 1), static_cast<int64_t>(n->axes.size()) + 1, where_);
    Dim a, b;
    for (int64_t i = 0; i < static_cast<int64_t>(n->axes.size()); ++i) (i < axis ? a : b) = (i < axis ? a : b) * product(n->axes[i]);
    target = {a, b};
  } else {
    const auto s = asShape(input(1));
    check(s && !s->scalar, where_, ": the target shape must be constant or computed from sizes");
    target = s->dims;
    const bool allowzero = attrInt("allowzero", 0) != 0;
    for (size_t i = 0; i < target.size(); ++i)
      if (target[i] == Dim{0, ""} && !allowzero) {
        check(i < n->axes.size(), where_, ": 0 in the target shape has no input axis to copy");
        target[i] = product(n->axes[i]);
      }
  }
  // Regroup the atoms: left to right up to a -1, right to left after it; -1 takes what is left.
  const std::vector<Atom> atoms = flatten(n->axes);
  const auto infer = std::find(target.begin(), target.end(), Dim{-1, ""});
  const size_t split = static_cast<size_t>(infer - target.begin());
  out.axes.assign(target.size(), {});
  size_t lo = 0, hi = atoms.size();
  auto fill = [&](size_t i, bool from_left) {
    Dim d;
    std::vector<Atom>& g = out.axes[i];
    while (!(d == target[i])) {
      check(lo < hi, where_, ": cannot reshape ", describeAxes(n->axes), " to the target shape");
      const Atom a = from_left ? atoms[lo++] : atoms[--hi];
      from_left ? g.push_back(a) : void(g.insert(g.begin(), a));
      d = d * a.size;
      if (d.symbols.size() > target[i].symbols.size() || (d.known() && target[i].known() && d.factor > target[i].factor && target[i].factor > 0))
        fail(where_, ": reshaping ", describeAxes(n->axes), " to the target shape would split an axis (", atomNames(g),
             " is not ", target[i].str(), ")");
    }
  };
  for (size_t i = 0; i < std::min(split, target.size()); ++i) fill(i, true);
  if (infer != target.end()) {
    for (size_t i = target.size(); i-- > split + 1;) fill(i, false);
    out.axes[split] = std::vector<Atom>(atoms.begin() + lo, atoms.begin() + hi);
    lo = hi;
  }
  check(lo == hi, where_, ": cannot reshape ", describeAxes(n->axes), " to the target shape");
  setOutput(0, out);
}

void Translator::transposeNode() {
  const Value& v = input(0);
  auto perm = attrInts("perm");
  if (const auto* c = std::get_if<ConstValue>(&v)) {
    if (!perm) for (int64_t i = c->tensor.rank(); i-- > 0;) perm->push_back(i);
    return setOutput(0, ConstValue{transposeConst(c->tensor, perm.value_or(std::vector<int64_t>{}))});
  }
  const auto* n = std::get_if<NetValue>(&v);
  check(n != nullptr, where_, ": transposing ", kindOf(v), " is not supported");
  const int64_t rank = static_cast<int64_t>(n->axes.size());
  std::vector<int64_t> p = perm.value_or(std::vector<int64_t>{});
  if (!perm)
    for (int64_t i = rank; i-- > 0;) p.push_back(i);
  check(static_cast<int64_t>(p.size()) == rank, where_, ": perm has ", p.size(), " entries for rank ", rank);
  NetValue out = *n;
  for (int64_t i = 0; i < rank; ++i) out.axes[i] = n->axes[normalizeAxis(p[i], rank, where_)];
  setOutput(0, out);
}

void Translator::sliceNode() {
  std::vector<int64_t> starts, ends, axes, steps;
  if (opset_ < 10) {
    starts = attrInts("starts").value_or(std::vector<int64_t>{});
    ends = attrInts("ends").value_or(std::vector<int64_t>{});
    axes = attrInts("axes").value_or(std::vector<int64_t>{});
  } else {
    starts = intsInput(1, "starts");
    ends = intsInput(2, "ends");
    if (hasInput(3)) axes = intsInput(3, "axes");
    if (hasInput(4)) steps = intsInput(4, "steps");
  }
  check(starts.size() == ends.size(), where_, ": starts and ends differ in length");
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  check(axes.size() == starts.size() && steps.size() == starts.size(), where_, ": starts, ends, axes and steps differ in length");
  const Value& v = input(0);
  if (const auto* c = std::get_if<ConstValue>(&v)) return setOutput(0, ConstValue{sliceConst(c->tensor, starts, ends, axes, steps)});
  const auto s = asShape(v);
  check(s && !s->scalar, where_, ": slicing ", kindOf(v), " is not supported");
  // Slice the list of sizes through the constant code path on their positions.
  std::vector<int64_t> positions(s->dims.size());
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int64_t>(i);
  const HostTensor picked = sliceConst(fromInts({static_cast<int64_t>(positions.size())}, positions), starts, ends, axes, steps);
  ShapeValue out;
  for (int64_t i : toInts(picked)) out.dims.push_back(s->dims[i]);
  setOutput(0, fromShape(out));
}

void Translator::rangeNode() {
  const Value& limit = input(1);
  const std::vector<int64_t> start = intsInput(0, "start"), delta = intsInput(2, "delta");
  if (const auto* c = std::get_if<ConstValue>(&limit)) {
    const std::vector<double> s = toDoubles(constInput(0, "start")), l = toDoubles(c->tensor), d = toDoubles(constInput(2, "delta"));
    check(s.size() == 1 && l.size() == 1 && d.size() == 1 && d[0] != 0, where_, ": start, limit and delta must be scalars, delta non-zero");
    const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((l[0] - s[0]) / d[0])));
    check(n < (1 << 24), where_, ": a range of ", n, " values is too long");
    std::vector<double> values;
    for (int64_t i = 0; i < n; ++i) values.push_back(s[0] + static_cast<double>(i) * d[0]);
    return setOutput(0, ConstValue{fromDoubles({n}, values, c->tensor.dtype())});
  }
  const auto s = asShape(limit);
  check(s && s->scalar && s->dims[0] == Dim{1, "T"} && start == std::vector<int64_t>{0} && delta == std::vector<int64_t>{1},
        where_, ": only Range(0, T, 1) over a time axis is supported with a limit that depends on the input");
  setOutput(0, TimeIndexValue{});
}

void Translator::constantOfShapeNode() {
  const auto s = asShape(input(0));
  check(s && !s->scalar, where_, ": the shape must be constant or computed from sizes");
  HostTensor value = HostTensor::fromFloats({1}, {0.0f});
  if (const auto* a = attr("value")) value = toHostTensor(a->t(), where_);
  check(value.size() == 1, where_, ": the value must hold one element");
  if (std::all_of(s->dims.begin(), s->dims.end(), [](const Dim& d) { return d.known(); })) {
    Shape shape;
    for (const Dim& d : s->dims) shape.push_back(d.factor);
    check(numElements(shape) < (int64_t{1} << 26), where_, ": shape ", toString(shape), " is too large");
    return setOutput(0, ConstValue{fromDoubles(shape, std::vector<double>(numElements(shape), toDoubles(value)[0]), value.dtype())});
  }
  setOutput(0, FillValue{s->dims, toDoubles(value)[0]});
}

void Translator::arithmeticNode(BinaryOp op) {
  const Value& a = input(0);
  const Value& b = input(1);
  const auto* ca = std::get_if<ConstValue>(&a);
  const auto* cb = std::get_if<ConstValue>(&b);
  if (ca && cb) return setOutput(0, ConstValue{binaryConst(op, ca->tensor, cb->tensor)});

  // Sizes: products of symbols, arithmetic on known values.
  const auto sa = asShape(a), sb = asShape(b);
  if (sa && sb && sa->dims.size() == 1 && sb->dims.size() == 1) {
    const Dim x = sa->dims[0], y = sb->dims[0];
    if (op == BinaryOp::kMul) return setOutput(0, fromShape(ShapeValue{{x * y}, sa->scalar && sb->scalar}));
    return setOutput(0, UnsupportedValue{cat("a size computed by ", node_->op_type(), " from ", x.str(), " and ", y.str(),
                                             " (only products of symbolic sizes are supported)")});
  }

  // Lengths arithmetic: floor((L + add) / divisor) + offset.
  if (const auto* l = std::get_if<LengthsValue>(&a); l && cb && cb->tensor.size() == 1) {
    const int64_t c = toInts(cb->tensor)[0];
    LengthsValue out = *l;
    switch (op) {
      case BinaryOp::kAdd:
      case BinaryOp::kSub: (out.divisor == 1 ? out.add : out.offset) += op == BinaryOp::kAdd ? c : -c; break;
      case BinaryOp::kDiv:
        check(c > 0, where_, ": lengths divided by ", c);
        if (out.divisor != 1) materializeLengths(out);
        if (out.divisor == 1 && out.offset == 0) {
          out.divisor = c;
        } else {
          materializeLengths(out);
          out.divisor = c;
        }
        break;
      case BinaryOp::kMul:
        check(c == 1, where_, ": lengths multiplied by ", c, " are not supported");
        break;
      default: break;
    }
    return setOutput(0, out);
  }
  if (const auto* l = std::get_if<LengthsValue>(&b); l && ca && ca->tensor.size() == 1 && op == BinaryOp::kAdd) {
    LengthsValue out = *l;
    (out.divisor == 1 ? out.add : out.offset) += toInts(ca->tensor)[0];
    return setOutput(0, out);
  }

  // Data times a mask made from the lengths: a sequence mask.
  const auto* na = std::get_if<NetValue>(&a);
  const auto* nb = std::get_if<NetValue>(&b);
  const auto* ma = std::get_if<MaskValue>(&a);
  const auto* mb = std::get_if<MaskValue>(&b);
  if (op == BinaryOp::kMul && ((na && mb) || (nb && ma))) {
    NetValue x = na ? *na : *nb;
    const MaskValue& m = mb ? *mb : *ma;
    check(m.keep, where_, ": multiplying by the padding mask (1 on padded frames) is not supported");
    const int rank = static_cast<int>(x.axes.size());
    check(m.rank <= rank, where_, ": the mask has more axes than the data");
    const int shift = rank - m.rank;
    const auto names = [&](int i) { return atomNames(x.axes[i]); };
    check(names(m.batch_axis + shift) == "N" && names(m.time_axis + shift) == "T", where_,
          ": the mask's batch and time axes do not fall on the batch and time axes of the data ", describeAxes(x.axes));
    const Tensor t = x.pending() ? materialize(x) : x.tensor;
    check(x.pad_end == 0, where_, ": masking a padded tensor is not supported");
    x.tensor = net_.addSequenceMask(layerName(), t, m.lengths);
    x.lengths = m.lengths;
    ++layer_counts_["sequence masks"];
    return setOutput(0, x);
  }

  // Data with a per-channel constant: a batch norm that only scales or shifts.
  if ((na && cb) || (nb && ca && (op == BinaryOp::kAdd || op == BinaryOp::kMul))) {
    NetValue x = na ? *na : *nb;
    const HostTensor c = (cb ? cb : ca)->tensor.toFloat32();
    const Tensor t = materialize(x);
    const int64_t channels = channelCount(x);
    const std::vector<Atom> ch = channelAtoms(x);
    // The constant must vary along the channel axis only.
    int64_t varying = 0, at = -1;
    for (int64_t i = 0; i < static_cast<int64_t>(c.rank()); ++i)
      if (c.dim(i) != 1) ++varying, at = i;
    bool fits = c.size() == 1;
    if (!fits && varying == 1 && c.dim(at) == channels) {
      const int64_t axis = static_cast<int64_t>(x.axes.size()) - static_cast<int64_t>(c.rank()) + at;
      fits = axis >= 0 && atomNames(x.axes[axis]) == atomNames(ch);
    }
    check(fits, where_, ": ", node_->op_type(), " of a data tensor ", describeAxes(x.axes), " and a constant of shape ",
          toString(c.shape()), " is only supported when the constant is a scalar or varies along the channels");
    std::vector<float> scale(channels, 1.0f), shift(channels, 0.0f);
    for (int64_t i = 0; i < channels; ++i) {
      const float k = c.data<float>()[c.size() == 1 ? 0 : i];
      switch (op) {
        case BinaryOp::kAdd: shift[i] = k; break;
        case BinaryOp::kSub: shift[i] = -k; break;
        case BinaryOp::kMul: scale[i] = k; break;
        case BinaryOp::kDiv: scale[i] = 1.0f / k; break;
        default: break;
      }
    }
    BatchNormDesc bn{HostTensor::fromFloats({channels}, scale), HostTensor::fromFloats({channels}, shift),
                     HostTensor::fromFloats({channels}, std::vector<float>(channels, 0.0f)),
                     HostTensor::fromFloats({channels}, std::vector<float>(channels, 1.0f)), 0.0f};
    x.tensor = net_.addBatchNorm(layerName(), t, std::move(bn));
    return setOutput(0, x);
  }
  fail(where_, ": ", node_->op_type(), " of ", kindOf(a), " and ", kindOf(b), " is not supported");
}

void Translator::compareNode(BinaryOp op) {
  const Value& a = input(0);
  const Value& b = input(1);
  const auto* ca = std::get_if<ConstValue>(&a);
  const auto* cb = std::get_if<ConstValue>(&b);
  if (ca && cb) return setOutput(0, ConstValue{binaryConst(op, ca->tensor, cb->tensor)});
  const auto* ta = std::get_if<TimeIndexValue>(&a);
  const auto* tb = std::get_if<TimeIndexValue>(&b);
  const auto* la = std::get_if<LengthsValue>(&a);
  const auto* lb = std::get_if<LengthsValue>(&b);
  check((ta && lb) || (la && tb), where_, ": comparing ", kindOf(a), " with ", kindOf(b), " is not supported");
  // keep: t < L, L > t, t <= L - 1 is not recognised; pad: t >= L, L <= t.
  bool keep;
  if (ta) {
    check(op == BinaryOp::kLess || op == BinaryOp::kGreaterOrEqual, where_, ": only t < L and t >= L are supported");
    keep = op == BinaryOp::kLess;
  } else {
    check(op == BinaryOp::kGreater || op == BinaryOp::kLessOrEqual, where_, ": only L > t and L <= t are supported");
    keep = op == BinaryOp::kGreater;
  }
  const TimeIndexValue t = ta ? *ta : *tb;
  LengthsValue l = la ? *la : *lb;
  const int rank = std::max(t.rank, l.rank);
  MaskValue m{materializeLengths(l), keep, rank, l.batch_axis + rank - l.rank, t.time_axis + rank - t.rank};
  check(m.batch_axis != m.time_axis, where_, ": the lengths and the time index share an axis");
  setOutput(0, m);
}

void Translator::notNode() {
  const Value& v = input(0);
  if (const auto* c = std::get_if<ConstValue>(&v))
    return setOutput(0, ConstValue{binaryConst(BinaryOp::kEqual, c->tensor, fromInts({}, {0}))});
  const auto* m = std::get_if<MaskValue>(&v);
  check(m != nullptr, where_, ": Not of ", kindOf(v), " is not supported");
  MaskValue out = *m;
  out.keep = !out.keep;
  setOutput(0, out);
}

void Translator::whereNode() {
  const auto* m = std::get_if<MaskValue>(&input(0));
  check(m != nullptr, where_, ": only Where(mask made from the lengths, data, 0) is supported, the condition is ",
        kindOf(input(0)));
  const Value& x = input(1);
  const Value& y = input(2);
  const auto zero = [](const Value& v) {
    const auto* c = std::get_if<ConstValue>(&v);
    if (!c || c->tensor.size() != 1) return false;
    return toDoubles(c->tensor)[0] == 0.0;
  };
  const bool data_where_true = std::holds_alternative<NetValue>(x) && zero(y);
  const bool data_where_false = std::holds_alternative<NetValue>(y) && zero(x);
  check(data_where_true || data_where_false, where_, ": only Where(mask, data, 0) and Where(mask, 0, data) are supported");
  // Keep the data where the (possibly negated) mask says keep: rewrite as data * keep-mask.
  MaskValue keep = *m;
  keep.keep = data_where_true ? m->keep : !m->keep;
  check(keep.keep, where_, ": this Where keeps the padded frames and zeroes the valid ones");
  NetValue data = std::get<NetValue>(data_where_true ? x : y);
  const int rank = static_cast<int>(data.axes.size());
  const int shift = rank - keep.rank;
  check(shift >= 0 && atomNames(data.axes[keep.batch_axis + shift]) == "N" && atomNames(data.axes[keep.time_axis + shift]) == "T",
        where_, ": the mask's batch and time axes do not fall on the batch and time axes of the data ", describeAxes(data.axes));
  const Tensor t = data.pending() ? materialize(data) : data.tensor;
  data.tensor = net_.addSequenceMask(layerName(), t, keep.lengths);
  data.lengths = keep.lengths;
  ++layer_counts_["sequence masks"];
  setOutput(0, data);
}


}  // namespace ds2rt::onnx_import
