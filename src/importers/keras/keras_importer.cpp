// A Keras model as a ds2rt network, layer by layer, with no transposes at run time:
// - Keras feeds N x T x F (x C); ds2rt's "features" are N x 1 x F x T, so Conv2D kernels
//   (kT, kF, in, out) become (out, in, kF, kT) and strides/padding swap their axes.
// - Keras's Reshape (T, F, C) -> (T, F*C) flattens channel-minor, ds2rt's reshape-to-sequence
//   channel-major (C*F): the next layer with weights takes its input rows permuted instead.
// - Without masking, Keras runs every layer over the padding of a batch; the faithful reference
//   for an utterance is Keras on that utterance alone. ds2rt zeroes each conv's input past the
//   utterance's length (what Keras's own zero padding would hold) and its recurrent layers stop at
//   the length, so each utterance of a batch gets the output Keras gives it alone.
// - TensorFlow's "same" padding puts (total / 2) before and the rest after, and along time the total
//   depends on each utterance's length when the stride is above 1: a SamePaddingShift layer before the
//   convolution reproduces it for every length.
#include <algorithm>
#include <map>
#include <numeric>
#include <optional>

#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "importers/keras/keras_file.h"
#include "importers/keras/model_config.h"

namespace ds2rt {

namespace keras {
namespace {

using nlohmann::json;

// What the current tensor is in Keras's terms.
enum class Kind {
  kFrames,    // Keras (T, F): the features input as it comes (ds2rt N x 1 x F x T)
  kImage,     // Keras (T, F, C)  (ds2rt N x C x F x T)
  kSequence,  // Keras (T, H)     (ds2rt T x N x H)
};

class Translator {
 public:
  Translator(const KerasFile& file, const ModelConfig& model, bool log_softmax)
      : file_(file), model_(model), log_softmax_(log_softmax) {}

  ImportedNetwork run(const ImportOptions& options) {
    for (const LayerConfig& layer : model_.layers) {
      try {
        add(layer);
      } catch (const nlohmann::json::exception& e) {
        fail(where(layer), "unexpected config: ", e.what());
      }
      std::string kind = layer.class_name;
      if (kind == "Bidirectional" || kind == "TimeDistributed") kind += cat("(", layer.config.at("layer").value("class_name", ""), ")");
      if (kind != "InputLayer" && kind != "Reshape" && kind.find("Dropout") == std::string::npos) ++counts_[kind];
    }
    finish();
    check(!options.labels || static_cast<int64_t>(options.labels->size()) == features(), "'", file_.source(), "': ",
          options.labels ? options.labels->size() : 0, " labels given, but the model outputs ", features(), " classes");
    ImportedNetwork out;
    if (options.labels) out.labels = *options.labels;
    out.format = file_.format();
    std::string summary;
    for (const auto& [kind, count] : counts_) summary += cat(summary.empty() ? "" : ", ", count, " ", kind);
    out.architecture = cat("Keras ", model_.class_name, model_.name.empty() ? "" : " '" + model_.name + "'", ": ",
                           summary, "; ", input_bins_, " bins -> ", features(), " outputs");
    out.network = std::move(net_);
    out.notes = std::move(notes_);
    if (output_name_ == "logits")
      out.notes.push_back("the model does not end with a softmax: its output is named 'logits', not 'probs'");
    if (options.rnn_type || options.hidden_size || options.hidden_layers || options.bidirectional ||
        options.lookahead_context || options.gate_layout || options.forget_bias)
      out.notes.push_back("architecture options are ignored for a Keras model: the file describes it");
    return out;
  }

 private:
  std::string where(const LayerConfig& layer) const {
    return cat("'", file_.source(), "': ", layer.class_name, " layer '", layer.name, "': ");
  }

  int64_t features() const { return net_.shape(x_).back(); }

  // Dropout and noise layers: identity at inference.
  static bool identity(const LayerConfig& l) {
    const std::string& c = l.class_name;
    return c.find("Dropout") != std::string::npos || c == "GaussianNoise" ||
           (c == "TimeDistributed" && l.config.at("layer").at("class_name") != "Dense");
  }

