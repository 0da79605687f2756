// deepspeech.pytorch's DeepSpeech as a standard ONNX graph, operator for operator what
// DeepSpeech2Model::createNetwork asks ds2rt to compute (see src/models/deepspeech2.cpp).
#include <climits>
#include <set>

#include "core/file.h"
#include "ds2rt/error.h"
#include "models/deepspeech2_convolutions.h"
#include "ds2rt/exporters.h"
#include "exporters/onnx/graph_writer.h"

namespace ds2rt {

namespace {

using onnx_export::GraphWriter;

constexpr int kMinOpset = 13;  // Unsqueeze/ReduceSum/Squeeze with axes as inputs, Softmax over one axis
constexpr int kMaxOpset = 17;  // the newest that libonnx 1.12 (and its checker) knows

class DeepSpeech2Exporter {
 public:
  DeepSpeech2Exporter(onnx::GraphProto& graph, const DeepSpeech2Model& model, const OnnxExportOptions& options)
      : g_(graph), config_(model.config()), weights_(model.weights()), options_(options) {}

  void build();

 private:
  HostTensor weight(const std::string& name, const Shape& shape) const { return weights_.getFloat(name, shape); }

  // Shared constants, made on first use.
  std::string constant(int64_t value);
  std::string constant(float value);
  std::string axes(const std::vector<int64_t>& values);

  std::string batchNorm(const std::string& name, const std::string& x, const std::string& prefix, int64_t channels);
  // deepspeech.pytorch's SequenceWise: T x N x H viewed as (T*N) x H for `body`, then viewed back.
  template <typename Body>
  std::string sequenceWise(const std::string& name, const std::string& x, int64_t features, Body body);
  // get_seq_lens for one convolution: floor((L + 2p - d(k-1) - 1) / s) + 1, in int64.
  std::string lengthsTransform(const std::string& name, const std::string& lengths, const LengthsTransformDesc& d);
  // Bool mask of the valid frames of `x`, whose time axis is `time_axis`: N x T (batch-major) or T x N.
  std::string validFrames(const std::string& name, const std::string& x, int64_t time_axis,
                          const std::string& lengths, bool batch_major);
  // Frames at and past each length set to zero (Where, not Mul: padding may hold NaN or Inf).
  std::string mask(const std::string& name, const std::string& x, const std::string& valid) {
    return g_.node("Where", name, {valid, x, constant(0.0f)});
  }
  std::string hardtanh(const std::string& name, const std::string& x) {
    return g_.node("Clip", name, {x, constant(0.0f), constant(20.0f)});
  }
  std::string recurrentLayer(int layer, const std::string& x, const std::string& sequence_lens);

