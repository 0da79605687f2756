// importOnnx: an ONNX graph as a ds2rt NetworkDefinition. Nodes are visited in order; each ONNX
// tensor becomes a Value (see onnx_values.h): constants and sizes are folded, the lengths
// arithmetic becomes LengthsTransform layers, masks built from the lengths become SequenceMask
// layers, and the data path becomes convolution, batch-norm, recurrent, lookahead, fully
// connected and softmax layers.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "core/graph.h"
#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "importers/onnx/onnx_constants.h"
#include "importers/onnx/onnx_file.h"
#include "importers/onnx/onnx_values.h"

namespace ds2rt {

namespace onnx_import {

Dim Dim::operator*(const Dim& other) const {
  Dim out{factor * other.factor, symbols + other.symbols};
  std::sort(out.symbols.begin(), out.symbols.end());
  return out;
}

std::string Dim::str() const {
  if (known()) return std::to_string(factor);
  return factor == 1 ? symbols : cat(factor, "*", symbols);
}

namespace {

const std::set<std::string> kSupportedOps = {
    "Constant", "Identity", "Dropout", "Cast", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape",
    "Transpose", "Flatten", "Slice", "Range", "ConstantOfShape", "Add", "Sub", "Mul", "Div", "Floor", "Less",
    "Greater", "LessOrEqual", "GreaterOrEqual", "Equal", "Not", "Where", "Conv", "BatchNormalization", "Relu",
    "Clip", "Tanh", "Sigmoid", "MatMul", "Gemm", "Softmax", "LogSoftmax", "ReduceSum", "Pad", "LSTM", "GRU", "RNN"};

std::string atomNames(const std::vector<Atom>& atoms) {
  std::string s;
  for (const Atom& a : atoms) s += a.name;
  return s;
}

std::vector<Atom> flatten(const std::vector<std::vector<Atom>>& axes) {
  std::vector<Atom> out;
  for (const auto& g : axes) out.insert(out.end(), g.begin(), g.end());
  return out;
}

Dim product(const std::vector<Atom>& atoms) {
  Dim d;
  for (const Atom& a : atoms) d = d * a.size;
  return d;
}

std::string describeAxes(const std::vector<std::vector<Atom>>& axes) {
  std::string s = "[";
  for (size_t i = 0; i < axes.size(); ++i) s += (i ? ", " : "") + (axes[i].empty() ? "1" : atomNames(axes[i]));
  return s + "]";
}

const char* kindOf(const Value& v) {
  static const char* const kinds[] = {"a constant",           "a size computed from the input shapes",
                                      "a filled tensor of symbolic shape", "lengths",
                                      "a time index (Range over T)", "a mask made from the lengths",
                                      "a data tensor",        "an unsupported value"};
  static_assert(std::size(kinds) == std::variant_size_v<Value>);
  return kinds[v.index()];
}

struct PendingRNN {
  std::string name;
  Tensor input, lengths;
  RNNDesc desc;
  Tensor output;  // valid once added
};

class Translator {
 public:
  Translator(const onnx::ModelProto& model, std::string source)
      : model_(model), source_(std::move(source)), opset_(defaultOpset(model)) {}

  ImportedNetwork run();

 private:
  const onnx::ModelProto& model_;
  std::string source_;
  int64_t opset_;
  NetworkDefinition net_;
  std::map<std::string, Value> values_;
  std::vector<PendingRNN> rnns_;
  std::set<std::string> used_names_;
  std::map<std::tuple<int, int64_t, int64_t, int64_t>, Tensor> lengths_cache_;
  std::map<std::string, int> layer_counts_;
  const onnx::NodeProto* node_ = nullptr;
  Tensor implicit_lengths_;
  std::vector<std::string> notes_;
  std::string where_;

  // ---- helpers ----
  std::string uniqueName(std::string base) {
    if (base.empty()) base = "layer";
    std::string name = base;
    for (int i = 1; used_names_.count(name); ++i) name = cat(base, "_", i);
    used_names_.insert(name);
    return name;
  }
  std::string layerName() { return uniqueName(node_->name().empty() ? node_->output(0) : node_->name()); }

  bool hasInput(int i) const { return i < node_->input_size() && !node_->input(i).empty(); }
  const Value& input(int i) {
    check(hasInput(i), where_, ": input ", i, " is missing");
    const auto it = values_.find(node_->input(i));
    check(it != values_.end(), where_, ": input '", node_->input(i),
          "' is neither a graph input, an initializer nor the output of an earlier node");
    if (const auto* u = std::get_if<UnsupportedValue>(&it->second)) fail(where_, ": uses '", node_->input(i), "', ", u->reason);
    return it->second;
  }
  void setOutput(int i, Value v) {
    if (i < node_->output_size() && !node_->output(i).empty()) values_[node_->output(i)] = std::move(v);
  }
  // Outputs beyond the first that ds2rt cannot produce: an error only if something uses them.
  void markUnsupportedOutputs(int from, const std::string& reason) {
    for (int i = from; i < node_->output_size(); ++i)
      if (!node_->output(i).empty()) values_[node_->output(i)] = UnsupportedValue{reason};
  }