  void add(const LayerConfig& l) {
    const std::string& c = l.class_name;
    const json& cfg = l.config;
    if (!identity(l)) flushSoftmax();
    if (c == "InputLayer") return input(l);
    if (c == "Reshape") return reshape(l);
    if (c == "Conv2D") return conv(l);
    if (c == "BatchNormalization") return batchNorm(l);
    if (c == "Dense") return dense(l, cfg, file_.weights(l.name, l.archive_key));
    if (c == "TimeDistributed") {
      if (cfg.at("layer").at("class_name") == "Dense") return dense(l, cfg["layer"].at("config"), file_.weights(l.name, l.archive_key));
      return;  // TimeDistributed(Dropout)
    }
    if (c == "LSTM" || c == "GRU" || c == "SimpleRNN") return recurrent(l, c, cfg, false);
    if (c == "Bidirectional") return recurrent(l, cfg.at("layer").at("class_name"), cfg.at("layer").at("config"), true);
    if (c == "ReLU") {
      const float slope = cfg.value("negative_slope", 0.0f), threshold = cfg.value("threshold", 0.0f);
      check(slope == 0.0f && threshold == 0.0f, where(l), "negative_slope ", slope, " and threshold ", threshold,
            " are not supported (only 0)");
      if (cfg.contains("max_value") && !cfg["max_value"].is_null())
        return activation(l, l.name, ActivationDesc{ActivationType::kClip, 0.0f, cfg["max_value"].get<float>()});
      return activation(l, l.name, ActivationDesc{ActivationType::kRelu});
    }
    if (c == "Activation") return namedActivation(l, l.name, activationName(cfg.at("activation")));
    if (c == "Softmax") {
      const json axis = cfg.value("axis", json(-1));
      check(axis == json(-1) || axis == json::array({-1}), where(l), "softmax over axis ", axis.dump(),
            "; ds2rt's is over the last axis");
      return namedActivation(l, l.name, "softmax");
    }
  }

  void input(const LayerConfig& l) {
    const json& cfg = l.config;
    const json shape = cfg.contains("batch_shape") ? cfg["batch_shape"] : cfg.at("batch_input_shape");
    check(shape.is_array() && (shape.size() == 3 || shape.size() == 4), where(l), "input shape ", shape.dump(),
          " is not (batch, time, bins) or (batch, time, bins, 1)");
    check(shape[2].is_number_integer() && shape[2].get<int64_t>() > 0, where(l), "the bins axis of input shape ",
          shape.dump(), " must be fixed");
    check(shape.size() == 3 || shape[3] == 1, where(l), "input shape ", shape.dump(),
          ": ds2rt's features have one channel");
    input_bins_ = shape[2];
    x_ = net_.addImageInput("features", 1, static_cast<int>(input_bins_));
    lengths_ = net_.addLengthsInput("lengths");
    kind_ = shape.size() == 3 ? Kind::kFrames : Kind::kImage;
  }

  void reshape(const LayerConfig& l) {
    const json& target = l.config.at("target_shape");
    const auto fixed = [&](size_t i) { return target[i].is_number_integer() ? target[i].get<int64_t>() : -1; };
    const Shape s = net_.shape(x_);
    check(kind_ != Kind::kSequence, where(l), "reshaping a sequence (T, H) is not supported");
    const int64_t channels = s[1], bins = s[2];
    if (target.size() == 3 && fixed(1) == bins && fixed(2) == channels) {
      kind_ = Kind::kImage;  // (T, F) -> (T, F, 1), or no change
      return;
    }
    if (target.size() == 2 && fixed(1) == bins * channels) {
      x_ = net_.addReshapeToSequence(l.name, x_);
      kind_ = Kind::kSequence;
      permutation_.assign(static_cast<size_t>(bins * channels), 0);
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t f = 0; f < bins; ++f) permutation_[c * bins + f] = f * channels + c;
      if (channels == 1) permutation_.clear();
      return;
    }
    fail(where(l), "target shape ", target.dump(), " from Keras shape (T, ", bins, ", ", channels,
         ") is not one ds2rt maps: expected (-1, ", bins * channels, ") or (-1, ", bins, ", ", channels, ")");
  }

