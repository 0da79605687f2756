// NetworkDefinition: every add* takes its layer's description as keyword arguments
// (net.add_convolution("conv1", x, weight=w, bias=b, stride=(2, 2), padding=(20, 5))); recurrent
// layers take an RNNDesc, whose weights go in whole (set_weights, with a gate layout) or per gate.
#include <nanobind/stl/array.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>

#include "bindings.h"
#include "ds2rt/error.h"
#include "ds2rt/network.h"

namespace ds2rt::python {

using namespace nb::literals;

namespace {

using Pair = std::array<int, 2>;
using OptionalTensor = std::optional<HostTensor>;

HostTensor orEmpty(OptionalTensor t) { return t ? std::move(*t) : HostTensor{}; }

void bindEnums(nb::module_& m) {
  nb::enum_<TensorLayout>(m, "TensorLayout")
      .value("IMAGE", TensorLayout::kImage, "N x C x F x T (conv front end)")
      .value("SEQUENCE", TensorLayout::kSequence, "T x N x H (recurrent part)")
      .value("BATCH_MAJOR", TensorLayout::kBatchMajor, "N x T x H")
      .value("LENGTHS", TensorLayout::kLengths, "N, int32: valid frames per utterance");
  nb::enum_<ActivationType>(m, "ActivationType")
      .value("RELU", ActivationType::kRelu)
      .value("CLIP", ActivationType::kClip, "hardtanh / clipped ReLU: min(max(x, min), max)")
      .value("TANH", ActivationType::kTanh)
      .value("SIGMOID", ActivationType::kSigmoid)
      .value("NONE", ActivationType::kNone);
  nb::enum_<RNNDirection>(m, "RNNDirection")
      .value("FORWARD", RNNDirection::kForward)
      .value("REVERSE", RNNDirection::kReverse)
      .value("BIDIRECTIONAL", RNNDirection::kBidirectional);
  nb::enum_<RNNActivationType>(m, "RNNActivationType", "ONNX's recurrent gate functions (f, g, h).")
      .value("SIGMOID", RNNActivationType::kSigmoid)
      .value("TANH", RNNActivationType::kTanh)
      .value("RELU", RNNActivationType::kRelu)
      .value("HARD_SIGMOID", RNNActivationType::kHardSigmoid, "max(0, min(1, alpha x + beta))")
      .value("LEAKY_RELU", RNNActivationType::kLeakyRelu, "x < 0 ? alpha x : x")
      .value("THRESHOLDED_RELU", RNNActivationType::kThresholdedRelu, "x > alpha ? x : 0")
      .value("SCALED_TANH", RNNActivationType::kScaledTanh, "alpha tanh(beta x)")
      .value("AFFINE", RNNActivationType::kAffine, "alpha x + beta")
      .value("ELU", RNNActivationType::kElu, "x < 0 ? alpha (e^x - 1) : x")
      .value("SOFTSIGN", RNNActivationType::kSoftsign)
      .value("SOFTPLUS", RNNActivationType::kSoftplus);
  nb::enum_<RNNOutput>(m, "RNNOutput", "What a recurrent layer's output holds at each frame.")
      .value("HIDDEN", RNNOutput::kHidden)
      .value("CELL_STATE", RNNOutput::kCellState, "LSTM only: c_t");
  nb::enum_<DirectionMerge>(m, "DirectionMerge", "How the last layer of a bidirectional stack combines its directions.")
      .value("CONCAT", DirectionMerge::kConcat)
      .value("SUM", DirectionMerge::kSum);
}

void bindDescs(nb::module_& m) {
  nb::class_<Tensor>(m, "Tensor", "Handle to a tensor of one NetworkDefinition.")
      .def_ro("id", &Tensor::id)
      .def_prop_ro("valid", &Tensor::valid)
      .def("__repr__", [](const Tensor& t) { return cat("Tensor(id=", t.id, ")"); });

  nb::class_<ActivationDesc>(m, "ActivationDesc")
      .def(
          "__init__",
          [](ActivationDesc* self, ActivationType type, float min, float max) { construct(self, {type, min, max}); },
          "type"_a = ActivationType::kNone, "min"_a = 0.0f, "max"_a = 20.0f)
      .def_rw("type", &ActivationDesc::type)
      .def_rw("min", &ActivationDesc::min)
      .def_rw("max", &ActivationDesc::max)
      .def("apply", &ActivationDesc::apply, "x"_a);

  nb::class_<RNNGateWeights>(m, "RNNGateWeights", "One layer and direction, canonical gate layout.")
      .def_ro("input_weight", &RNNGateWeights::input_weight)
      .def_ro("recurrent_weight", &RNNGateWeights::recurrent_weight)
      .def_ro("input_bias", &RNNGateWeights::input_bias)
      .def_ro("recurrent_bias", &RNNGateWeights::recurrent_bias)
      .def_rw("peephole", &RNNGateWeights::peephole, "LSTM only: 3*H p_i, p_f, p_o (ONNX's P is p_i, p_o, p_f).");

  nb::class_<RNNActivation>(m, "RNNActivation")
      .def(
          "__init__",
          [](RNNActivation* self, RNNActivationType type, float alpha, float beta) { construct(self, {type, alpha, beta}); },
          "type"_a, "alpha"_a = 0.0f, "beta"_a = 0.0f)
      .def_rw("type", &RNNActivation::type)
      .def_rw("alpha", &RNNActivation::alpha)
      .def_rw("beta", &RNNActivation::beta)
      .def("apply", &RNNActivation::apply, "x"_a);

  nb::class_<RNNDesc>(m, "RNNDesc",
                      "A stack of recurrent layers. Between stacked layers the directions are concatenated; "
                      "`merge` combines those of the last layer.")
      .def(
          "__init__",
          [](RNNDesc* self, RNNCell cell, int hidden_size, int num_layers, RNNDirection direction, DirectionMerge merge,
             bool linear_before_reset) {
            construct(self, RNNDesc{.cell = cell, .hidden_size = hidden_size, .num_layers = num_layers,
                                    .direction = direction, .merge = merge,
                                    .linear_before_reset = linear_before_reset});
          },
          "cell"_a, "hidden_size"_a, "num_layers"_a = 1, "direction"_a = RNNDirection::kForward,
          "merge"_a = DirectionMerge::kConcat, "linear_before_reset"_a = true)
      .def_rw("cell", &RNNDesc::cell)
      .def_rw("hidden_size", &RNNDesc::hidden_size)
      .def_rw("num_layers", &RNNDesc::num_layers)
      .def_rw("direction", &RNNDesc::direction)
      .def_rw("merge", &RNNDesc::merge)
      .def_rw("linear_before_reset", &RNNDesc::linear_before_reset, "GRU only: PyTorch/cuDNN semantics when true.")
      .def_rw("clip", &RNNDesc::clip, "Gate pre-activations clipped to [-clip, clip] (ONNX's clip); 0: none.")
      .def_rw("activations", &RNNDesc::activations,
              "Gate functions per direction in turn (f, g, h for LSTM; f, g for GRU; f for vanilla); empty: defaults.")
      .def_rw("initial_h", &RNNDesc::initial_h, "Constant initial hidden states (layers*directions) x B x H; B 1 or N.")
      .def_rw("initial_c", &RNNDesc::initial_c, "LSTM only: constant initial cell states, as initial_h.")
      .def_rw("output", &RNNDesc::output)
      .def_prop_ro("directions", &RNNDesc::directions)
      .def_ro("weights", &RNNDesc::weights, "Per layer * directions + direction, as set so far.")
      .def(
          "set_peephole",
          [](RNNDesc& d, int layer, int direction, const HostTensor& peephole) {
            check(layer >= 0 && layer < d.num_layers && direction >= 0 && direction < d.directions() &&
                      d.weights.size() == static_cast<size_t>(d.num_layers * d.directions()),
                  "set_peephole: set the weights of layer ", layer, " direction ", direction, " first");
            d.weights[static_cast<size_t>(layer * d.directions() + direction)].peephole = peephole;
          },
          "layer"_a, "direction"_a, "peephole"_a, "LSTM peephole weights 3*H: p_i, p_f, p_o.")
      .def(
          "set_weights",
          [](RNNDesc& d, int layer, int direction, GateLayout layout, HostTensor input_weight,
             HostTensor recurrent_weight, OptionalTensor input_bias, OptionalTensor recurrent_bias) {
            d.setWeights(layer, direction, layout, std::move(input_weight), std::move(recurrent_weight),
                         orEmpty(std::move(input_bias)), orEmpty(std::move(recurrent_bias)));
          },
          "layer"_a, "direction"_a, "layout"_a, "input_weight"_a, "recurrent_weight"_a, "input_bias"_a = nb::none(),
          "recurrent_bias"_a = nb::none(),
          "Sets one layer/direction from whole framework tensors (G*H x I, G*H x H, G*H, G*H) in `layout`.")
      .def(
          "set_gate",
          [](RNNDesc& d, int layer, int direction, Gate gate, const HostTensor& input_weight,
             const HostTensor& recurrent_weight, OptionalTensor input_bias, OptionalTensor recurrent_bias) {
            d.setGate(layer, direction, gate, input_weight, recurrent_weight, orEmpty(std::move(input_bias)),
                      orEmpty(std::move(recurrent_bias)));
          },
          "layer"_a, "direction"_a, "gate"_a, "input_weight"_a, "recurrent_weight"_a, "input_bias"_a = nb::none(),
          "recurrent_bias"_a = nb::none(), "TensorRT style: one gate (H x I, H x H, H, H) at a time.");
}

void bindLayers(nb::class_<NetworkDefinition>& c) {
  using N = NetworkDefinition;
  const auto activation = [](std::optional<ActivationDesc> a) { return a.value_or(ActivationDesc{}); };
  c.def(
       "add_convolution",
       [activation](N& n, const std::string& name, Tensor input, HostTensor weight, OptionalTensor bias,
                    std::optional<int> out_channels, std::optional<Pair> kernel, Pair stride, Pair padding,
                    Pair dilation, std::optional<ActivationDesc> act) {
         ConvolutionDesc d{.stride = stride, .padding = padding, .dilation = dilation, .activation = activation(act)};
         d.out_channels = out_channels.value_or(weight.rank() >= 1 ? static_cast<int>(weight.dim(0)) : 0);
         d.kernel = kernel.value_or(weight.rank() == 4 ? Pair{int(weight.dim(2)), int(weight.dim(3))} : d.kernel);
         d.weight = std::move(weight);
         d.bias = orEmpty(std::move(bias));
         return n.addConvolution(name, input, std::move(d));
       },
       "name"_a, "input"_a, nb::kw_only(), "weight"_a, "bias"_a = nb::none(), "out_channels"_a = nb::none(),
       "kernel"_a = nb::none(), "stride"_a = nb::make_tuple(1, 1), "padding"_a = nb::make_tuple(0, 0),
       "dilation"_a = nb::make_tuple(1, 1),
       "activation"_a = nb::none(),
       "2-D convolution over N x C x F x T as PyTorch's Conv2d; weight out x in x kF x kT. out_channels and kernel "
       "default to the weight's shape; pairs are (frequency, time).")
      .def(
          "add_batch_norm",
          [](N& n, const std::string& name, Tensor input, HostTensor scale, HostTensor bias, HostTensor mean,
             HostTensor variance, double epsilon) {
            return n.addBatchNorm(name, input, {std::move(scale), std::move(bias), std::move(mean), std::move(variance),
                                                static_cast<float>(epsilon)});
          },
          "name"_a, "input"_a, nb::kw_only(), "scale"_a, "bias"_a, "mean"_a, "variance"_a, "epsilon"_a = 1e-5,
          "Inference batch norm over the channels (axis 1 of an image, last axis of a sequence).")
      .def(
          "add_layer_norm",
          [](N& n, const std::string& name, Tensor input, std::optional<Tensor> lengths, OptionalTensor scale,
             OptionalTensor bias, double epsilon) {
            LayerNormDesc d{orEmpty(std::move(scale)), orEmpty(std::move(bias)), static_cast<float>(epsilon)};
            return lengths ? n.addLayerNorm(name, input, *lengths, std::move(d)) : n.addLayerNorm(name, input, std::move(d));
          },
          "name"_a, "input"_a, "lengths"_a = nb::none(), nb::kw_only(), "scale"_a = nb::none(), "bias"_a = nb::none(),
          "epsilon"_a = 1e-5,
          "Layer norm over the last axis of a sequence, per frame (biased variance, as PyTorch and Paddle). With "
          "lengths, frames at and past each utterance's length come out as zeros.")
      .def(
          "add_activation",
          [](N& n, const std::string& name, Tensor input, ActivationType type, float min, float max) {
            return n.addActivation(name, input, {type, min, max});
          },
          "name"_a, "input"_a, "type"_a, nb::kw_only(), "min"_a = 0.0f, "max"_a = 20.0f)
      .def("add_sequence_mask", &N::addSequenceMask, "name"_a, "input"_a, "lengths"_a,
           "Zeroes the frames at and past each utterance's length (deepspeech.pytorch's MaskConv).")
      .def(
          "add_lengths_transform",
          [](N& n, const std::string& name, Tensor lengths, int kernel, int stride, int padding, int dilation) {
            return n.addLengthsTransform(name, lengths, {kernel, stride, padding, dilation});
          },
          "name"_a, "lengths"_a, nb::kw_only(), "kernel"_a = 1, "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1,
          "Lengths after a layer with this kernel/stride/padding/dilation along time: "
          "L' = floor((L + 2p - d(k-1) - 1) / s) + 1.")
      .def("add_reshape_to_sequence", &N::addReshapeToSequence, "name"_a, "input"_a,
           "N x C x F x T -> T x N x (C*F), channel-major as deepspeech.pytorch's view().")
      .def(
          "add_rnn",
          [](N& n, const std::string& name, Tensor input, Tensor lengths, const RNNDesc& desc,
             std::optional<Tensor> initial_h, std::optional<Tensor> initial_c) {
            if (initial_h || initial_c)
              return n.addRNN(name, input, lengths, desc, initial_h.value_or(Tensor{}), initial_c.value_or(Tensor{}));
            return n.addRNN(name, input, lengths, desc);
          },
          "name"_a, "input"_a, "lengths"_a, "desc"_a, "initial_h"_a = nb::none(), "initial_c"_a = nb::none(),
          "initial_h / initial_c: run-time initial states, sequence inputs (layers*directions) x N x H.")
      .def(
          "add_same_padding_shift",
          [](N& n, const std::string& name, Tensor image, Tensor lengths, int kernel, int stride) {
            return n.addSamePaddingShift(name, image, lengths, {kernel, stride});
          },
          "name"_a, "image"_a, "lengths"_a, nb::kw_only(), "kernel"_a, "stride"_a,
          "Before a convolution with TensorFlow's 'same' padding and a stride along time: moves each utterance "
          "later by what its length adds to that padding, so the convolution (padding (k - s) // 2 before) "
          "matches TensorFlow for every length. Output: maxShift more frames.")
      .def(
          "add_lookahead",
          [activation](N& n, const std::string& name, Tensor input, Tensor lengths, HostTensor weight,
                       std::optional<ActivationDesc> act) {
            return n.addLookahead(name, input, lengths, {std::move(weight), activation(act)});
          },
          "name"_a, "input"_a, "lengths"_a, nb::kw_only(), "weight"_a, "activation"_a = nb::none(),
          "Row convolution over future frames; weight H x context (or PyTorch's H x 1 x context).")
      .def(
          "add_fully_connected",
          [activation](N& n, const std::string& name, Tensor input, HostTensor weight, OptionalTensor bias,
                       std::optional<int> out_features, std::optional<ActivationDesc> act) {
            FullyConnectedDesc d{.out_features = out_features.value_or(weight.rank() >= 1 ? int(weight.dim(0)) : 0),
                                 .weight = std::move(weight), .bias = orEmpty(std::move(bias)),
                                 .activation = activation(act)};
            return n.addFullyConnected(name, input, std::move(d));
          },
          "name"_a, "input"_a, nb::kw_only(), "weight"_a, "bias"_a = nb::none(), "out_features"_a = nb::none(),
          "activation"_a = nb::none(), "y = x W^T + b over the last axis; weight out x in.")
      .def("add_softmax", &N::addSoftmax, "name"_a, "input"_a)
      .def("add_log_softmax", &N::addLogSoftmax, "name"_a, "input"_a)
      .def("add_batch_major", &N::addBatchMajor, "name"_a, "input"_a, "T x N x H -> N x T x H.")
      .def("add_time_major", &N::addTimeMajor, "name"_a, "input"_a, "N x T x H -> T x N x H.");
}

}  // namespace

void bindNetwork(nb::module_& m) {
  bindEnums(m);
  bindDescs(m);
  auto c = nb::class_<NetworkDefinition>(m, "NetworkDefinition",
                                         "A network described layer by layer; every add_* checks its inputs and "
                                         "weights at once and names the layer in any error.")
               .def(nb::init<>())
               .def("add_image_input", &NetworkDefinition::addImageInput, "name"_a, "channels"_a, "features"_a,
                    "N x channels x features x T, float32.")
               .def("add_sequence_input", &NetworkDefinition::addSequenceInput, "name"_a, "features"_a,
                    "T x N x features, float32.")
               .def("add_batch_major_input", &NetworkDefinition::addBatchMajorInput, "name"_a, "features"_a,
                    "N x T x features, float32.")
               .def("add_lengths_input", &NetworkDefinition::addLengthsInput, "name"_a,
                    "N, int32: valid frames of each utterance.");
  bindLayers(c);
  c.def("mark_output", &NetworkDefinition::markOutput, "tensor"_a, "name"_a = "",
        "Makes `tensor` an output of the network, optionally renaming it.")
      .def("set_metadata", &NetworkDefinition::setMetadata, "key"_a, "value"_a,
           "A fact about the model that travels into the engine and its plan file, untouched.")
      .def_prop_ro("metadata", &NetworkDefinition::metadata)
      .def("name", &NetworkDefinition::name, "tensor"_a)
      .def("shape", &NetworkDefinition::shape, "tensor"_a, "The tensor's shape, -1 for the dynamic N and T.")
      .def("layout", &NetworkDefinition::layout, "tensor"_a)
      .def_prop_ro("layer_count", &NetworkDefinition::layerCount)
      .def("describe", &NetworkDefinition::describe, "A table of layers, output shapes and parameter counts.")
      .def("__repr__",
           [](const NetworkDefinition& n) { return cat("NetworkDefinition(", n.layerCount(), " layers)"); });
}

}  // namespace ds2rt::python
