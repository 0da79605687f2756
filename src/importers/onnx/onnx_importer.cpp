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

#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "importers/onnx/onnx_translator.h"

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

}  // namespace

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

// A 3-D input read as X by a recurrent node with layout = 1 is N x T x H, not T x N x H.
bool Translator::feedsBatchMajorRecurrent(const std::string& input) const {
  for (const auto& node : model_.graph().node()) {
    if (node.op_type() != "LSTM" && node.op_type() != "GRU" && node.op_type() != "RNN") continue;
    if (node.input_size() == 0 || node.input(0) != input) continue;
    for (const auto& a : node.attribute())
      if (a.name() == "layout" && a.i() == 1) return true;
  }
  return false;
}

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
    } else if (is_float && dims.size() == 3 && dims[2] > 0 && feedsBatchMajorRecurrent(in.name())) {
      const Tensor x = net_.addBatchMajorInput(in.name(), static_cast<int>(dims[2]));
      std::vector<Atom> mem{{'N', n}, {'T', t}, {'H', Dim{dims[2], ""}}};
      values_[in.name()] = NetValue{x, mem, {{mem[0]}, {mem[1]}, {mem[2]}}};
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