  // Along the fixed bins axis TensorFlow's "same" padding is known at import time.
  static std::pair<int, int> sameBinsPadding(int64_t bins, int kernel, int stride) {
    const int64_t out = (bins + stride - 1) / stride;
    const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - bins, 0);
    return {static_cast<int>(total / 2), static_cast<int>(total - total / 2)};
  }

  void conv(const LayerConfig& l) {
    const json& cfg = l.config;
    check(kind_ == Kind::kImage, where(l), "needs a 4-D input (T, F, C); add a Reshape((-1, F, 1)) before it");
    check(cfg.value("data_format", json("channels_last")).is_null() ||
              cfg.value("data_format", std::string("channels_last")) == "channels_last",
          where(l), "data_format ", cfg["data_format"].dump(), ": only channels_last is supported");
    check(cfg.value("groups", 1) == 1, where(l), "grouped convolutions are not supported");
    const std::string padding = cfg.value("padding", "valid");
    check(padding == "valid" || padding == "same", where(l), "padding '", padding, "' is not supported (valid, same)");
    const auto pair = [&](const char* key, int fallback) {
      const json v = cfg.value(key, json(fallback));
      return v.is_array() ? std::array<int, 2>{v.at(0).get<int>(), v.at(1).get<int>()}
                          : std::array<int, 2>{v.get<int>(), v.get<int>()};
    };
    const auto k = pair("kernel_size", 1), s = pair("strides", 1), d = pair("dilation_rate", 1);  // {time, bins}
    const int filters = cfg.at("filters");
    const bool use_bias = cfg.value("use_bias", true);
    const Shape in = net_.shape(x_);
    const int64_t channels = in[1], bins = in[2];
    const std::vector<HostTensor> w = file_.weights(l.name, l.archive_key);
    check(w.size() == (use_bias ? 2u : 1u), where(l), "expected ", use_bias ? 2 : 1, " weights (kernel",
          use_bias ? ", bias" : "", "), the file has ", w.size());
    const Shape kernel_shape{k[0], k[1], channels, filters};
    check(w[0].shape() == kernel_shape, where(l), "kernel has shape ", toString(w[0].shape()), ", expected ",
          toString(kernel_shape));
    // (kT, kF, in, out) -> (out, in, kF, kT)
    HostTensor weight(DataType::kFloat32, {filters, channels, k[1], k[0]});
    const float* src = w[0].data<float>();
    float* dst = weight.mutableData<float>();
    for (int t = 0; t < k[0]; ++t)
      for (int f = 0; f < k[1]; ++f)
        for (int64_t i = 0; i < channels; ++i)
          for (int o = 0; o < filters; ++o)
            dst[((o * channels + i) * k[1] + f) * k[0] + t] = src[((t * k[1] + f) * channels + i) * filters + o];
    ConvolutionDesc desc{.out_channels = filters, .kernel = {k[1], k[0]}, .stride = {s[1], s[0]},
                         .dilation = {d[1], d[0]}, .weight = weight};
    if (use_bias) {
      check(w[1].shape() == Shape{filters}, where(l), "bias has shape ", toString(w[1].shape()), ", expected [",
            filters, "]");
      desc.bias = w[1];
    }
    const int kt = d[0] * (k[0] - 1) + 1, kf = d[1] * (k[1] - 1) + 1;
    LengthsTransformDesc lengths{.kernel = k[0], .stride = s[0], .padding = 0, .dilation = d[0]};
    std::optional<SamePaddingShiftDesc> time_shift;
    if (padding == "same") {
      const auto [fb, fe] = sameBinsPadding(bins, kf, s[1]);
      // Along time TensorFlow's total depends on each utterance's length: the shift layer lines every
      // utterance up with the padding this convolution has for lengths that are multiples of the stride.
      const SamePaddingShiftDesc shift{.kernel = kt, .stride = s[0]};
      desc.padding = {fb, shift.beginPadding()};
      // After: enough for ceil(T / s) output frames of the T + maxShift() the shift layer gives.
      desc.padding_end = {fe, kt - 1 - shift.beginPadding() - shift.maxShift()};
      lengths = {.kernel = 1, .stride = s[0], .padding = 0, .dilation = 1};  // ceil(L / s)
      if (shift.maxShift() > 0) time_shift = shift;
    }
    // Keras zero-pads each utterance; the batch's padding may hold anything (or the last layer's output).
    // The shift layer zeroes it too.
    x_ = time_shift ? net_.addSamePaddingShift(l.name + ".same_padding", x_, lengths_, *time_shift)
                    : net_.addSequenceMask(l.name + ".input_mask", x_, lengths_);
    x_ = net_.addConvolution(l.name, x_, std::move(desc));
    if (lengths.kernel != 1 || lengths.stride != 1 || lengths.dilation != 1)
      lengths_ = net_.addLengthsTransform(l.name + ".lengths", lengths_, lengths);
    namedActivation(l, l.name + ".activation", activationName(cfg.value("activation", json("linear"))));
  }

