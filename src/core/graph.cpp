// Shape inference, validation and bookkeeping for the layer set of the graph.
#include "core/graph.h"

#include <algorithm>
#include <cmath>

#include "ds2rt/error.h"
#include "core/overloaded.h"

namespace ds2rt::detail {

namespace {

int64_t convExtent(int64_t in, const ConvolutionDesc& c, int axis) {
  if (in == kDynamic) return kDynamic;
  const int64_t padded = in + c.padding[axis] + c.paddingEnd(axis);
  return (padded - c.dilation[axis] * (c.kernel[axis] - 1) - 1) / c.stride[axis] + 1;
}

int64_t channelAxisSize(const TensorInfo& t) {
  return t.layout == TensorLayout::kImage ? t.shape.at(1) : t.shape.back();
}

void expectLayout(const Layer& layer, const TensorInfo& t, std::initializer_list<TensorLayout> allowed) {
  for (TensorLayout l : allowed)
    if (t.layout == l) return;
  std::string names;
  for (TensorLayout l : allowed) names += cat(names.empty() ? "" : " or ", toString(l));
  fail("layer '", layer.name, "': input '", t.name, "' is a ", toString(t.layout), " tensor, expected ", names);
}

void expectShape(const Layer& layer, const char* what, const HostTensor& t, const Shape& shape, bool optional = false) {
  if (optional && t.empty()) return;
  check(!t.empty(), "layer '", layer.name, "': ", what, " is missing (expected ", toString(shape), ")");
  check(t.shape() == shape, "layer '", layer.name, "': ", what, " has shape ", toString(t.shape()), ", expected ",
        toString(shape));
  check(t.dtype() == DataType::kFloat32, "layer '", layer.name, "': ", what, " must be float32");
}

void validateActivation(const Layer& layer, const ActivationDesc& a) {
  check(a.type != ActivationType::kClip || a.min <= a.max, "layer '", layer.name, "': clip range [", a.min, ", ",
        a.max, "] is empty");
}

void validateRNNExtras(const Layer& layer, const RNNDesc& r, const std::vector<const TensorInfo*>& inputs) {
  const int64_t states = static_cast<int64_t>(r.num_layers) * r.directions(), h = r.hidden_size;
  check(std::isfinite(r.clip) && r.clip >= 0, "layer '", layer.name, "': clip must be 0 (none) or positive, got ", r.clip);
  const size_t per = defaultActivations(r.cell).size();
  check(r.activations.empty() || r.activations.size() == per || r.activations.size() == per * r.directions(),
        "layer '", layer.name, "': ", r.activations.size(), " gate functions given; a ", toString(r.cell), " takes ", per,
        " per direction (", per, " or ", per * r.directions(), " in all)");
  check(r.output == RNNOutput::kHidden || r.cell == RNNCell::kLSTM, "layer '", layer.name,
        "': only an LSTM has a cell state to output");
  check(r.output == RNNOutput::kHidden || r.direction != RNNDirection::kBidirectional ||
            r.merge == DirectionMerge::kConcat,
        "layer '", layer.name, "': the cell-state output keeps its directions concatenated (merge = concat)");
  check(r.initial_c.empty() || r.cell == RNNCell::kLSTM, "layer '", layer.name, "': initial_c is for LSTM only");
  for (const auto& [what, t] : {std::pair<const char*, const HostTensor*>{"initial_h", &r.initial_h}, {"initial_c", &r.initial_c}}) {
    if (t->empty()) continue;
    check(t->rank() == 3 && t->dim(0) == states && t->dim(1) >= 1 && t->dim(2) == h && t->dtype() == DataType::kFloat32,
          "layer '", layer.name, "': ", what, " must be float32 ", states, " (layers x directions) x batch x ", h,
          ", it is ", toString(t->shape()));
  }
  check(inputs.size() <= 4, "layer '", layer.name, "': a recurrent layer takes data, lengths, initial_h and initial_c");
  for (size_t k = 2; k < inputs.size(); ++k) {
    const TensorInfo& s = *inputs[k];
    const char* what = k == 2 ? "initial_h" : "initial_c";
    check(k == 2 || r.cell == RNNCell::kLSTM, "layer '", layer.name, "': initial_c is for LSTM only");
    expectLayout(layer, s, {TensorLayout::kSequence});
    check((s.shape[0] == kDynamic || s.shape[0] == states) && s.shape[2] == h, "layer '", layer.name, "': the ", what,
          " input '", s.name, "' must be ", states, " (layers x directions) x N x ", h, ", it is ", toString(s.shape));
  }
}

}  // namespace

const char* kindName(const LayerDesc& desc) {
  static const char* const names[] = {"Convolution", "BatchNorm",      "Activation", "SequenceMask",
                                      "LengthsTransform", "ReshapeToSequence", "RNN", "Lookahead",
                                      "FullyConnected", "Softmax", "BatchMajor", "LayerNorm", "RNNFinalState",
                                      "SamePaddingShift"};
  if (const auto* s = std::get_if<SoftmaxDesc>(&desc); s && s->log) return "LogSoftmax";
  return names[desc.index()];
}

int Graph::findTensor(const std::string& name) const {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].name == name) return static_cast<int>(i);
  return -1;
}