  GraphWriter g_;
  const DeepSpeech2Config& config_;
  const WeightStore& weights_;
  const OnnxExportOptions& options_;
  std::set<std::string> constants_;
};

std::string DeepSpeech2Exporter::constant(int64_t value) {
  const std::string name = "const.int64." + std::to_string(value);
  if (constants_.insert(name).second) g_.scalar(name, value);
  return name;
}

std::string DeepSpeech2Exporter::constant(float value) {
  const std::string name = "const.float." + cat(value);
  if (constants_.insert(name).second) g_.scalar(name, value);
  return name;
}

std::string DeepSpeech2Exporter::axes(const std::vector<int64_t>& values) {
  std::string name = "const.axes";
  for (int64_t v : values) name += cat(".", v);
  if (constants_.insert(name).second) g_.ints(name, values);
  return name;
}

std::string DeepSpeech2Exporter::batchNorm(const std::string& name, const std::string& x, const std::string& prefix,
                                           int64_t channels) {
  std::vector<std::string> inputs{x};
  for (const char* part : {".weight", ".bias", ".running_mean", ".running_var"})
    inputs.push_back(g_.weight(prefix + part, weight(prefix + part, {channels})));
  return g_.node("BatchNormalization", name, inputs, {{"epsilon", 1e-5f}});
}

template <typename Body>
std::string DeepSpeech2Exporter::sequenceWise(const std::string& name, const std::string& x, int64_t features,
                                              Body body) {
  const std::string flat = g_.node("Reshape", name + ".flatten", {x, axes({-1, features})});
  const std::string y = body(flat);
  const std::string shape = g_.node("Shape", name + ".shape", {x});
  return g_.node("Reshape", name + ".unflatten", {y, shape});
}

std::string DeepSpeech2Exporter::lengthsTransform(const std::string& name, const std::string& lengths,
                                                  const LengthsTransformDesc& d) {
  const int64_t offset = 2 * d.padding - d.dilation * (d.kernel - 1) - 1;
  if (d.stride == 1) return offset + 1 == 0 ? lengths : g_.node("Add", name, {lengths, constant(offset + 1)});
  const std::string numerator = g_.node("Add", name + ".numerator", {lengths, constant(offset)});
  // Integer Div truncates; subtracting Mod (fmod=0: the divisor's sign, as Python's %) makes it floor.
  const std::string remainder = g_.node("Mod", name + ".remainder", {numerator, constant(int64_t{d.stride})});
  const std::string exact = g_.node("Sub", name + ".exact", {numerator, remainder});
  const std::string quotient = g_.node("Div", name + ".quotient", {exact, constant(int64_t{d.stride})});
  return g_.node("Add", name, {quotient, constant(int64_t{1})});
}

std::string DeepSpeech2Exporter::validFrames(const std::string& name, const std::string& x, int64_t time_axis,
                                             const std::string& lengths, bool batch_major) {
  const std::string shape = g_.node("Shape", name + ".shape", {x});
  const std::string time = g_.node("Gather", name + ".time", {shape, constant(time_axis)}, {{"axis", int64_t{0}}});
  const std::string frames = g_.node("Range", name + ".frames", {constant(int64_t{0}), time, constant(int64_t{1})});
  const std::string f = g_.node("Unsqueeze", name + ".frames_2d", {frames, axes({batch_major ? 0 : 1})});
  const std::string l = g_.node("Unsqueeze", name + ".lengths_2d", {lengths, axes({batch_major ? 1 : 0})});
  return g_.node("Less", name, {f, l});
}

std::string DeepSpeech2Exporter::recurrentLayer(int layer, const std::string& x, const std::string& sequence_lens) {
  const RNNCell cell = config_.cell();
  const int64_t h = config_.hidden_size, gh = static_cast<int64_t>(gateCount(cell)) * h;
  const int64_t in = layer == 0 ? config_.rnnInputSize() : h;
  const int64_t directions = config_.bidirectional ? 2 : 1;
  const std::string p = "rnns." + std::to_string(layer) + ".rnn";

  // ONNX stacks the directions on a leading axis, gates in its own order, and both biases in one B.
  std::vector<float> w, r, b;
  const auto append = [&](std::vector<float>& to, const std::string& name, const Shape& shape) {
    const HostTensor t = fromCanonicalGates(weight(name, shape), cell, GateLayout::kONNX);
    to.insert(to.end(), t.data<float>(), t.data<float>() + t.size());
  };
  for (int64_t d = 0; d < directions; ++d) {
    const std::string s = d ? "_l0_reverse" : "_l0";
    append(w, p + ".weight_ih" + s, {gh, in});
    append(r, p + ".weight_hh" + s, {gh, h});
    append(b, p + ".bias_ih" + s, {gh});
    append(b, p + ".bias_hh" + s, {gh});
  }
  const std::string W = g_.weight(p + ".W", HostTensor::fromFloats({directions, gh, in}, std::move(w)));
  const std::string R = g_.weight(p + ".R", HostTensor::fromFloats({directions, gh, h}, std::move(r)));
  const std::string B = g_.weight(p + ".B", HostTensor::fromFloats({directions, 2 * gh}, std::move(b)));

  const std::string op = cell == RNNCell::kLSTM ? "LSTM" : cell == RNNCell::kGRU ? "GRU" : "RNN";
  const std::string direction = config_.bidirectional ? "bidirectional" : "forward";
  // Y: T x directions x N x H. PyTorch's GRU applies the reset gate after the recurrent product.
  std::vector<onnx_export::NamedAttribute> attributes{{"hidden_size", h}, {"direction", direction}};
  if (cell == RNNCell::kGRU) attributes.push_back({"linear_before_reset", int64_t{1}});
  const std::string y = g_.node(op, p, {x, W, R, B, sequence_lens}, attributes);
  // deepspeech.pytorch sums the two directions.
  if (config_.bidirectional) return g_.node("ReduceSum", p + ".sum", {y, axes({1})}, {{"keepdims", int64_t{0}}});
  return g_.node("Squeeze", p + ".squeeze", {y, axes({1})});
}

void DeepSpeech2Exporter::build() {
  const int32_t lengths_type = options_.int64_lengths ? onnx::TensorProto::INT64 : onnx::TensorProto::INT32;
  const int64_t bins = config_.spect.frequencyBins(), h = config_.hidden_size;
  const int64_t classes = static_cast<int64_t>(config_.labels.size());
  g_.input("features", onnx::TensorProto::FLOAT, {-1, 1, bins, -1}, {"N", "T"});
  g_.input("lengths", lengths_type, {-1}, {"N"});

  const std::string lengths = options_.int64_lengths
                                  ? std::string("lengths")
                                  : g_.node("Cast", "lengths.int64", {"lengths"}, {{"to", int64_t{onnx::TensorProto::INT64}}});
  const std::string conv0_lengths = lengthsTransform("conv.seq_module.0.lengths", lengths, {11, 2, 5, 1});
  const std::string out_lengths = lengthsTransform("conv.seq_module.3.lengths", conv0_lengths, {11, 1, 5, 1});

  // deepspeech.pytorch's loader pads with zeros; padding the caller left may hold anything.
  std::string x = mask("input_mask", "features",
                       g_.node("Unsqueeze", "input_mask.valid_4d",
                               {validFrames("input_mask.valid", "features", 3, lengths, true), axes({1, 2})}));
  for (int i = 0; i < 2; ++i) {
    const models::DeepSpeech2Convolution& s = models::kDeepSpeech2Convolutions[i];
    const std::string conv = "conv.seq_module." + std::to_string(3 * i);
    const std::string bn = "conv.seq_module." + std::to_string(3 * i + 1);
    const std::string act = "conv.seq_module." + std::to_string(3 * i + 2);
    x = g_.node("Conv", conv,
                {x, g_.weight(conv + ".weight", weight(conv + ".weight", {32, s.in, s.kf, s.kt})),
                 g_.weight(conv + ".bias", weight(conv + ".bias", {32}))},
                {{"kernel_shape", std::vector<int64_t>{s.kf, s.kt}},
                 {"strides", std::vector<int64_t>{s.sf, s.st}},
                 {"pads", std::vector<int64_t>{s.pf, s.pt, s.pf, s.pt}}});
    x = hardtanh(act, batchNorm(bn, x, bn, 32));
    // MaskConv masks after every module with the final lengths; batch norm and hardtanh act frame
    // by frame and hardtanh keeps zeros, so one mask after the block gives the same values.
    const std::string valid = validFrames(act + ".valid", x, 3, out_lengths, true);
    x = mask(act + ".mask", x, g_.node("Unsqueeze", act + ".valid_4d", {valid, axes({1, 2})}));
  }
  // N x 32 x F' x T' -> T' x N x (32 * F'), channel-major as deepspeech.pytorch's view().
  x = g_.node("Transpose", "reshape.transpose", {x}, {{"perm", std::vector<int64_t>{3, 0, 1, 2}}});
  x = g_.node("Reshape", "reshape", {x, axes({0, 0, config_.rnnInputSize()})});

  const std::string sequence_lens =
      g_.node("Cast", "rnns.sequence_lens", {out_lengths}, {{"to", int64_t{onnx::TensorProto::INT32}}});
  for (int i = 0; i < config_.hidden_layers; ++i) {
    if (i > 0) {
      const std::string bn = "rnns." + std::to_string(i) + ".batch_norm";
      x = sequenceWise(bn, x, h, [&](const std::string& flat) { return batchNorm(bn, flat, bn + ".module", h); });
    }
    x = recurrentLayer(i, x, sequence_lens);
  }

  if (!config_.bidirectional) {
    // Lookahead: depthwise Conv1d over time with context - 1 zero frames on the right. The frames past
    // each length read as zero, as in deepspeech.pytorch where the packed RNN leaves them zero.
    const int64_t context = config_.lookahead_context;
    const std::string valid = validFrames("lookahead.0.valid", x, 0, out_lengths, false);
    x = mask("lookahead.0.mask", x, g_.node("Unsqueeze", "lookahead.0.valid_3d", {valid, axes({2})}));
    x = g_.node("Transpose", "lookahead.0.to_nht", {x}, {{"perm", std::vector<int64_t>{1, 2, 0}}});
    x = g_.node("Conv", "lookahead.0.conv",
                {x, g_.weight("lookahead.0.conv.weight", weight("lookahead.0.conv.weight", {h, 1, context}))},
                {{"kernel_shape", std::vector<int64_t>{context}},
                 {"pads", std::vector<int64_t>{0, context - 1}},
                 {"group", h}});
    x = g_.node("Transpose", "lookahead.0", {x}, {{"perm", std::vector<int64_t>{2, 0, 1}}});
    x = hardtanh("lookahead.1", x);
  }

  // fc: SequenceWise(BatchNorm1d, Linear without bias), then the softmax over classes.
  const std::string probs_name = options_.log_softmax ? "log_probs" : "probs";
  const std::string flat = g_.node("Reshape", "fc.0.flatten", {x, axes({-1, h})});
  std::string y = batchNorm("fc.0.module.0", flat, "fc.0.module.0", h);
  y = g_.node("Gemm", "fc.0.module.1",
              {y, g_.weight("fc.0.module.1.weight", weight("fc.0.module.1.weight", {classes, h}))},
              {{"transB", int64_t{1}}});
  y = g_.node(options_.log_softmax ? "LogSoftmax" : "Softmax", options_.log_softmax ? "log_softmax" : "softmax", {y},
              {{"axis", int64_t{1}}});
  const std::string time_batch = g_.node("Gather", "fc.0.time_batch", {g_.node("Shape", "fc.0.shape", {x}), axes({0, 1})},
                                         {{"axis", int64_t{0}}});
  const std::string unflat_shape =
      g_.node("Concat", "fc.0.unflatten_shape", {time_batch, axes({classes})}, {{"axis", int64_t{0}}});
  y = g_.node("Reshape", "fc.0.unflatten", {y, unflat_shape});
  y = g_.node("Transpose", "batch_major", {y}, {{"perm", std::vector<int64_t>{1, 0, 2}}});
  const std::string valid = validFrames("output_mask.valid", y, 1, out_lengths, true);
  mask(probs_name, y, g_.node("Unsqueeze", "output_mask.valid_3d", {valid, axes({2})}));
  g_.node("Cast", "output_lengths", {out_lengths}, {{"to", int64_t{lengths_type}}});
  g_.output(probs_name, onnx::TensorProto::FLOAT, {-1, -1, classes}, {"N", "T_out"});
  g_.output("output_lengths", lengths_type, {-1}, {"N"});
}

}  // namespace

void exportOnnx(const DeepSpeech2Model& model, const std::string& path, const OnnxExportOptions& options) {
  check(options.opset >= kMinOpset && options.opset <= kMaxOpset, "ONNX export: opset ", options.opset,
        " is not supported (ds2rt writes opsets ", kMinOpset, " to ", kMaxOpset, ")");
  model.createNetwork();  // every weight checked against the configuration, as for ds2rt's own engine

  onnx::ModelProto proto;
  proto.set_ir_version(onnx::IR_VERSION);
  proto.set_producer_name("ds2rt");
  proto.set_producer_version("0.1.0");
  proto.set_domain("ds2rt");
  proto.set_model_version(1);
  proto.set_doc_string("DeepSpeech2 (deepspeech.pytorch) exported by ds2rt");
  onnx::OperatorSetIdProto& opset = *proto.add_opset_import();
  opset.set_domain("");
  opset.set_version(options.opset);
  onnx::StringStringEntryProto& config = *proto.add_metadata_props();
  config.set_key("ds2rt.config");
  config.set_value(model.config().toJson());

  onnx::GraphProto& graph = *proto.mutable_graph();
  graph.set_name("deepspeech2");
  DeepSpeech2Exporter(graph, model, options).build();

  const size_t bytes = proto.ByteSizeLong();
  check(bytes <= static_cast<size_t>(INT_MAX), "ONNX export to '", path, "': the model needs ", bytes,
        " bytes, over protobuf's 2 GiB limit for one ONNX file");
  std::string serialized;
  check(proto.SerializeToString(&serialized), "ONNX export to '", path, "': protobuf could not serialise the model");
  proto.Clear();  // the weights are in `serialized` now; free the second copy before writing
  try {
    detail::writeFileAtomically(path, {reinterpret_cast<const uint8_t*>(serialized.data()), serialized.size()});
  } catch (const Error& e) {
    fail("ONNX export to '", path, "': ", e.what());
  }
}

}  // namespace ds2rt
