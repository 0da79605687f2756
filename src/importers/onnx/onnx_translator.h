// The ONNX graph walker shared by the translation files: onnx_importer.cpp (inputs, outputs, the
// node loop), onnx_shape_ops.cpp (folding and the symbolic shape, lengths and mask plumbing) and
// onnx_layer_ops.cpp (the nodes that become ds2rt layers).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/graph.h"
#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "importers/onnx/onnx_constants.h"
#include "importers/onnx/onnx_file.h"
#include "importers/onnx/onnx_values.h"

namespace ds2rt::onnx_import {

std::string atomNames(const std::vector<Atom>& atoms);
std::vector<Atom> flatten(const std::vector<std::vector<Atom>>& axes);
Dim product(const std::vector<Atom>& atoms);
std::string describeAxes(const std::vector<std::vector<Atom>>& axes);
const char* kindOf(const Value& v);

struct PendingRNN {
  std::string name;
  Tensor input, lengths;
  RNNDesc desc;
  Tensor initial_h, initial_c;  // run-time initial states (graph inputs), where given
  Tensor output;  // valid once added
  Tensor cell_states;  // the same layer giving c_t (for Y_c), once added
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
      r.output = r.initial_h.valid() ? net_.addRNN(r.name, r.input, r.lengths, r.desc, r.initial_h, r.initial_c)
                                     : net_.addRNN(r.name, r.input, r.lengths, r.desc);
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
    if (v.final_cell_of >= 0) {
      // ds2rt's recurrent layer gives one output: Y_c comes from a second layer with the same
      // weights that outputs c_t (computed only when the graph uses Y_c).
      PendingRNN& r = rnns_[v.final_cell_of];
      if (!r.cell_states.valid()) {
        RNNDesc desc = r.desc;
        desc.output = RNNOutput::kCellState;
        desc.merge = DirectionMerge::kConcat;
        const std::string name = uniqueName(r.name + "/cell_state");
        r.cell_states = r.initial_h.valid() ? net_.addRNN(name, r.input, r.lengths, desc, r.initial_h, r.initial_c)
                                            : net_.addRNN(name, r.input, r.lengths, desc);
      }
      v.tensor = net_.addRNNFinalState(uniqueName(r.name + "/final_cell_state"), r.cell_states, r.lengths,
                                       RNNFinalStateDesc{r.desc.direction, r.desc.hidden_size});
      v.final_cell_of = -1;
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
    // T x N x ... (or a final state D x N x H) to batch-major, and a batch-major input back to T x N x ...
    if (net_.layout(v.tensor) == TensorLayout::kSequence && have.size() >= 3 && have[1] == 'N' &&
        (have[0] == 'T' || have[0] == 'D') && want == std::string("N") + have[0] + have.substr(2)) {
      v.tensor = net_.addBatchMajor(uniqueName(cat(node_->name(), "/batch_major")), v.tensor);
      v.memory = flat;
      return v.tensor;
    }
    if (net_.layout(v.tensor) == TensorLayout::kBatchMajor && have.size() >= 3 && have.substr(0, 2) == "NT" &&
        want == "TN" + have.substr(2)) {
      v.tensor = net_.addTimeMajor(uniqueName(cat(node_->name(), "/time_major")), v.tensor);
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
  bool feedsBatchMajorRecurrent(const std::string& input) const;
  // recurrentNode's pieces (onnx_recurrent.cpp)
  std::vector<RNNActivation> recurrentActivations(RNNCell cell, int directions);
  HostTensor initialState(int index, const char* what, int directions, int64_t hidden, Tensor& runtime);
  void markOutputs();
};

}  // namespace ds2rt::onnx_import