int Graph::producer(int tensor) const {
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].output == tensor) return static_cast<int>(i);
  return -1;
}

std::vector<int> Graph::consumers(int tensor) const {
  std::vector<int> out;
  for (size_t i = 0; i < layers.size(); ++i)
    if (std::find(layers[i].inputs.begin(), layers[i].inputs.end(), tensor) != layers[i].inputs.end())
      out.push_back(static_cast<int>(i));
  return out;
}

Shape inferShape(const Layer& layer, const std::vector<Shape>& in) {
  const Shape& x = in.at(0);
  return std::visit(
      Overloaded{
          [&](const ConvolutionDesc& c) -> Shape {
            return {x[0], c.out_channels, convExtent(x[2], c, 0), convExtent(x[3], c, 1)};
          },
          [&](const LengthsTransformDesc&) -> Shape { return x; },
          [&](const ReshapeToSequenceDesc&) -> Shape { return {x[3], x[0], x[1] * x[2]}; },
          [&](const RNNDesc& r) -> Shape {
            const bool concat = r.direction == RNNDirection::kBidirectional && r.merge == DirectionMerge::kConcat;
            return {x[0], x[1], static_cast<int64_t>(r.hidden_size) * (concat ? 2 : 1)};
          },
          [&](const FullyConnectedDesc& f) -> Shape {
            Shape s = x;
            s.back() = f.out_features;
            return s;
          },
          [&](const BatchMajorDesc&) -> Shape { return {x[1], x[0], x[2]}; },
          [&](const RNNFinalStateDesc& f) -> Shape { return {f.directions(), x[1], f.hidden_size}; },
          [&](const SamePaddingShiftDesc& s) -> Shape {
            return {x[0], x[1], x[2], x[3] == kDynamic ? kDynamic : x[3] + s.maxShift()};
          },
          [&](const auto&) -> Shape { return x; },  // element-wise layers
      },
      layer.desc);
}