  const onnx::AttributeProto* attr(const std::string& name) const {
    for (const auto& a : node_->attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  int64_t attrInt(const std::string& name, int64_t fallback) const {
    const auto* a = attr(name);
    return a ? a->i() : fallback;
  }
  float attrFloat(const std::string& name, float fallback) const {
    const auto* a = attr(name);
    return a ? a->f() : fallback;
  }
  std::string attrString(const std::string& name, const std::string& fallback) const {
    const auto* a = attr(name);
    return a ? a->s() : fallback;
  }
  std::optional<std::vector<int64_t>> attrInts(const std::string& name) const {
    const auto* a = attr(name);
    if (!a) return std::nullopt;
    return std::vector<int64_t>(a->ints().begin(), a->ints().end());
  }

  const HostTensor& constInput(int i, const char* what) {
    const Value& v = input(i);
    const auto* c = std::get_if<ConstValue>(&v);
    check(c != nullptr, where_, ": the ", what, " '", node_->input(i), "' must be a constant, it is ", kindOf(v));
    return c->tensor;
  }
  HostTensor floatInput(int i, const char* what) { return constInput(i, what).toFloat32(); }
  std::vector<int64_t> intsInput(int i, const char* what) { return toInts(constInput(i, what)); }
  // Axes from the attribute (older opsets) or the second input (newer ones).
  std::optional<std::vector<int64_t>> axesArgument(int input_index) {
    if (auto a = attrInts("axes")) return a;
    if (hasInput(input_index)) return intsInput(input_index, "axes");
    return std::nullopt;
  }

  std::optional<ShapeValue> asShape(const Value& v) {
    if (const auto* s = std::get_if<ShapeValue>(&v)) return *s;
    if (const auto* c = std::get_if<ConstValue>(&v); c && !isFloating(c->tensor.dtype()) && c->tensor.rank() <= 1) {
      ShapeValue s{{}, c->tensor.rank() == 0};
      for (int64_t x : toInts(c->tensor)) s.dims.push_back(Dim{x, ""});
      return s;
    }
    return std::nullopt;
  }
  Value fromShape(ShapeValue s) {
    if (std::all_of(s.dims.begin(), s.dims.end(), [](const Dim& d) { return d.known(); })) {
      std::vector<int64_t> v;
      for (const Dim& d : s.dims) v.push_back(d.factor);
      const Shape shape = s.scalar ? Shape{} : Shape{static_cast<int64_t>(v.size())};
      return ConstValue{fromInts(shape, v)};
    }
    return s;
  }

  // ---- data tensors ----
  NetValue netInput(int i, const char* what) {
    const Value& v = input(i);
    const auto* n = std::get_if<NetValue>(&v);
    check(n != nullptr, where_, ": the ", what, " '", node_->input(i), "' must be a data tensor, it is ", kindOf(v));
    return *n;
  }

  Tensor addPendingRNN(int index, DirectionMerge merge) {
    PendingRNN& r = rnns_[index];
    if (!r.output.valid()) {
      r.desc.merge = merge;
      r.output = net_.addRNN(r.name, r.input, r.lengths, r.desc);
    }
    check(r.desc.merge == merge || r.desc.direction != RNNDirection::kBidirectional, where_,
          ": the two directions of recurrent layer '", r.name, "' are used both summed and concatenated");
    return r.output;
  }

  // The ds2rt tensor in the layout the ONNX axes describe (adding a reshape-to-sequence or batch-major
  // layer where that is what the transposes and reshapes amount to).
  Tensor materialize(NetValue& v) {
    if (v.final_state_of >= 0) {
      const PendingRNN& r = rnns_[v.final_state_of];
      const Tensor y = addPendingRNN(v.final_state_of, DirectionMerge::kConcat);
      check(r.desc.merge == DirectionMerge::kConcat || r.desc.direction != RNNDirection::kBidirectional, where_,
            ": the final state of '", r.name, "' is used but its directions were summed");
      v.tensor = net_.addRNNFinalState(uniqueName(r.name + "/final_state"), y, r.lengths,
                                       RNNFinalStateDesc{r.desc.direction, r.desc.hidden_size});
      v.final_state_of = -1;
    }
    if (v.pending_rnn >= 0) {
      v.tensor = addPendingRNN(v.pending_rnn, DirectionMerge::kConcat);
      v.pending_rnn = -1;
    }
    check(v.pad_end == 0, where_, ": a padded time axis is only supported as the input of a lookahead convolution");
    const std::vector<Atom> flat = flatten(v.axes);
    const std::string want = atomNames(flat), have = atomNames(v.memory);
    if (want == have) return v.tensor;
    if (net_.layout(v.tensor) == TensorLayout::kImage && have == "NCFT" && want == "TNCF") {
      v.tensor = net_.addReshapeToSequence(uniqueName(cat(node_->name(), "/to_sequence")), v.tensor);
      v.memory = flat;
      return v.tensor;
    }
    if (net_.layout(v.tensor) == TensorLayout::kSequence && have.size() >= 3 && have.substr(0, 2) == "TN" &&
        want == "NT" + have.substr(2)) {
      v.tensor = net_.addBatchMajor(uniqueName(cat(node_->name(), "/batch_major")), v.tensor);
      v.memory = flat;
      return v.tensor;
    }
    fail(where_, ": a data tensor with axes ", describeAxes(v.axes), " (N batch, T time, C channels, F frequency, D ",
         "directions, H features) stored as ", have, " is not a layout ds2rt layers can take");
  }

  // The atoms a layer treats as features/channels: C of an image, everything after N and T otherwise.
  static std::vector<Atom> channelAtoms(const NetValue& v) {
    const std::string names = atomNames(v.memory);
    if (names == "NCFT") return {v.memory[1]};
    return {v.memory.begin() + std::min<size_t>(2, v.memory.size()), v.memory.end()};
  }
  int64_t channelCount(const NetValue& v) {
    const Dim d = product(channelAtoms(v));
    check(d.known(), where_, ": the feature axis has no fixed size");
    return d.factor;
  }

  Tensor materializeLengths(LengthsValue& l) {
    if (l.add == 0 && l.divisor == 1 && l.offset == 0) return l.base;
    const auto key = std::make_tuple(l.base.id, l.add, l.divisor, l.offset);
    if (auto it = lengths_cache_.find(key); it != lengths_cache_.end()) return l.base = it->second;
    // floor((L + add) / s) + offset == floor((L + 2p - k) / s) + 1 with A = add + (offset - 1) * s = 2p - k.
    const int64_t a = l.add + (l.offset - 1) * l.divisor;
    LengthsTransformDesc t;
    t.stride = static_cast<int>(l.divisor);
    if (a <= -1) {
      t.kernel = static_cast<int>(-a);
    } else {
      t.padding = static_cast<int>(a / 2 + 1);
      t.kernel = static_cast<int>(2 * t.padding - a);
    }
    const Tensor out = net_.addLengthsTransform(uniqueName(cat(node_->name(), "/lengths")), l.base, t);
    lengths_cache_[key] = out;
    l = LengthsValue{out, 0, 1, 0, l.rank, l.batch_axis};
    return out;
  }

  // ---- per-op translation ----
  void translate(const onnx::NodeProto& node);
  void constantNode();
  void castNode();
  void shapeNode();
  void gatherNode();
  void unsqueezeNode();
  void squeezeNode();
  void concatNode();
  void reshapeNode(bool flatten);
  void transposeNode();
  void sliceNode();
  void rangeNode();
  void constantOfShapeNode();
  void arithmeticNode(BinaryOp op);
  void compareNode(BinaryOp op);
  void notNode();
  void whereNode();
  void convNode();
  void batchNormNode();
  void activationNode(ActivationDesc desc);
  void clipNode();
  void matMulNode(bool gemm);
  void softmaxNode(bool log);
  void reduceSumNode();
  void padNode();
  void recurrentNode(const std::string& op);

  void addInputs();
  void markOutputs();
};

// ---------------------------------------------------------------------------------------------

void Translator::addInputs() {
  std::set<std::string> initializers;
  for (const auto& init : model_.graph().initializer()) {
    initializers.insert(init.name());
    values_[init.name()] = ConstValue{toHostTensor(init, cat("'", source_, "': initializer '", init.name(), "'"))};
  }
  for (const auto& in : model_.graph().input()) {
    if (initializers.count(in.name())) continue;
    const std::string where = cat("'", source_, "': graph input '", in.name(), "'");
    check(in.type().has_tensor_type(), where, " is not a tensor");
    const auto& tt = in.type().tensor_type();
    std::vector<int64_t> dims;
    for (const auto& d : tt.shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    used_names_.insert(in.name());
    const int32_t et = tt.elem_type();
    const bool is_float = et == onnx::TensorProto::FLOAT, is_int = et == onnx::TensorProto::INT32 || et == onnx::TensorProto::INT64;
    const Dim n{1, "N"}, t{1, "T"};
    if (is_float && dims.size() == 4 && dims[1] > 0 && dims[2] > 0) {
      const Tensor x = net_.addImageInput(in.name(), static_cast<int>(dims[1]), static_cast<int>(dims[2]));
      std::vector<Atom> mem{{'N', n}, {'C', Dim{dims[1], ""}}, {'F', Dim{dims[2], ""}}, {'T', t}};
      values_[in.name()] = NetValue{x, mem, {{mem[0]}, {mem[1]}, {mem[2]}, {mem[3]}}};
    } else if (is_float && dims.size() == 3 && dims[2] > 0) {
      const Tensor x = net_.addSequenceInput(in.name(), static_cast<int>(dims[2]));
      std::vector<Atom> mem{{'T', t}, {'N', n}, {'H', Dim{dims[2], ""}}};
      values_[in.name()] = NetValue{x, mem, {{mem[0]}, {mem[1]}, {mem[2]}}};
    } else if (is_int && dims.size() == 1) {
      values_[in.name()] = LengthsValue{net_.addLengthsInput(in.name())};
    } else {
      std::string shape = "[";
      for (size_t i = 0; i < dims.size(); ++i) shape += (i ? ", " : "") + (dims[i] < 0 ? std::string("?") : std::to_string(dims[i]));
      fail(where, " (", onnx::TensorProto::DataType_Name(et), " ", shape, "]) is none of the inputs ds2rt takes: ",
           "float features N x C x F x T (C and F fixed), a float sequence T x N x H (H fixed), or integer lengths N");
    }
  }
}

void Translator::markOutputs() {
  where_ = cat("'", source_, "'");
  for (const auto& out : model_.graph().output()) {
    const auto it = values_.find(out.name());
    check(it != values_.end(), where_, ": graph output '", out.name(), "' is produced by no node");
    Value& v = it->second;
    if (auto* u = std::get_if<UnsupportedValue>(&v)) fail(where_, ": graph output '", out.name(), "' is ", u->reason);
    Tensor t;
    if (auto* n = std::get_if<NetValue>(&v)) {
      t = materialize(*n);
    } else if (auto* l = std::get_if<LengthsValue>(&v)) {
      t = materializeLengths(*l);
    } else {
      fail(where_, ": graph output '", out.name(), "' is ", kindOf(v),
           "; ds2rt networks give data tensors and lengths");
    }
    check(!net_.graph().tensors[t.id].is_input, where_, ": graph output '", out.name(), "' is a graph input unchanged");
    net_.markOutput(t, out.name());
  }
}

ImportedNetwork Translator::run() {
  const onnx::GraphProto& g = model_.graph();
  // Every unsupported operator at once, before anything else.
  std::string unsupported;
  int count = 0;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    const bool default_domain = n.domain().empty() || n.domain() == "ai.onnx";
    if (!default_domain || !kSupportedOps.count(n.op_type())) {
      ++count;
      unsupported += cat("\n  ", n.domain().empty() ? "" : n.domain() + ".", n.op_type(), " (node '",
                         n.name().empty() ? cat("#", i) : n.name(), "')");
    }
  }
  check(count == 0, "'", source_, "': ", count, " node", count > 1 ? "s use operators" : " uses an operator",
        " ds2rt does not import:", unsupported, "\nSupported operators: Add, BatchNormalization, Cast, Clip, Concat, ",
        "Constant, ConstantOfShape, Conv, Div, Dropout, Equal, Flatten, Floor, GRU, Gather, Gemm, Greater(OrEqual), ",
        "Identity, LSTM, Less(OrEqual), LogSoftmax, MatMul, Mul, Not, Pad, RNN, Range, ReduceSum, Relu, Reshape, Shape, ",
        "Sigmoid, Slice, Softmax, Squeeze, Sub, Tanh, Transpose, Unsqueeze, Where");
  addInputs();
  for (const auto& node : g.node()) translate(node);
  markOutputs();

  ImportedNetwork result;
  result.format = cat("ONNX model (opset ", opset_, model_.producer_name().empty() ? "" : ", from " + model_.producer_name(),
                      model_.producer_version().empty() ? "" : " " + model_.producer_version(), ")");
  std::string arch;
  for (const auto& [kind, n] : layer_counts_) arch += cat(arch.empty() ? "" : ", ", n, " ", kind);
  result.architecture = arch.empty() ? "ONNX graph" : arch;
  for (const auto& prop : model_.metadata_props()) {
    if (prop.key() != "ds2rt.config") continue;
    const DeepSpeech2Config config = DeepSpeech2Config::fromJson(prop.value(), cat(source_, " metadata ds2rt.config"));
    result.labels = config.labels;
    result.spect = config.spect;
    result.spect_known = true;
    result.notes.push_back("labels and feature settings read from the metadata property ds2rt.config");
  }
  result.notes.insert(result.notes.end(), notes_.begin(), notes_.end());
  result.network = std::move(net_);
  return result;
}

void Translator::translate(const onnx::NodeProto& node) {
  node_ = &node;
  where_ = cat("'", source_, "': node '", node.name().empty() ? node.output_size() ? node.output(0) : "" : node.name(),
               "' (", node.op_type(), ")");
  const std::string& op = node.op_type();
  check(node.output_size() > 0, where_, ": has no outputs");
  if (op == "Constant") return constantNode();
  if (op == "Identity" || op == "Dropout") {
    setOutput(0, input(0));
    return markUnsupportedOutputs(1, "the mask output of Dropout");
  }
  if (op == "Cast") return castNode();
  if (op == "Shape") return shapeNode();
  if (op == "Gather") return gatherNode();
  if (op == "Unsqueeze") return unsqueezeNode();
  if (op == "Squeeze") return squeezeNode();
  if (op == "Concat") return concatNode();
  if (op == "Reshape") return reshapeNode(false);
  if (op == "Flatten") return reshapeNode(true);
  if (op == "Transpose") return transposeNode();
  if (op == "Slice") return sliceNode();
  if (op == "Range") return rangeNode();
  if (op == "ConstantOfShape") return constantOfShapeNode();
  if (op == "Add") return arithmeticNode(BinaryOp::kAdd);
  if (op == "Sub") return arithmeticNode(BinaryOp::kSub);
  if (op == "Mul") return arithmeticNode(BinaryOp::kMul);
  if (op == "Div") return arithmeticNode(BinaryOp::kDiv);
  if (op == "Floor") {
    const Value& v = input(0);
    if (const auto* c = std::get_if<ConstValue>(&v)) {
      std::vector<double> d = toDoubles(c->tensor);
      for (double& x : d) x = std::floor(x);
      return setOutput(0, ConstValue{fromDoubles(c->tensor.shape(), d, c->tensor.dtype())});
    }
    check(std::holds_alternative<LengthsValue>(v), where_, ": Floor of ", kindOf(v), " is not supported");
    return setOutput(0, v);  // lengths are non-negative: already whole numbers
  }
  if (op == "Less") return compareNode(BinaryOp::kLess);
  if (op == "Greater") return compareNode(BinaryOp::kGreater);
  if (op == "LessOrEqual") return compareNode(BinaryOp::kLessOrEqual);
  if (op == "GreaterOrEqual") return compareNode(BinaryOp::kGreaterOrEqual);
  if (op == "Equal") return compareNode(BinaryOp::kEqual);
  if (op == "Not") return notNode();
  if (op == "Where") return whereNode();
  if (op == "Conv") return convNode();
  if (op == "BatchNormalization") return batchNormNode();
  if (op == "Relu") return activationNode({ActivationType::kRelu});
  if (op == "Tanh") return activationNode({ActivationType::kTanh});
  if (op == "Sigmoid") return activationNode({ActivationType::kSigmoid});
  if (op == "Clip") return clipNode();
  if (op == "MatMul") return matMulNode(false);
  if (op == "Gemm") return matMulNode(true);
  if (op == "Softmax") return softmaxNode(false);
  if (op == "LogSoftmax") return softmaxNode(true);
  if (op == "ReduceSum") return reduceSumNode();
  if (op == "Pad") return padNode();
  if (op == "LSTM" || op == "GRU" || op == "RNN") return recurrentNode(op);
  fail(where_, ": operator not supported");
}

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
    const Tensor t = x.pending_rnn >= 0 || x.final_state_of >= 0 ? materialize(x) : x.tensor;
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
  const Tensor t = data.pending_rnn >= 0 || data.final_state_of >= 0 ? materialize(data) : data.tensor;
  data.tensor = net_.addSequenceMask(layerName(), t, keep.lengths);
  data.lengths = keep.lengths;
  ++layer_counts_["sequence masks"];
  setOutput(0, data);
}

void Translator::convNode() {
  NetValue x = netInput(0, "input");
  const HostTensor w = floatInput(1, "weight");
  const HostTensor b = hasInput(2) ? floatInput(2, "bias") : HostTensor{};
  check(attrString("auto_pad", "NOTSET") == "NOTSET", where_, ": auto_pad is not supported, give explicit pads");
  const int64_t group = attrInt("group", 1);
  const size_t spatial = w.rank() >= 2 ? w.rank() - 2 : 0;
  std::vector<int64_t> pads = attrInts("pads").value_or(std::vector<int64_t>(2 * spatial, 0));
  std::vector<int64_t> strides = attrInts("strides").value_or(std::vector<int64_t>(spatial, 1));
  std::vector<int64_t> dilations = attrInts("dilations").value_or(std::vector<int64_t>(spatial, 1));
  check(pads.size() == 2 * spatial && strides.size() == spatial && dilations.size() == spatial, where_,
        ": pads, strides or dilations do not match the weight's rank");

  if (spatial == 1) {  // a lookahead (row) convolution: depthwise over time, after a Pad of context - 1 frames
    const int64_t k = w.dim(2);
    const bool fits = x.axes.size() == 3 && atomNames(x.axes[0]) == "N" && atomNames(x.axes[2]) == "T" &&
                      w.dim(1) == 1 && group == w.dim(0) && pads == std::vector<int64_t>{0, 0} &&
                      strides == std::vector<int64_t>{1} && dilations == std::vector<int64_t>{1} &&
                      x.pad_end == k - 1 && b.empty();
    check(fits, where_, ": a 1-D convolution is supported only as a lookahead: depthwise (group = channels, weight ",
          "H x 1 x k, no bias) over N x H x T, stride 1, after a Pad of k - 1 zero frames at the end of time");
    check(x.lengths.valid(), where_, ": the lookahead's input has no known lengths (it must come from a recurrent layer ",
          "with sequence_lens or a masked tensor)");
    x.pad_end = 0;
    NetValue seq = x;
    seq.axes = {x.axes[2], x.axes[0], x.axes[1]};  // the lookahead works on T x N x H
    const Tensor t = materialize(seq);
    check(net_.layout(t) == TensorLayout::kSequence && channelCount(seq) == w.dim(0), where_,
          ": the lookahead's input is not a T x N x ", w.dim(0), " sequence");
    LookaheadDesc desc{w.reshaped({w.dim(0), k}), {}};
    NetValue out = seq;
    out.tensor = net_.addLookahead(layerName(), t, x.lengths, std::move(desc));
    out.axes = {seq.axes[1], seq.axes[2], seq.axes[0]};
    ++layer_counts_["lookahead"];
    return setOutput(0, out);
  }

  check(spatial == 2 && group == 1, where_, ": only 2-D convolutions without groups (and 1-D lookaheads) are supported");
  const Tensor t = materialize(x);
  check(atomNames(x.memory) == "NCFT" && x.axes.size() == 4, where_, ": the input is not an N x C x F x T image");
  check(pads[0] == pads[2] && pads[1] == pads[3], where_, ": asymmetric pads ", toString(Shape(pads.begin(), pads.end())),
        " are not supported");
  ConvolutionDesc desc;
  desc.out_channels = static_cast<int>(w.dim(0));
  desc.kernel = {static_cast<int>(w.dim(2)), static_cast<int>(w.dim(3))};
  desc.stride = {static_cast<int>(strides[0]), static_cast<int>(strides[1])};
  desc.padding = {static_cast<int>(pads[0]), static_cast<int>(pads[1])};
  desc.dilation = {static_cast<int>(dilations[0]), static_cast<int>(dilations[1])};
  desc.weight = w;
  desc.bias = b;
  NetValue out = x;
  out.tensor = net_.addConvolution(layerName(), t, std::move(desc));
  const Shape shape = net_.shape(out.tensor);
  out.memory = {x.memory[0], {'C', Dim{shape[1], ""}}, {'F', Dim{shape[2], ""}}, x.memory[3]};
  out.axes = {{out.memory[0]}, {out.memory[1]}, {out.memory[2]}, {out.memory[3]}};
  out.lengths = Tensor{};  // the time axis changed
  ++layer_counts_["convolutions"];
  setOutput(0, out);
}

void Translator::batchNormNode() {
  NetValue x = netInput(0, "input");
  check(attrInt("training_mode", 0) == 0, where_, ": training mode is not supported");
  const Tensor t = materialize(x);
  check(x.axes.size() >= 2 && atomNames(x.axes[1]) == atomNames(channelAtoms(x)), where_,
        ": normalises axis 1 of ", describeAxes(x.axes), ", which is not the channel axis of a ds2rt layout");
  BatchNormDesc desc{floatInput(1, "scale"), floatInput(2, "bias"), floatInput(3, "mean"), floatInput(4, "variance"),
                     attrFloat("epsilon", 1e-5f)};
  x.tensor = net_.addBatchNorm(layerName(), t, std::move(desc));
  markUnsupportedOutputs(1, "a training-mode output of BatchNormalization");
  setOutput(0, x);
}

void Translator::activationNode(ActivationDesc desc) {
  NetValue x = netInput(0, "input");
  const Tensor t = x.pending_rnn >= 0 || x.final_state_of >= 0 || x.pad_end ? materialize(x) : x.tensor;
  x.tensor = net_.addActivation(layerName(), t, desc);
  setOutput(0, x);
}

void Translator::clipNode() {
  ActivationDesc desc{ActivationType::kClip, -std::numeric_limits<float>::max(), std::numeric_limits<float>::max()};
  if (opset_ < 11) {
    desc.min = attrFloat("min", desc.min);
    desc.max = attrFloat("max", desc.max);
  } else {
    if (hasInput(1)) desc.min = floatInput(1, "min").data<float>()[0];
    if (hasInput(2)) desc.max = floatInput(2, "max").data<float>()[0];
  }
  if (desc.min == 0 && desc.max == std::numeric_limits<float>::max()) desc = {ActivationType::kRelu};
  activationNode(desc);
}

void Translator::matMulNode(bool gemm) {
  NetValue x = netInput(0, "input");
  HostTensor w = floatInput(1, "weight");
  check(w.rank() == 2, where_, ": the weight must be 2-D, it is ", toString(w.shape()));
  HostTensor bias;
  if (gemm) {
    check(attrInt("transA", 0) == 0, where_, ": transA is not supported");
    if (attrInt("transB", 0) == 0) w = transpose2d(w);
    const float alpha = attrFloat("alpha", 1.0f), beta = attrFloat("beta", 1.0f);
    if (alpha != 1.0f) {
      std::vector<float> v(w.floats().begin(), w.floats().end());
      for (float& e : v) e *= alpha;
      w = HostTensor::fromFloats(w.shape(), v);
    }
    if (hasInput(2)) {
      const HostTensor c = floatInput(2, "bias");
      check(c.size() == w.dim(0), where_, ": the bias must hold ", w.dim(0), " values (one per output), it is ",
            toString(c.shape()));
      std::vector<float> v(c.floats().begin(), c.floats().end());
      for (float& e : v) e *= beta;
      bias = HostTensor::fromFloats({w.dim(0)}, v);
    }
  } else {
    w = transpose2d(w);  // MatMul's B is in x out
  }
  const Tensor t = materialize(x);
  const std::vector<Atom> ch = channelAtoms(x);
  check(net_.layout(t) != TensorLayout::kImage && atomNames(x.axes.back()) == atomNames(ch), where_,
        ": multiplies the last axis of ", describeAxes(x.axes), ", which is not the feature axis of a sequence");
  check(w.dim(1) == channelCount(x), where_, ": the weight has ", w.dim(1), " inputs, the data ", channelCount(x), " features");
  FullyConnectedDesc desc{static_cast<int>(w.dim(0)), w, bias, {}};
  NetValue out = x;
  out.tensor = net_.addFullyConnected(layerName(), t, std::move(desc));
  out.memory.resize(out.memory.size() - ch.size());
  out.memory.push_back({'H', Dim{w.dim(0), ""}});
  out.axes.back() = {out.memory.back()};
  ++layer_counts_["fully connected"];
  setOutput(0, out);
}

void Translator::softmaxNode(bool log) {
  NetValue x = netInput(0, "input");
  const int64_t rank = static_cast<int64_t>(x.axes.size());
  const int64_t axis = normalizeAxis(attrInt("axis", opset_ < 13 ? 1 : -1), rank, where_);
  const Tensor t = materialize(x);
  check(axis == rank - 1 && net_.layout(t) != TensorLayout::kImage && atomNames(x.axes.back()) == atomNames(channelAtoms(x)),
        where_, ": only a softmax over the feature axis (the last) of a sequence is supported");
  x.tensor = log ? net_.addLogSoftmax(layerName(), t) : net_.addSoftmax(layerName(), t);
  setOutput(0, x);
}

void Translator::reduceSumNode() {
  NetValue x = netInput(0, "input");
  const auto axes = axesArgument(1);
  const bool keep = attrInt("keepdims", 1) != 0;
  const int64_t rank = static_cast<int64_t>(x.axes.size());
  check(axes && axes->size() == 1, where_, ": only a sum over one axis (the directions of a recurrent layer) is supported");
  const int64_t a = normalizeAxis((*axes)[0], rank, where_);
  check(x.pending_rnn >= 0 && atomNames(x.axes[a]) == "D" && atomNames(x.memory).find('D') != std::string::npos, where_,
        ": only the sum of the two directions of a bidirectional recurrent layer is supported");
  x.tensor = addPendingRNN(x.pending_rnn, DirectionMerge::kSum);
  x.pending_rnn = -1;
  x.memory.erase(std::find_if(x.memory.begin(), x.memory.end(), [](const Atom& at) { return at.name == 'D'; }));
  if (keep) x.axes[a].clear();
  else x.axes.erase(x.axes.begin() + a);
  setOutput(0, x);
}

void Translator::padNode() {
  NetValue x = netInput(0, "input");
  check(attrString("mode", "constant") == "constant", where_, ": only constant padding is supported");
  std::vector<int64_t> pads;
  if (opset_ < 11) {
    pads = attrInts("pads").value_or(std::vector<int64_t>{});
    check(attrFloat("value", 0.0f) == 0.0f, where_, ": only zero padding is supported");
  } else {
    pads = intsInput(1, "pads");
    if (hasInput(2)) check(toDoubles(constInput(2, "constant_value"))[0] == 0.0, where_, ": only zero padding is supported");
    check(!hasInput(3), where_, ": the axes input is not supported");
  }
  const size_t rank = x.axes.size();
  check(pads.size() == 2 * rank, where_, ": ", pads.size(), " pads for rank ", rank);
  for (size_t i = 0; i < 2 * rank; ++i) {
    const bool time_end = i == 2 * rank - 1 && atomNames(x.axes[rank - 1]) == "T";
    check(pads[i] == 0 || time_end, where_, ": only padding at the end of the time axis (before a lookahead) is supported");
  }
  x.pad_end += pads[2 * rank - 1];
  setOutput(0, x);
}

void Translator::recurrentNode(const std::string& op) {
  NetValue x = netInput(0, "input X");
  const HostTensor W = floatInput(1, "weight W"), R = floatInput(2, "recurrence weight R");
  const int64_t hidden = attrInt("hidden_size", 0);
  check(hidden > 0, where_, ": hidden_size must be set");
  const std::string direction = attrString("direction", "forward");
  check(attrInt("layout", 0) == 0, where_, ": layout = 1 (batch-first) is not supported");
  check(!attr("clip"), where_, ": the cell clip attribute is not supported");
  check(attrInt("input_forget", 0) == 0, where_, ": input_forget is not supported");
  RNNDesc desc;
  desc.hidden_size = static_cast<int>(hidden);
  desc.cell = op == "LSTM" ? RNNCell::kLSTM : op == "GRU" ? RNNCell::kGRU : RNNCell::kRNNTanh;
  std::vector<std::string> activations;
  if (const auto* a = attr("activations"))
    for (const auto& s : a->strings()) activations.push_back(s);
  const std::vector<std::string> defaults = op == "LSTM"  ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                            : op == "GRU" ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                          : std::vector<std::string>{"Tanh"};
  const int dirs = direction == "bidirectional" ? 2 : 1;
  for (size_t i = 0; i < activations.size(); ++i) {
    const std::string& want = defaults[i % defaults.size()];
    if (op == "RNN" && activations[i] == "Relu" && (i == 0 || desc.cell == RNNCell::kRNNRelu)) {
      desc.cell = RNNCell::kRNNRelu;
      continue;
    }
    check(activations[i] == want, where_, ": activation ", activations[i], " (position ", i, ") is not supported; ",
          op, " supports ", want, op == "RNN" ? " or Relu" : "", " there");
  }
  if (direction == "forward") desc.direction = RNNDirection::kForward;
  else if (direction == "reverse") desc.direction = RNNDirection::kReverse;
  else if (direction == "bidirectional") desc.direction = RNNDirection::kBidirectional;
  else fail(where_, ": unknown direction '", direction, "'");
  if (op == "GRU") desc.linear_before_reset = attrInt("linear_before_reset", 0) != 0;

  const int64_t gates = gateCount(desc.cell), gh = gates * hidden;
  check(W.rank() == 3 && W.dim(0) == dirs && W.dim(1) == gh, where_, ": W must be ", dirs, " x ", gh, " x input, it is ",
        toString(W.shape()));
  check(R.rank() == 3 && R.dim(0) == dirs && R.dim(1) == gh && R.dim(2) == hidden, where_, ": R must be ", dirs, " x ", gh,
        " x ", hidden, ", it is ", toString(R.shape()));
  HostTensor B;
  if (hasInput(3)) {
    B = floatInput(3, "bias B");
    check(B.rank() == 2 && B.dim(0) == dirs && B.dim(1) == 2 * gh, where_, ": B must be ", dirs, " x ", 2 * gh, ", it is ",
          toString(B.shape()));
  }
  // Initial states and peepholes: only zeros (what torch.onnx.export writes for a fresh state).
  const auto zeros = [&](int i, const char* what) {
    if (!hasInput(i)) return;
    const Value& v = input(i);
    if (const auto* f = std::get_if<FillValue>(&v); f && f->value == 0) return;
    if (const auto* c = std::get_if<ConstValue>(&v)) {
      const auto d = toDoubles(c->tensor);
      if (std::all_of(d.begin(), d.end(), [](double e) { return e == 0; })) return;
    }
    fail(where_, ": ", what, " that is not all zeros is not supported");
  };
  zeros(5, "an initial hidden state (initial_h)");
  if (op == "LSTM") {
    zeros(6, "an initial cell state (initial_c)");
    zeros(7, "a peephole weight (P)");
  }

  const auto block = [](const HostTensor& t, int64_t d, int64_t begin, int64_t count) {
    const int64_t inner = t.size() / t.dim(0) / t.dim(1);
    Shape shape{count};
    if (t.rank() == 3) shape.push_back(t.dim(2));
    std::vector<float> v(t.floats().begin() + (d * t.dim(1) + begin) * inner,
                         t.floats().begin() + (d * t.dim(1) + begin + count) * inner);
    return HostTensor::fromFloats(shape, v);
  };
  desc.num_layers = 1;
  for (int d = 0; d < dirs; ++d)
    desc.setWeights(0, d, GateLayout::kONNX, block(W, d, 0, gh), block(R, d, 0, gh),
                    B.empty() ? HostTensor{} : block(B, d, 0, gh), B.empty() ? HostTensor{} : block(B, d, gh, gh));

  const Tensor input_tensor = materialize(x);
  check(net_.layout(input_tensor) == TensorLayout::kSequence && x.axes.size() == 3 && atomNames(x.axes[0]) == "T" &&
            atomNames(x.axes[1]) == "N",
        where_, ": the input must be a T x N x features sequence, it is ", describeAxes(x.axes));
  check(channelCount(x) == W.dim(2), where_, ": W expects ", W.dim(2), " input features, the data has ", channelCount(x));
  Tensor lengths;
  if (hasInput(4)) {
    auto* l = std::get_if<LengthsValue>(&values_.at(node_->input(4)));
    check(l != nullptr, where_, ": sequence_lens must come from the lengths input, it is ", kindOf(input(4)));
    LengthsValue copy = *l;
    lengths = materializeLengths(copy);
  } else {
    lengths = x.lengths;
    if (!lengths.valid()) {
      // ds2rt's recurrent layer always takes lengths: the caller gives them (T for every utterance
      // of an unpadded batch) through an extra input.
      if (!implicit_lengths_.valid()) {
        const std::string name = uniqueName(node_->input(0) + "_lengths");
        implicit_lengths_ = net_.addLengthsInput(name);
        notes_.push_back(cat("the graph gives the recurrent layers no sequence_lens: ds2rt added the input '", name,
                             "' (N, int32) for the valid frames of each utterance (T for all of an unpadded batch)"));
      }
      lengths = implicit_lengths_;
    }
  }

  rnns_.push_back({layerName(), input_tensor, lengths, std::move(desc), {}});
  const Dim n{1, "N"}, t{1, "T"};
  NetValue y;
  y.pending_rnn = static_cast<int>(rnns_.size()) - 1;
  y.lengths = lengths;
  const Atom T{'T', t}, N{'N', n}, D{'D', Dim{dirs, ""}}, H{'H', Dim{hidden, ""}};
  y.memory = dirs == 2 ? std::vector<Atom>{T, N, D, H} : std::vector<Atom>{T, N, H};
  y.axes = {{T}, dirs == 2 ? std::vector<Atom>{D} : std::vector<Atom>{}, {N}, {H}};
  ++layer_counts_[cat(op, dirs == 2 ? " bidirectional" : direction == "reverse" ? " reverse" : "", " (hidden ", hidden, ")")];
  setOutput(0, y);
  NetValue final_state;
  final_state.final_state_of = y.pending_rnn;
  final_state.memory = {{'D', Dim{dirs, ""}}, N, H};
  final_state.axes = {{final_state.memory[0]}, {N}, {H}};
  setOutput(1, final_state);
  markUnsupportedOutputs(2, cat("the final cell state output of LSTM (Y_c), which ds2rt's recurrent layer does not give"));
}

}  // namespace

}  // namespace onnx_import

ImportedNetwork importOnnx(const std::string& path, const ImportOptions& options) {
  const onnx::ModelProto model = onnx_import::readModel(path);
  ImportedNetwork imported = onnx_import::Translator(model, path).run();
  if (options.labels) imported.labels = *options.labels;
  if (options.sample_rate) {
    imported.spect.sample_rate = *options.sample_rate;
    imported.spect_known = true;
  }
  return imported;
}

}  // namespace ds2rt
