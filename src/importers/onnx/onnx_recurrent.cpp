// ONNX's LSTM, GRU and RNN nodes as one ds2rt recurrent layer each: gate layouts converted, the
// clip, gate functions, peepholes, initial states (constants or graph inputs), layout = 1 (batch
// first, through transposes) and the Y, Y_h and Y_c outputs.
#include <algorithm>
#include <cctype>
#include <cmath>

#include "importers/onnx/onnx_translator.h"

namespace ds2rt::onnx_import {

namespace {

bool sameName(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// ONNX's defaults for parameters that activation_alpha / activation_beta leave out.
RNNActivation withDefaults(RNNActivationType type) {
  using A = RNNActivationType;
  switch (type) {
    case A::kHardSigmoid: return {type, 0.2f, 0.5f};
    case A::kLeakyRelu: return {type, 0.01f, 0.0f};
    case A::kThresholdedRelu: case A::kElu: return {type, 1.0f, 0.0f};
    case A::kScaledTanh: return {type, 1.0f, 1.0f};
    case A::kAffine: return {type, 1.0f, 0.0f};
    default: return {type};
  }
}

constexpr int kActivationTypes = 11;

bool allZero(const HostTensor& t) {
  const auto v = t.floats();
  return std::all_of(v.begin(), v.end(), [](float e) { return e == 0; });
}

}  // namespace

std::vector<RNNActivation> Translator::recurrentActivations(RNNCell cell, int dirs) {
  const auto* a = attr("activations");
  if (!a) return {};
  std::vector<float> alphas, betas;
  if (const auto* p = attr("activation_alpha")) alphas.assign(p->floats().begin(), p->floats().end());
  if (const auto* p = attr("activation_beta")) betas.assign(p->floats().begin(), p->floats().end());
  const size_t per = defaultActivations(cell).size(), count = static_cast<size_t>(a->strings_size());
  check(count == per || count == per * static_cast<size_t>(dirs), where_, ": ", count, " activations given; this ",
        "operator takes ", per, " per direction (", per * static_cast<size_t>(dirs), " in all)");
  std::vector<RNNActivation> out;
  size_t next_alpha = 0, next_beta = 0;
  for (size_t i = 0; i < count; ++i) {
    const std::string& name = a->strings(static_cast<int>(i));
    int found = -1;
    for (int k = 0; k < kActivationTypes; ++k)
      if (sameName(name, toString(static_cast<RNNActivationType>(k)))) found = k;
    if (found < 0) {
      std::string known;
      for (int k = 0; k < kActivationTypes; ++k) known += cat(k ? ", " : "", toString(static_cast<RNNActivationType>(k)));
      fail(where_, ": unknown activation '", name, "' (position ", i, "); ds2rt knows ", known);
    }
    RNNActivation f = withDefaults(static_cast<RNNActivationType>(found));
    const int params = parameterCount(f.type);
    if (params >= 1 && next_alpha < alphas.size()) f.alpha = alphas[next_alpha++];
    if (params >= 2 && next_beta < betas.size()) f.beta = betas[next_beta++];
    out.push_back(f);
  }
  return out;
}

// An initial state input: none or zeros give an empty tensor; a constant gives D x B x H; a data
// tensor (a graph input, or another layer's final state) is returned in `runtime`.
HostTensor Translator::initialState(int index, const char* what, int dirs, int64_t hidden, Tensor& runtime) {
  if (!hasInput(index)) return {};
  const Value& v = input(index);
  if (const auto* f = std::get_if<FillValue>(&v)) {
    if (f->value == 0) return {};
    check(f->shape.size() == 3, where_, ": ", what, " must be ", dirs, " x N x ", hidden);
    return HostTensor::fromFloats({dirs, 1, hidden}, std::vector<float>(static_cast<size_t>(dirs * hidden),
                                                                        static_cast<float>(f->value)));
  }
  if (std::holds_alternative<ConstValue>(v)) {
    const HostTensor t = floatInput(index, what);
    check(t.rank() == 3 && t.dim(0) == dirs && t.dim(2) == hidden, where_, ": ", what, " must be ", dirs, " x N x ",
          hidden, ", it is ", toString(t.shape()));
    return allZero(t) ? HostTensor{} : t;
  }
  NetValue n = netInput(index, what);
  runtime = materialize(n);
  const Shape shape = net_.shape(runtime);
  check(net_.layout(runtime) == TensorLayout::kSequence && shape.size() == 3 &&
            (shape[0] == kDynamic || shape[0] == dirs) && shape[2] == hidden,
        where_, ": ", what, " '", node_->input(index), "' must be a ", dirs, " x N x ", hidden, " tensor");
  return {};
}

void Translator::recurrentNode(const std::string& op) {
  NetValue x = netInput(0, "input X");
  const HostTensor W = floatInput(1, "weight W"), R = floatInput(2, "recurrence weight R");
  const int64_t hidden = attrInt("hidden_size", 0);
  check(hidden > 0, where_, ": hidden_size must be set");
  const std::string direction = attrString("direction", "forward");
  const int64_t layout = attrInt("layout", 0);
  check(layout == 0 || layout == 1, where_, ": layout must be 0 or 1, it is ", layout);
  check(attrInt("input_forget", 0) == 0, where_, ": input_forget is not supported");
  RNNDesc desc;
  desc.hidden_size = static_cast<int>(hidden);
  desc.cell = op == "LSTM" ? RNNCell::kLSTM : op == "GRU" ? RNNCell::kGRU : RNNCell::kRNNTanh;
  if (const auto* c = attr("clip")) {
    desc.clip = c->f();
    check(std::isfinite(desc.clip) && desc.clip > 0, where_, ": clip must be positive, it is ", desc.clip);
  }
  if (direction == "forward") desc.direction = RNNDirection::kForward;
  else if (direction == "reverse") desc.direction = RNNDirection::kReverse;
  else if (direction == "bidirectional") desc.direction = RNNDirection::kBidirectional;
  else fail(where_, ": unknown direction '", direction, "'");
  const int dirs = desc.directions();
  desc.activations = recurrentActivations(desc.cell, dirs);
  const auto all = [&](RNNActivationType type) {
    return std::all_of(desc.activations.begin(), desc.activations.end(),
                       [&](const RNNActivation& a) { return a.type == type && parameterCount(type) == 0; });
  };
  if (op == "RNN" && !desc.activations.empty() && all(RNNActivationType::kRelu)) desc.cell = RNNCell::kRNNRelu;
  bool defaults = true;
  for (int d = 0; d < dirs; ++d) defaults &= desc.activationsOf(d) == defaultActivations(desc.cell);
  if (defaults) desc.activations.clear();  // the plain cell: the fast path
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
  Tensor initial_h, initial_c;
  desc.initial_h = initialState(5, "initial_h", dirs, hidden, initial_h);
  HostTensor P;
  if (op == "LSTM") {
    desc.initial_c = initialState(6, "initial_c", dirs, hidden, initial_c);
    if (hasInput(7)) {
      P = floatInput(7, "peephole weights P");
      check(P.rank() == 2 && P.dim(0) == dirs && P.dim(1) == 3 * hidden, where_, ": P must be ", dirs, " x ", 3 * hidden,
            ", it is ", toString(P.shape()));
      if (allZero(P)) P = {};
    }
  }
  check(!initial_c.valid() || initial_h.valid(), where_, ": initial_c is a data tensor but initial_h is not; ds2rt ",
        "takes run-time initial states as initial_h alone or both");
  if (initial_h.valid() && !desc.initial_h.empty()) desc.initial_h = {};

  const auto block = [](const HostTensor& t, int64_t d, int64_t begin, int64_t count) {
    const int64_t inner = t.size() / t.dim(0) / t.dim(1);
    Shape shape{count};
    if (t.rank() == 3) shape.push_back(t.dim(2));
    std::vector<float> v(t.floats().begin() + (d * t.dim(1) + begin) * inner,
                         t.floats().begin() + (d * t.dim(1) + begin + count) * inner);
    return HostTensor::fromFloats(shape, v);
  };
  desc.num_layers = 1;
  for (int d = 0; d < dirs; ++d) {
    desc.setWeights(0, d, GateLayout::kONNX, block(W, d, 0, gh), block(R, d, 0, gh),
                    B.empty() ? HostTensor{} : block(B, d, 0, gh), B.empty() ? HostTensor{} : block(B, d, gh, gh));
    if (!P.empty()) {  // ONNX's p_i, p_o, p_f as ds2rt's p_i, p_f, p_o
      const HostTensor p = block(P, d, 0, 3 * hidden);
      std::vector<float> v(p.floats().begin(), p.floats().end());
      std::rotate(v.begin() + hidden, v.begin() + 2 * hidden, v.end());
      desc.weights[d].peephole = HostTensor::fromFloats({3 * hidden}, v);
    }
  }

  if (layout == 1) {  // X is N x T x input: the layer reads it as T x N x input
    check(x.axes.size() == 3, where_, ": X must have rank 3, it is ", describeAxes(x.axes));
    std::swap(x.axes[0], x.axes[1]);
  }
  const Tensor input_tensor = materialize(x);
  check(net_.layout(input_tensor) == TensorLayout::kSequence && x.axes.size() == 3 && atomNames(x.axes[0]) == "T" &&
            atomNames(x.axes[1]) == "N",
        where_, ": the input must be a ", layout == 1 ? "N x T" : "T x N", " x features sequence, it is ",
        describeAxes(x.axes));
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

  // With layout = 1 the graph's Y is a transpose of the layer's output and takes the name Y.
  const std::string name = layout == 1 ? uniqueName(cat(node_->name().empty() ? node_->output(0) : node_->name(), "/rnn"))
                                       : layerName();
  rnns_.push_back({name, input_tensor, lengths, std::move(desc), initial_h, initial_c, {}, {}});
  const int index = static_cast<int>(rnns_.size()) - 1;
  const Dim n{1, "N"}, t{1, "T"};
  const Atom T{'T', t}, N{'N', n}, D{'D', Dim{dirs, ""}}, H{'H', Dim{hidden, ""}};
  const std::vector<Atom> d_axis = dirs == 2 ? std::vector<Atom>{D} : std::vector<Atom>{};
  NetValue y;
  y.pending_rnn = index;
  y.lengths = lengths;
  y.memory = dirs == 2 ? std::vector<Atom>{T, N, D, H} : std::vector<Atom>{T, N, H};
  y.axes = layout == 1 ? std::vector<std::vector<Atom>>{{N}, {T}, d_axis, {H}}
                       : std::vector<std::vector<Atom>>{{T}, d_axis, {N}, {H}};
  const std::string kind = cat(op, dirs == 2 ? " bidirectional" : direction == "reverse" ? " reverse" : "");
  ++layer_counts_[cat(kind, " (hidden ", hidden, ")")];
  setOutput(0, y);
  // Y_h and Y_c: D x N x H (N x D x H with layout = 1).
  NetValue state;
  state.memory = {{'D', Dim{dirs, ""}}, N, H};
  state.axes = layout == 1 ? std::vector<std::vector<Atom>>{{N}, {state.memory[0]}, {H}}
                           : std::vector<std::vector<Atom>>{{state.memory[0]}, {N}, {H}};
  NetValue final_state = state, final_cell = state;
  final_state.final_state_of = index;
  final_cell.final_cell_of = index;
  setOutput(1, final_state);
  if (op == "LSTM") setOutput(2, final_cell);
}

}  // namespace ds2rt::onnx_import