void validateLayer(const Layer& layer, const std::vector<const TensorInfo*>& inputs) {
  const TensorInfo& x = *inputs.at(0);
  using L = TensorLayout;
  std::visit(
      Overloaded{
          [&](const ConvolutionDesc& c) {
            expectLayout(layer, x, {L::kImage});
            check(c.out_channels > 0, "layer '", layer.name, "': out_channels must be positive");
            for (int i = 0; i < 2; ++i)
              check(c.kernel[i] > 0 && c.stride[i] > 0 && c.dilation[i] > 0 && c.padding[i] >= 0 &&
                        c.padding_end[i] >= -1,
                    "layer '", layer.name, "': kernel, stride and dilation must be positive and padding non-negative");
            expectShape(layer, "weight", c.weight, {c.out_channels, x.shape[1], c.kernel[0], c.kernel[1]});
            expectShape(layer, "bias", c.bias, {c.out_channels}, true);
            validateActivation(layer, c.activation);
            check(convExtent(x.shape[2], c, 0) > 0, "layer '",
                  layer.name, "': ", x.shape[2], " frequency bins are too few for kernel ", c.kernel[0]);
          },
          [&](const BatchNormDesc& b) {
            expectLayout(layer, x, {L::kImage, L::kSequence, L::kBatchMajor});
            const Shape c{channelAxisSize(x)};
            expectShape(layer, "scale", b.scale, c);
            expectShape(layer, "bias", b.bias, c);
            expectShape(layer, "mean", b.mean, c);
            expectShape(layer, "variance", b.variance, c);
            for (float v : b.variance.floats())
              check(v + b.epsilon > 0 && std::isfinite(v), "layer '", layer.name, "': variance + epsilon must be positive");
          },
          [&](const ActivationDesc& a) {
            expectLayout(layer, x, {L::kImage, L::kSequence, L::kBatchMajor});
            check(a.type != ActivationType::kNone, "layer '", layer.name, "': activation type is none");
            validateActivation(layer, a);
          },
          [&](const SequenceMaskDesc&) {
            expectLayout(layer, x, {L::kImage, L::kSequence, L::kBatchMajor});
            expectLayout(layer, *inputs.at(1), {L::kLengths});
          },
          [&](const LengthsTransformDesc& t) {
            expectLayout(layer, x, {L::kLengths});
            check(t.kernel > 0 && t.stride > 0 && t.dilation > 0 && t.padding >= 0, "layer '", layer.name,
                  "': kernel, stride and dilation must be positive and padding non-negative");
          },
          [&](const ReshapeToSequenceDesc&) { expectLayout(layer, x, {L::kImage}); },
          [&](const RNNDesc& r) {
            expectLayout(layer, x, {L::kSequence});
            expectLayout(layer, *inputs.at(1), {L::kLengths});
            check(r.hidden_size > 0 && r.num_layers > 0, "layer '", layer.name,
                  "': hidden_size and num_layers must be positive");
            const int dirs = r.directions();
            check(r.weights.size() == static_cast<size_t>(r.num_layers * dirs), "layer '", layer.name, "': expected ",
                  r.num_layers * dirs, " weight sets (layers x directions), got ", r.weights.size());
            const int64_t gh = static_cast<int64_t>(gateCount(r.cell)) * r.hidden_size;
            for (int l = 0; l < r.num_layers; ++l)
              for (int d = 0; d < dirs; ++d) {
                const auto& w = r.weights[l * dirs + d];
                const int64_t in = l == 0 ? x.shape[2] : static_cast<int64_t>(r.hidden_size) * dirs;
                const std::string tag = cat("layer ", l, " direction ", d, " ");
                expectShape(layer, (tag + "input weight").c_str(), w.input_weight, {gh, in});
                expectShape(layer, (tag + "recurrent weight").c_str(), w.recurrent_weight, {gh, r.hidden_size});
                expectShape(layer, (tag + "input bias").c_str(), w.input_bias, {gh}, true);
                expectShape(layer, (tag + "recurrent bias").c_str(), w.recurrent_bias, {gh}, true);
                check(w.peephole.empty() || r.cell == RNNCell::kLSTM, "layer '", layer.name,
                      "': peephole weights are for LSTM only");
                expectShape(layer, (tag + "peephole").c_str(), w.peephole, {3 * static_cast<int64_t>(r.hidden_size)}, true);
              }
            validateRNNExtras(layer, r, inputs);
          },
          [&](const LookaheadDesc& k) {
            expectLayout(layer, x, {L::kSequence});
            expectLayout(layer, *inputs.at(1), {L::kLengths});
            check(!k.weight.empty() && k.weight.rank() == 2 && k.weight.dim(0) == x.shape[2] && k.weight.dim(1) > 0,
                  "layer '", layer.name, "': weight must be ", x.shape[2], " x context, got ",
                  toString(k.weight.shape()));
            validateActivation(layer, k.activation);
          },
          [&](const FullyConnectedDesc& f) {
            expectLayout(layer, x, {L::kSequence, L::kBatchMajor});
            check(f.out_features > 0, "layer '", layer.name, "': out_features must be positive");
            expectShape(layer, "weight", f.weight, {f.out_features, x.shape.back()});
            expectShape(layer, "bias", f.bias, {f.out_features}, true);
            validateActivation(layer, f.activation);
          },
          [&](const SoftmaxDesc&) { expectLayout(layer, x, {L::kSequence, L::kBatchMajor}); },
          [&](const BatchMajorDesc&) { expectLayout(layer, x, {L::kSequence, L::kBatchMajor}); },  // swaps N and T
          [&](const LayerNormDesc& n) {
            expectLayout(layer, x, {L::kSequence, L::kBatchMajor});
            if (inputs.size() > 1) expectLayout(layer, *inputs[1], {L::kLengths});
            const Shape h{x.shape.back()};
            expectShape(layer, "scale", n.scale, h, true);
            expectShape(layer, "bias", n.bias, h, true);
            check(std::isfinite(n.epsilon) && n.epsilon >= 0, "layer '", layer.name, "': epsilon must be finite and ",
                  "non-negative, got ", n.epsilon);
          },
          [&](const SamePaddingShiftDesc&) {
            expectLayout(layer, x, {L::kImage});
            expectLayout(layer, *inputs.at(1), {L::kLengths});
          },
          [&](const RNNFinalStateDesc& f) {
            expectLayout(layer, x, {L::kSequence});
            expectLayout(layer, *inputs.at(1), {L::kLengths});
            check(f.hidden_size > 0 && x.shape[2] == static_cast<int64_t>(f.directions()) * f.hidden_size, "layer '",
                  layer.name, "': the input must hold ", f.directions(), " directions of ", f.hidden_size,
                  " features, it has ", x.shape[2]);
          },
      },
      layer.desc);
}

std::vector<std::string> rnnExtras(const Layer& layer) {
  std::vector<std::string> out;
  const auto* r = std::get_if<RNNDesc>(&layer.desc);
  if (!r) return out;
  if (r->clip > 0) out.push_back(cat("clip ", r->clip));
  for (int d = 0; d < r->directions(); ++d) {
    const auto fns = r->activationsOf(d);
    if (fns == defaultActivations(r->cell)) continue;
    std::string names;
    for (const auto& a : fns) names += cat(names.empty() ? "" : ", ", toString(a.type));
    out.push_back(cat("gate functions ", names));
    break;
  }
  if (r->hasPeepholes()) out.push_back("peepholes");
  if (!r->initial_h.empty()) out.push_back("a constant initial_h");
  if (!r->initial_c.empty()) out.push_back("a constant initial_c");
  if (layer.inputs.size() > 2) out.push_back("an initial_h input");
  if (layer.inputs.size() > 3) out.push_back("an initial_c input");
  if (r->output == RNNOutput::kCellState) out.push_back("the cell-state output (ONNX's Y_c)");
  return out;
}

int64_t parameterCount(const LayerDesc& desc) {
  int64_t n = 0;
  forEachWeight(desc, [&](const std::string&, const HostTensor& t) {
    if (!t.empty()) n += t.size();
  });
  return n;
}

}  // namespace ds2rt::detail
