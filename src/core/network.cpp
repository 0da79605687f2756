#include "ds2rt/network.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "core/graph.h"
#include "ds2rt/error.h"

namespace ds2rt {

using detail::Graph;
using detail::Layer;
using detail::TensorInfo;

const char* toString(TensorLayout layout) {
  static const char* const names[] = {"image (N x C x F x T)", "sequence (T x N x H)", "batch-major (N x T x H)",
                                      "lengths (N)"};
  return names[static_cast<int>(layout)];
}

const char* toString(ActivationType type) {
  static const char* const names[] = {"relu", "clip", "tanh", "sigmoid", "none"};
  return names[static_cast<int>(type)];
}

const char* toString(RNNDirection direction) {
  static const char* const names[] = {"forward", "reverse", "bidirectional"};
  return names[static_cast<int>(direction)];
}

const char* toString(DirectionMerge merge) { return merge == DirectionMerge::kSum ? "sum" : "concat"; }

const char* toString(RNNActivationType type) {
  static const char* const names[] = {"Sigmoid", "Tanh",     "Relu", "HardSigmoid", "LeakyRelu", "ThresholdedRelu",
                                      "ScaledTanh", "Affine", "Elu",  "Softsign",    "Softplus"};
  return names[static_cast<int>(type)];
}

const char* toString(RNNOutput output) { return output == RNNOutput::kCellState ? "cell_state" : "hidden"; }

int parameterCount(RNNActivationType type) {
  using A = RNNActivationType;
  switch (type) {
    case A::kHardSigmoid: case A::kScaledTanh: case A::kAffine: return 2;
    case A::kLeakyRelu: case A::kThresholdedRelu: case A::kElu: return 1;
    default: return 0;
  }
}

float RNNActivation::apply(float x) const {
  switch (type) {
    case RNNActivationType::kSigmoid: return 1.0f / (1.0f + std::exp(-x));
    case RNNActivationType::kTanh: return std::tanh(x);
    case RNNActivationType::kRelu: return x > 0 ? x : 0;
    case RNNActivationType::kHardSigmoid: return std::max(0.0f, std::min(1.0f, alpha * x + beta));
    case RNNActivationType::kLeakyRelu: return x < 0 ? alpha * x : x;
    case RNNActivationType::kThresholdedRelu: return x > alpha ? x : 0;
    case RNNActivationType::kScaledTanh: return alpha * std::tanh(beta * x);
    case RNNActivationType::kAffine: return alpha * x + beta;
    case RNNActivationType::kElu: return x < 0 ? alpha * std::expm1(x) : x;
    case RNNActivationType::kSoftsign: return x / (1 + std::abs(x));
    case RNNActivationType::kSoftplus: return x > 20 ? x : std::log1p(std::exp(x));
  }
  return x;
}

std::vector<RNNActivation> defaultActivations(RNNCell cell) {
  using A = RNNActivationType;
  switch (cell) {
    case RNNCell::kLSTM: return {{A::kSigmoid}, {A::kTanh}, {A::kTanh}};
    case RNNCell::kGRU: return {{A::kSigmoid}, {A::kTanh}};
    case RNNCell::kRNNRelu: return {{A::kRelu}};
    case RNNCell::kRNNTanh: return {{A::kTanh}};
  }
  return {};
}

bool RNNDesc::hasPeepholes() const {
  return std::any_of(weights.begin(), weights.end(), [](const RNNGateWeights& w) { return !w.peephole.empty(); });
}

std::vector<RNNActivation> RNNDesc::activationsOf(int dir) const {
  const std::vector<RNNActivation> defaults = defaultActivations(cell);
  if (activations.empty()) return defaults;
  const size_t per = defaults.size();
  const size_t first = activations.size() >= per * (dir + 1) ? per * dir : 0;
  return {activations.begin() + static_cast<std::ptrdiff_t>(first),
          activations.begin() + static_cast<std::ptrdiff_t>(first + per)};
}

bool RNNDesc::hasExtras() const {
  bool other_functions = false;
  for (int d = 0; d < directions(); ++d) other_functions |= !activations.empty() && activationsOf(d) != defaultActivations(cell);
  return clip > 0 || other_functions || hasPeepholes() || !initial_h.empty() || !initial_c.empty() ||
         output != RNNOutput::kHidden;
}

float ActivationDesc::apply(float x) const {
  switch (type) {
    case ActivationType::kRelu: return x > 0 ? x : 0;
    case ActivationType::kClip: return std::min(std::max(x, min), max);
    case ActivationType::kTanh: return std::tanh(x);
    case ActivationType::kSigmoid: return 1.0f / (1.0f + std::exp(-x));
    case ActivationType::kNone: return x;
  }
  return x;
}

int64_t LengthsTransformDesc::apply(int64_t length) const {
  const int64_t numerator = length + 2 * padding - dilation * (kernel - 1) - 1;
  // floor division, as Python's // in get_seq_lens
  return (numerator >= 0 ? numerator / stride : -((-numerator + stride - 1) / stride)) + 1;
}

namespace {

RNNGateWeights& weightSet(RNNDesc& desc, int layer, int direction) {
  check(desc.num_layers > 0 && desc.hidden_size > 0, "RNNDesc: set num_layers and hidden_size before weights");
  const int dirs = desc.directions();
  check(layer >= 0 && layer < desc.num_layers && direction >= 0 && direction < dirs, "RNN weights: layer ", layer,
        " direction ", direction, " out of range (", desc.num_layers, " layers, ", dirs, " directions)");
  desc.weights.resize(static_cast<size_t>(desc.num_layers * dirs));
  return desc.weights[static_cast<size_t>(layer * dirs + direction)];
}

}  // namespace

void RNNDesc::setWeights(int layer, int direction, GateLayout layout, HostTensor input_weight,
                         HostTensor recurrent_weight, HostTensor input_bias, HostTensor recurrent_bias) {
  auto& set = weightSet(*this, layer, direction);
  const auto convert = [&](const HostTensor& t) { return t.empty() ? t : toCanonicalGates(t, cell, layout); };
  set.input_weight = convert(input_weight);
  set.recurrent_weight = convert(recurrent_weight);
  set.input_bias = convert(input_bias);
  set.recurrent_bias = convert(recurrent_bias);
}

void RNNDesc::setGate(int layer, int direction, Gate gate, const HostTensor& input_weight,
                      const HostTensor& recurrent_weight, const HostTensor& input_bias,
                      const HostTensor& recurrent_bias) {
  auto& set = weightSet(*this, layer, direction);
  const auto order = gateOrder(cell, GateLayout::kCanonical);
  const auto it = std::find(order.begin(), order.end(), gate);
  check(it != order.end(), "RNN weights: a ", toString(cell), " has no ", toString(gate), " gate");
  const int64_t index = it - order.begin(), h = hidden_size, gh = h * static_cast<int64_t>(order.size());
  const auto put = [&](HostTensor& whole, const HostTensor& part, const char* what) {
    if (part.empty()) return;
    const HostTensor p = part.toFloat32();
    check(p.rank() >= 1 && p.dim(0) == h, "RNN ", toString(gate), " gate ", what, ": first dimension must be the hidden size ",
          h, ", got ", toString(p.shape()));
    Shape shape = p.shape();
    shape[0] = gh;
    if (whole.empty()) whole = HostTensor(DataType::kFloat32, shape);
    check(whole.shape() == shape, "RNN ", toString(gate), " gate ", what, ": shape ", toString(p.shape()),
          " does not match the other gates");
    const int64_t block = p.size();
    std::copy(p.data<float>(), p.data<float>() + block, whole.mutableData<float>() + index * block);
  };
  put(set.input_weight, input_weight, "input weight");
  put(set.recurrent_weight, recurrent_weight, "recurrent weight");
  put(set.input_bias, input_bias, "input bias");
  put(set.recurrent_bias, recurrent_bias, "recurrent bias");
}

NetworkDefinition::NetworkDefinition() : graph_(std::make_unique<Graph>()) {}
NetworkDefinition::~NetworkDefinition() = default;
NetworkDefinition::NetworkDefinition(NetworkDefinition&&) noexcept = default;
NetworkDefinition& NetworkDefinition::operator=(NetworkDefinition&&) noexcept = default;

namespace {

void checkNewName(const Graph& g, const std::string& name) {
  check(!name.empty(), "every layer and tensor needs a name");
  check(g.findTensor(name) < 0, "the name '", name, "' is already used in this network");
  for (const auto& layer : g.layers) check(layer.name != name, "the name '", name, "' is already used in this network");
}

int addTensor(Graph& g, TensorInfo info) {
  checkNewName(g, info.name);
  g.tensors.push_back(std::move(info));
  return static_cast<int>(g.tensors.size()) - 1;
}

const TensorInfo& tensorInfo(const Graph& g, Tensor t, const std::string& layer) {
  check(t.id >= 0 && t.id < static_cast<int>(g.tensors.size()), "layer '", layer,
        "': input tensor does not belong to this network");
  return g.tensors[t.id];
}

Tensor addLayer(Graph& g, const std::string& name, detail::LayerDesc desc, std::vector<Tensor> inputs,
                TensorLayout layout) {
  checkNewName(g, name);
  Layer layer{name, std::move(desc), {}, -1, {}};
  // Weights are stored as float32; the builder picks the run-time precision.
  detail::forEachWeight(layer.desc, [](const std::string&, HostTensor& t) {
    if (!t.empty()) t = t.toFloat32();
  });
  if (auto* look = std::get_if<LookaheadDesc>(&layer.desc); look && look->weight.rank() == 3 && look->weight.dim(1) == 1)
    look->weight = look->weight.reshaped({look->weight.dim(0), look->weight.dim(2)});
  std::vector<const TensorInfo*> infos;
  std::vector<Shape> shapes;
  for (Tensor t : inputs) {
    infos.push_back(&tensorInfo(g, t, name));
    shapes.push_back(infos.back()->shape);
    layer.inputs.push_back(t.id);
  }
  detail::validateLayer(layer, infos);
  TensorInfo out{name, layout == TensorLayout::kLengths ? DataType::kInt32 : DataType::kFloat32, layout,
                 detail::inferShape(layer, shapes)};
  layer.output = addTensor(g, std::move(out));
  g.layers.push_back(std::move(layer));
  return Tensor{g.layers.back().output};
}

}  // namespace

Tensor NetworkDefinition::addImageInput(const std::string& name, int channels, int features) {
  check(channels > 0 && features > 0, "input '", name, "': channels and features must be positive");
  const int id = addTensor(*graph_, {name, DataType::kFloat32, TensorLayout::kImage, {kDynamic, channels, features, kDynamic}, true});
  graph_->inputs.push_back(id);
  return {id};
}

Tensor NetworkDefinition::addSequenceInput(const std::string& name, int features) {
  check(features > 0, "input '", name, "': features must be positive");
  const int id = addTensor(*graph_, {name, DataType::kFloat32, TensorLayout::kSequence, {kDynamic, kDynamic, features}, true});
  graph_->inputs.push_back(id);
  return {id};
}

Tensor NetworkDefinition::addBatchMajorInput(const std::string& name, int features) {
  check(features > 0, "input '", name, "': features must be positive");
  const int id = addTensor(*graph_, {name, DataType::kFloat32, TensorLayout::kBatchMajor, {kDynamic, kDynamic, features}, true});
  graph_->inputs.push_back(id);
  return {id};
}

Tensor NetworkDefinition::addLengthsInput(const std::string& name) {
  const int id = addTensor(*graph_, {name, DataType::kInt32, TensorLayout::kLengths, {kDynamic}, true});
  graph_->inputs.push_back(id);
  return {id};
}

Tensor NetworkDefinition::addConvolution(const std::string& name, Tensor input, ConvolutionDesc desc) {
  return addLayer(*graph_, name, std::move(desc), {input}, TensorLayout::kImage);
}

Tensor NetworkDefinition::addBatchNorm(const std::string& name, Tensor input, BatchNormDesc desc) {
  return addLayer(*graph_, name, std::move(desc), {input}, tensorInfo(*graph_, input, name).layout);
}

Tensor NetworkDefinition::addActivation(const std::string& name, Tensor input, ActivationDesc desc) {
  return addLayer(*graph_, name, desc, {input}, tensorInfo(*graph_, input, name).layout);
}

Tensor NetworkDefinition::addLayerNorm(const std::string& name, Tensor input, LayerNormDesc desc) {
  return addLayer(*graph_, name, std::move(desc), {input}, tensorInfo(*graph_, input, name).layout);
}

Tensor NetworkDefinition::addLayerNorm(const std::string& name, Tensor input, Tensor lengths, LayerNormDesc desc) {
  return addLayer(*graph_, name, std::move(desc), {input, lengths}, tensorInfo(*graph_, input, name).layout);
}

Tensor NetworkDefinition::addSequenceMask(const std::string& name, Tensor input, Tensor lengths) {
  return addLayer(*graph_, name, detail::SequenceMaskDesc{}, {input, lengths}, tensorInfo(*graph_, input, name).layout);
}

Tensor NetworkDefinition::addLengthsTransform(const std::string& name, Tensor lengths, LengthsTransformDesc desc) {
  return addLayer(*graph_, name, desc, {lengths}, TensorLayout::kLengths);
}

Tensor NetworkDefinition::addReshapeToSequence(const std::string& name, Tensor input) {
  return addLayer(*graph_, name, detail::ReshapeToSequenceDesc{}, {input}, TensorLayout::kSequence);
}

Tensor NetworkDefinition::addRNN(const std::string& name, Tensor input, Tensor lengths, RNNDesc desc) {
  return addLayer(*graph_, name, std::move(desc), {input, lengths}, TensorLayout::kSequence);
}

Tensor NetworkDefinition::addRNN(const std::string& name, Tensor input, Tensor lengths, RNNDesc desc, Tensor initial_h,
                                 Tensor initial_c) {
  check(initial_h.valid(), "layer '", name, "': initial_h must be given (a constant initial_c alone goes in RNNDesc)");
  std::vector<Tensor> inputs{input, lengths, initial_h};
  if (initial_c.valid()) inputs.push_back(initial_c);
  return addLayer(*graph_, name, std::move(desc), inputs, TensorLayout::kSequence);
}

Tensor NetworkDefinition::addRNNFinalState(const std::string& name, Tensor rnn_output, Tensor lengths,
                                          RNNFinalStateDesc desc) {
  return addLayer(*graph_, name, desc, {rnn_output, lengths}, TensorLayout::kSequence);
}

Tensor NetworkDefinition::addSamePaddingShift(const std::string& name, Tensor image, Tensor lengths,
                                             SamePaddingShiftDesc desc) {
  check(desc.kernel >= 1 && desc.stride >= 1, "layer '", name, "': kernel and stride must be at least 1, got ",
        desc.kernel, " and ", desc.stride);
  return addLayer(*graph_, name, desc, {image, lengths}, TensorLayout::kImage);
}

Tensor NetworkDefinition::addLookahead(const std::string& name, Tensor input, Tensor lengths, LookaheadDesc desc) {
  return addLayer(*graph_, name, std::move(desc), {input, lengths}, TensorLayout::kSequence);
}

Tensor NetworkDefinition::addFullyConnected(const std::string& name, Tensor input, FullyConnectedDesc desc) {
  return addLayer(*graph_, name, std::move(desc), {input}, tensorInfo(*graph_, input, name).layout);
}

Tensor NetworkDefinition::addSoftmax(const std::string& name, Tensor input) {
  return addLayer(*graph_, name, detail::SoftmaxDesc{false}, {input}, tensorInfo(*graph_, input, name).layout);
}

Tensor NetworkDefinition::addLogSoftmax(const std::string& name, Tensor input) {
  return addLayer(*graph_, name, detail::SoftmaxDesc{true}, {input}, tensorInfo(*graph_, input, name).layout);
}

Tensor NetworkDefinition::addBatchMajor(const std::string& name, Tensor input) {
  const TensorInfo& in = tensorInfo(*graph_, input, name);
  check(in.layout == TensorLayout::kSequence, "layer '", name, "': input '", in.name, "' is a ", toString(in.layout),
        " tensor, expected ", toString(TensorLayout::kSequence));
  return addLayer(*graph_, name, detail::BatchMajorDesc{}, {input}, TensorLayout::kBatchMajor);
}

Tensor NetworkDefinition::addTimeMajor(const std::string& name, Tensor input) {
  const TensorInfo& in = tensorInfo(*graph_, input, name);
  check(in.layout == TensorLayout::kBatchMajor, "layer '", name, "': input '", in.name, "' is a ", toString(in.layout),
        " tensor, expected ", toString(TensorLayout::kBatchMajor));
  return addLayer(*graph_, name, detail::BatchMajorDesc{}, {input}, TensorLayout::kSequence);
}

void NetworkDefinition::markOutput(Tensor tensor, const std::string& name) {
  auto& info = const_cast<TensorInfo&>(tensorInfo(*graph_, tensor, name.empty() ? "output" : name));
  if (!name.empty() && name != info.name) {
    checkNewName(*graph_, name);
    info.name = name;
  }
  if (!info.is_output) {
    info.is_output = true;
    graph_->outputs.push_back(tensor.id);
  }
}

void NetworkDefinition::setMetadata(const std::string& key, std::string value) {
  check(!key.empty(), "metadata keys must not be empty");
  graph_->metadata[key] = std::move(value);
}

const std::map<std::string, std::string>& NetworkDefinition::metadata() const { return graph_->metadata; }

const std::string& NetworkDefinition::name(Tensor tensor) const { return tensorInfo(*graph_, tensor, "?").name; }
Shape NetworkDefinition::shape(Tensor tensor) const { return tensorInfo(*graph_, tensor, "?").shape; }
TensorLayout NetworkDefinition::layout(Tensor tensor) const { return tensorInfo(*graph_, tensor, "?").layout; }
size_t NetworkDefinition::layerCount() const { return graph_->layers.size(); }

std::string NetworkDefinition::describe() const {
  std::ostringstream out;
  int64_t total = 0;
  size_t name_width = 8;
  for (const auto& layer : graph_->layers) name_width = std::max(name_width, layer.name.size() + 2);
  for (int id : graph_->inputs) name_width = std::max(name_width, graph_->tensors[id].name.size() + 2);
  const int w = static_cast<int>(name_width);
  out << std::left << std::setw(w) << "layer" << std::setw(20) << "kind" << std::setw(22) << "output"
      << "parameters\n";
  for (int id : graph_->inputs)
    out << std::setw(w) << graph_->tensors[id].name << std::setw(20) << "Input" << std::setw(22)
        << toString(graph_->tensors[id].shape) << "\n";
  for (const auto& layer : graph_->layers) {
    const int64_t params = detail::parameterCount(layer.desc);
    total += params;
    out << std::setw(w) << layer.name << std::setw(20) << detail::kindName(layer.desc) << std::setw(22)
        << toString(graph_->tensors[layer.output].shape) << params << "\n";
  }
  out << "total parameters: " << total << "\n";
  return out.str();
}

}  // namespace ds2rt