  void toSequence(const LayerConfig& l) {
    if (kind_ == Kind::kSequence) return;
    check(kind_ == Kind::kFrames, where(l), "needs a sequence (T, H), not a 4-D tensor; add a Reshape((-1, F*C))");
    x_ = net_.addReshapeToSequence(l.name + ".to_sequence", x_);
    kind_ = Kind::kSequence;
  }

  // Reorders a per-feature vector (or the rows of an in x out matrix) to the ds2rt feature order.
  HostTensor permuted(const HostTensor& t) const {
    if (permutation_.empty()) return t;
    const int64_t rows = t.dim(0), cols = t.size() / rows;
    HostTensor out(DataType::kFloat32, t.shape());
    for (int64_t j = 0; j < rows; ++j)
      std::copy_n(t.data<float>() + permutation_[j] * cols, cols, out.mutableData<float>() + j * cols);
    return out;
  }

  void batchNorm(const LayerConfig& l) {
    const json& cfg = l.config;
    if (kind_ == Kind::kFrames) toSequence(l);
    const int rank = kind_ == Kind::kImage ? 4 : 3;
    json axis = cfg.value("axis", json(-1));
    if (axis.is_array() && axis.size() == 1) axis = axis[0];
    check(axis == -1 || axis == rank - 1, where(l), "normalises axis ", axis.dump(),
          "; ds2rt normalises the last (channel) axis only");
    const bool scale = cfg.value("scale", true), center = cfg.value("center", true);
    const int64_t channels = kind_ == Kind::kImage ? net_.shape(x_)[1] : features();
    const std::vector<HostTensor> w = file_.weights(l.name, l.archive_key);
    check(w.size() == 2u + scale + center, where(l), "expected ", 2 + scale + center, " weights, the file has ", w.size());
    for (const HostTensor& t : w)
      check(t.shape() == Shape{channels}, where(l), "a weight has shape ", toString(t.shape()), ", expected [",
            channels, "]");
    size_t i = 0;
    BatchNormDesc desc;
    desc.scale = scale ? w[i++] : HostTensor::fromFloats({channels}, std::vector<float>(channels, 1.0f));
    desc.bias = center ? w[i++] : HostTensor(DataType::kFloat32, {channels});
    desc.mean = w[i++];
    desc.variance = w[i++];
    if (kind_ == Kind::kSequence)
      for (HostTensor* t : {&desc.scale, &desc.bias, &desc.mean, &desc.variance}) *t = permuted(*t);
    desc.epsilon = cfg.value("epsilon", 1e-3f);
    x_ = net_.addBatchNorm(l.name, x_, std::move(desc));
  }

  void activation(const LayerConfig&, const std::string& name, ActivationDesc desc) {
    x_ = net_.addActivation(name, x_, desc);
  }

  void namedActivation(const LayerConfig& l, const std::string& name, const std::string& type) {
    if (type == "linear") return;
    if (type == "softmax") {
      if (kind_ == Kind::kFrames) toSequence(l);
      check(kind_ == Kind::kSequence, where(l), "softmax over a 4-D tensor is not supported");
      flushSoftmax();
      pending_softmax_ = name;  // added by the next layer, or by finish() (as log-softmax if asked)
      return;
    }
    if (type == "relu") return activation(l, name, {ActivationType::kRelu});
    if (type == "tanh") return activation(l, name, {ActivationType::kTanh});
    if (type == "sigmoid") return activation(l, name, {ActivationType::kSigmoid});
    fail(where(l), "activation '", type, "' is not supported (linear, relu, tanh, sigmoid, softmax)");
  }

