// The ONNX nodes that become ds2rt layers: Conv (2-D, or 1-D as a lookahead), BatchNormalization,
// activations, MatMul/Gemm, Softmax/LogSoftmax, the direction sum of a recurrent layer and Pad
// (LSTM/GRU/RNN are in onnx_recurrent.cpp).
#include <algorithm>
#include <cmath>
#include <limits>

#include "importers/onnx/onnx_translator.h"

namespace ds2rt::onnx_import {

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
  const Tensor t = x.pending() || x.pad_end ? materialize(x) : x.tensor;
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

}  // namespace ds2rt::onnx_import