  void dense(const LayerConfig& l, const json& cfg, const std::vector<HostTensor>& w) {
    toSequence(l);
    const int units = cfg.at("units");
    const bool use_bias = cfg.value("use_bias", true);
    check(w.size() == (use_bias ? 2u : 1u), where(l), "expected ", use_bias ? 2 : 1, " weights, the file has ", w.size());
    check(w[0].shape() == Shape{features(), units}, where(l), "kernel has shape ", toString(w[0].shape()),
          ", expected ", toString(Shape{features(), units}));
    FullyConnectedDesc desc{.out_features = units, .weight = transpose2d(permuted(w[0]))};
    if (use_bias) {
      check(w[1].shape() == Shape{units}, where(l), "bias has shape ", toString(w[1].shape()), ", expected [", units, "]");
      desc.bias = w[1];
    }
    x_ = net_.addFullyConnected(l.name, x_, std::move(desc));
    permutation_.clear();
    namedActivation(l, l.name + ".activation", activationName(cfg.value("activation", json("linear"))));
  }

  void recurrent(const LayerConfig& l, const std::string& type, const json& cfg, bool bidirectional) {
    toSequence(l);
    RNNDesc desc{.hidden_size = cfg.at("units").get<int>()};
    const std::string act = activationName(cfg.value("activation", json("tanh")));
    if (type == "SimpleRNN") {
      check(act == "tanh" || act == "relu", where(l), "activation '", act, "' is not supported (tanh, relu)");
      desc.cell = act == "tanh" ? RNNCell::kRNNTanh : RNNCell::kRNNRelu;
    } else {
      const std::string rec = activationName(cfg.value("recurrent_activation", json("sigmoid")));
      check(act == "tanh" && rec == "sigmoid", where(l), "activations '", act, "'/'", rec,
            "' are not supported (only tanh with recurrent sigmoid)");
      desc.cell = type == "LSTM" ? RNNCell::kLSTM : RNNCell::kGRU;
    }
    check(cfg.value("return_sequences", false), where(l),
          "return_sequences is false: the layer gives one vector per utterance, not a sequence ds2rt can decode");
    check(!cfg.value("stateful", false), where(l), "stateful layers are not supported");
    check(!cfg.value("time_major", false), where(l), "time_major layers are not supported");
    const bool reset_after = cfg.value("reset_after", true);
    if (desc.cell == RNNCell::kGRU) desc.linear_before_reset = reset_after;
    const bool backwards = cfg.value("go_backwards", false);
    if (bidirectional) {
      const std::string merge = l.config.value("merge_mode", json("concat")).is_null()
                                    ? "none" : l.config.value("merge_mode", "concat");
      check(merge == "concat" || merge == "sum", where(l), "merge_mode '", merge, "' is not supported (concat, sum)");
      check(!backwards, where(l), "a Bidirectional layer whose forward layer goes backwards is not supported");
      if (l.config.contains("backward_layer")) {
        const json& b = l.config["backward_layer"].at("config");
        for (const char* key : {"units", "activation", "recurrent_activation", "use_bias", "reset_after"})
          check(b.value(key, json()) == cfg.value(key, json()), where(l), "the backward layer's ", key,
                " differs from the forward layer's; ds2rt needs both directions alike");
      }
      desc.direction = RNNDirection::kBidirectional;
      desc.merge = merge == "sum" ? DirectionMerge::kSum : DirectionMerge::kConcat;
    } else {
      // Keras returns a go_backwards layer's outputs in reversed time order, per utterance.
      check(!backwards, where(l), "go_backwards outside Bidirectional returns the sequence reversed in time; ds2rt "
                                  "has no per-utterance time reversal (wrap the layer in Bidirectional instead)");
      desc.direction = RNNDirection::kForward;
    }
    for (int dir = 0; dir < desc.directions(); ++dir)
      setDirection(l, desc, dir, cfg.value("use_bias", true),
                   file_.weights(l.name, l.archive_key, bidirectional ? (dir ? "backward" : "forward") : ""));
    x_ = net_.addRNN(l.name, x_, lengths_, std::move(desc));
    permutation_.clear();
  }

  void setDirection(const LayerConfig& l, RNNDesc& desc, int dir, bool use_bias, const std::vector<HostTensor>& w) {
    const std::string what = where(l) + (desc.directions() == 2 ? (dir ? "backward layer: " : "forward layer: ") : "");
    const int64_t h = desc.hidden_size, gh = gateCount(desc.cell) * h, in = features();
    check(w.size() == (use_bias ? 3u : 2u), what, "expected ", use_bias ? 3 : 2,
          " weights (kernel, recurrent_kernel", use_bias ? ", bias" : "", "), the file has ", w.size());
    check(w[0].shape() == Shape{in, gh}, what, "kernel has shape ", toString(w[0].shape()), ", expected ",
          toString(Shape{in, gh}));
    check(w[1].shape() == Shape{h, gh}, what, "recurrent_kernel has shape ", toString(w[1].shape()), ", expected ",
          toString(Shape{h, gh}));
    HostTensor input_bias, recurrent_bias;
    if (use_bias) {
      // GRU with reset_after keeps the input and the recurrent bias apart: (2, 3H).
      const bool two = desc.cell == RNNCell::kGRU && desc.linear_before_reset;
      const Shape expected = two ? Shape{2, gh} : Shape{gh};
      check(w[2].shape() == expected, what, "bias has shape ", toString(w[2].shape()), ", expected ", toString(expected));
      if (two) {
        input_bias = HostTensor::fromFloats({gh}, {w[2].data<float>(), w[2].data<float>() + gh});
        recurrent_bias = HostTensor::fromFloats({gh}, {w[2].data<float>() + gh, w[2].data<float>() + 2 * gh});
      } else {
        input_bias = w[2];
      }
    }
    desc.setWeights(0, dir, GateLayout::kKeras, transpose2d(permuted(w[0])), transpose2d(w[1]), input_bias,
                    recurrent_bias);
  }

  void flushSoftmax() {
    if (pending_softmax_.empty()) return;
    x_ = net_.addSoftmax(pending_softmax_, x_);
    pending_softmax_.clear();
  }

  void finish() {
    check(x_.valid(), "'", file_.source(), "': the model has no layers");
    check(kind_ != Kind::kImage, "'", file_.source(), "': the model ends on a 4-D tensor (T, F, C); ds2rt needs a "
                                 "sequence of class scores (T, classes)");
    check(permutation_.empty(), "'", file_.source(), "': the model ends right after a Reshape; add the output layer");
    if (kind_ == Kind::kFrames) x_ = net_.addReshapeToSequence("to_sequence", x_);
    output_name_ = "logits";
    if (!pending_softmax_.empty()) {
      x_ = log_softmax_ ? net_.addLogSoftmax(pending_softmax_, x_) : net_.addSoftmax(pending_softmax_, x_);
      output_name_ = log_softmax_ ? "log_probs" : "probs";
    }
    x_ = net_.addBatchMajor("batch_major", x_);
    x_ = net_.addSequenceMask("output_mask", x_, lengths_);
    net_.markOutput(x_, output_name_);
    if (net_.name(lengths_) == "lengths") lengths_ = net_.addLengthsTransform("output_lengths", lengths_, {});
    net_.markOutput(lengths_, "output_lengths");
  }

  const KerasFile& file_;
  const ModelConfig& model_;
  const bool log_softmax_;  // a final softmax becomes a log-softmax
  NetworkDefinition net_;
  Tensor x_, lengths_;
  Kind kind_ = Kind::kFrames;
  int64_t input_bins_ = 0;
  // Keras feature index of each ds2rt feature of the current sequence (empty: the same order).
  std::vector<int64_t> permutation_;
  std::string pending_softmax_;  // a softmax layer not added yet: the last one may become a log-softmax
  std::string output_name_;
  std::map<std::string, int> counts_;
  std::vector<std::string> notes_;
};

}  // namespace
}  // namespace keras

ImportedNetwork importKeras(const std::string& path, const ImportOptions& options,
                            const DeepSpeech2NetworkOptions& network_options) {
  const keras::KerasFile file = keras::KerasFile::open(path);
  const keras::ModelConfig model = keras::parseModelConfig(file.modelConfig(), path);
  return keras::Translator(file, model, network_options.log_softmax).run(options);
}

}  // namespace ds2rt
