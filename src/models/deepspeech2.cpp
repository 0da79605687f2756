// deepspeech.pytorch's DeepSpeech model, layer by layer, under its own state_dict names.
#include "ds2rt/deepspeech2.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <nlohmann/json.hpp>
#include <set>

#include "core/file.h"
#include "ds2rt/error.h"
#include "models/deepspeech2_convolutions.h"

namespace ds2rt {

using nlohmann::json;

namespace {

constexpr const char* kConfigKey = "ds2rt.config";
constexpr const char* kLabelsKey = "ds2rt.labels";
constexpr const char* kSpectKey = "ds2rt.spect_cfg";

json spectJson(const SpectrogramConfig& s) {
  return {{"sample_rate", s.sample_rate}, {"window_size", s.window_size}, {"window_stride", s.window_stride},
          {"window", s.window}};
}

void readSpect(const json& s, SpectrogramConfig& out) {
  out.sample_rate = s.value("sample_rate", out.sample_rate);
  out.window_size = s.value("window_size", out.window_size);
  out.window_stride = s.value("window_stride", out.window_stride);
  out.window = s.value("window", out.window);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

int SpectrogramConfig::fftSize() const { return static_cast<int>(std::floor(sample_rate * window_size)); }
int SpectrogramConfig::frequencyBins() const { return fftSize() / 2 + 1; }

RNNCell DeepSpeech2Config::cell() const {
  const std::string t = lower(rnn_type);
  if (t == "lstm") return RNNCell::kLSTM;
  if (t == "gru") return RNNCell::kGRU;
  if (t == "rnn") return RNNCell::kRNNTanh;
  fail("unknown rnn_type '", rnn_type, "' (expected lstm, gru or rnn)");
}

int DeepSpeech2Config::rnnInputSize() const {
  // The two convolutions' frequency extents, as deepspeech.pytorch computes rnn_input_size.
  int bins = spect.frequencyBins();
  bins = (bins + 2 * 20 - 41) / 2 + 1;
  bins = (bins + 2 * 10 - 21) / 2 + 1;
  return bins * 32;
}

void DeepSpeech2Config::validate() const {
  cell();
  check(hidden_size > 0, "model config: hidden_size must be positive, got ", hidden_size);
  check(hidden_layers > 0, "model config: hidden_layers must be positive, got ", hidden_layers);
  check(bidirectional || lookahead_context > 0, "model config: a unidirectional model needs lookahead_context > 0");
  check(!labels.empty(), "model config: labels are missing");
  check(spect.sample_rate > 0 && spect.window_size > 0 && spect.window_stride > 0,
        "model config: spect_cfg needs positive sample_rate, window_size and window_stride");
  check(spect.frequencyBins() >= 41, "model config: ", spect.frequencyBins(),
        " frequency bins are too few for the DeepSpeech2 convolutions");
}

DeepSpeech2Config DeepSpeech2Config::fromJson(const std::string& text, const std::string& source) {
  DeepSpeech2Config c;
  try {
    const json j = json::parse(text);
    const json& m = j.at("model_cfg");
    c.rnn_type = m.at("rnn_type");
    c.hidden_size = m.at("hidden_size");
    c.hidden_layers = m.at("hidden_layers");
    c.bidirectional = j.value("bidirectional", !m.contains("lookahead_context"));
    c.lookahead_context = m.value("lookahead_context", c.bidirectional ? 0 : 20);
    const json& labels = j.at("labels");
    if (labels.is_string()) {
      for (char ch : labels.get<std::string>()) c.labels.emplace_back(1, ch);
    } else {
      c.labels = labels.get<std::vector<std::string>>();
    }
    if (j.contains("spect_cfg")) readSpect(j["spect_cfg"], c.spect);
  } catch (const json::exception& e) {
    fail(source, ": not a valid DeepSpeech2 config: ", e.what());
  }
  try {
    c.validate();
  } catch (const Error& e) {
    fail(source, ": ", e.what());
  }
  return c;
}

std::string DeepSpeech2Config::toJson() const {
  json m = {{"rnn_type", lower(rnn_type)}, {"hidden_size", hidden_size}, {"hidden_layers", hidden_layers}};
  if (!bidirectional) m["lookahead_context"] = lookahead_context;
  const json j = {{"format", "ds2rt.deepspeech2"},
                  {"version", 1},
                  {"model_cfg", m},
                  {"bidirectional", bidirectional},
                  {"labels", labels},
                  {"spect_cfg", spectJson(spect)}};
  return j.dump();
}

void setTranscriptionMetadata(NetworkDefinition& network, const std::vector<std::string>& labels,
                              const SpectrogramConfig* spect) {
  network.setMetadata(kLabelsKey, json(labels).dump());
  if (spect != nullptr) network.setMetadata(kSpectKey, spectJson(*spect).dump());
}

std::optional<DeepSpeech2Config> transcriptionConfigFromMetadata(const std::map<std::string, std::string>& metadata,
                                                                const std::string& source) {
  const auto labels = metadata.find(kLabelsKey);
  if (labels == metadata.end()) return std::nullopt;
  DeepSpeech2Config c;
  try {
    c.labels = json::parse(labels->second).get<std::vector<std::string>>();
    if (const auto spect = metadata.find(kSpectKey); spect != metadata.end()) readSpect(json::parse(spect->second), c.spect);
  } catch (const json::exception& e) {
    fail(source, ": malformed ", kLabelsKey, " / ", kSpectKey, " metadata: ", e.what());
  }
  check(!c.labels.empty(), source, ": the ", kLabelsKey, " metadata lists no labels");
  check(c.spect.sample_rate > 0 && c.spect.window_size > 0 && c.spect.window_stride > 0, source, ": the ", kSpectKey,
        " metadata needs positive sample_rate, window_size and window_stride");
  return c;
}

DeepSpeech2Model::DeepSpeech2Model(DeepSpeech2Config config, WeightStore weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  config_.validate();
}

DeepSpeech2Model DeepSpeech2Model::load(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  if (p.extension() == ".json") {
    const std::string text = detail::readTextFile(path);
    DeepSpeech2Config config = DeepSpeech2Config::fromJson(text, path);
    fs::path weights = p;
    weights.replace_extension(".safetensors");
    try {
      if (const json j = json::parse(text); j.contains("weights"))
        weights = p.parent_path() / j["weights"].get<std::string>();
    } catch (const json::exception& e) {
      fail(path, ": ", e.what());
    }
    return DeepSpeech2Model(std::move(config), WeightStore::load(weights.string()));
  }
  WeightStore store = WeightStore::load(path);
  const auto it = store.metadata().find(kConfigKey);
  check(it != store.metadata().end(), "'", path, "' has no '", kConfigKey,
        "' metadata: it holds weights only; give the model's JSON config (naming these weights) instead");
  DeepSpeech2Config config = DeepSpeech2Config::fromJson(it->second, path);
  return DeepSpeech2Model(std::move(config), std::move(store));
}

void DeepSpeech2Model::save(const std::string& path) const {
  WeightStore out = weights_;
  out.metadata()[kConfigKey] = config_.toJson();
  out.save(path);
}

DeepSpeech2Model DeepSpeech2Model::withRandomWeights(DeepSpeech2Config config, uint32_t seed) {
  config.validate();
  std::mt19937 rng(seed);
  WeightStore store;
  const auto uniform = [&](const std::string& name, Shape shape, float bound) {
    std::uniform_real_distribution<float> dist(-bound, bound);
    std::vector<float> v(static_cast<size_t>(numElements(shape)));
    for (float& x : v) x = dist(rng);
    store.set(name, HostTensor::fromFloats(std::move(shape), std::move(v)));
  };
  const auto batchNorm = [&](const std::string& prefix, int64_t c) {
    std::uniform_real_distribution<float> positive(0.5f, 1.5f);
    std::normal_distribution<float> small(0.0f, 0.1f);
    std::vector<float> scale(c), bias(c), mean(c), var(c);
    for (int64_t i = 0; i < c; ++i) scale[i] = positive(rng), bias[i] = small(rng), mean[i] = small(rng), var[i] = positive(rng);
    store.set(prefix + ".weight", HostTensor::fromFloats({c}, scale));
    store.set(prefix + ".bias", HostTensor::fromFloats({c}, bias));
    store.set(prefix + ".running_mean", HostTensor::fromFloats({c}, mean));
    store.set(prefix + ".running_var", HostTensor::fromFloats({c}, var));
  };
  uniform("conv.seq_module.0.weight", {32, 1, 41, 11}, 1.0f / std::sqrt(41.0f * 11));
  uniform("conv.seq_module.0.bias", {32}, 1.0f / std::sqrt(41.0f * 11));
  batchNorm("conv.seq_module.1", 32);
  uniform("conv.seq_module.3.weight", {32, 32, 21, 11}, 1.0f / std::sqrt(32.0f * 21 * 11));
  uniform("conv.seq_module.3.bias", {32}, 1.0f / std::sqrt(32.0f * 21 * 11));
  batchNorm("conv.seq_module.4", 32);
  const int64_t h = config.hidden_size, gh = gateCount(config.cell()) * h;
  const float bound = 1.0f / std::sqrt(static_cast<float>(h));
  for (int i = 0; i < config.hidden_layers; ++i) {
    const std::string prefix = "rnns." + std::to_string(i);
    if (i > 0) batchNorm(prefix + ".batch_norm.module", h);
    for (const std::string suffix : {"_l0", "_l0_reverse"}) {
      if (!config.bidirectional && suffix != "_l0") continue;
      uniform(prefix + ".rnn.weight_ih" + suffix, {gh, i == 0 ? config.rnnInputSize() : h}, bound);
      uniform(prefix + ".rnn.weight_hh" + suffix, {gh, h}, bound);
      uniform(prefix + ".rnn.bias_ih" + suffix, {gh}, bound);
      uniform(prefix + ".rnn.bias_hh" + suffix, {gh}, bound);
    }
  }
  if (!config.bidirectional)
    uniform("lookahead.0.conv.weight", {h, 1, config.lookahead_context}, 1.0f / std::sqrt(static_cast<float>(config.lookahead_context)));
  batchNorm("fc.0.module.0", h);
  uniform("fc.0.module.1.weight", {static_cast<int64_t>(config.labels.size()), h}, bound);
  store.setSource("random weights");
  return DeepSpeech2Model(std::move(config), std::move(store));
}

namespace {

// Reads the weights a network needs and remembers which it read, to report strays.
class WeightReader {
 public:
  explicit WeightReader(const WeightStore& store) : store_(store) {}
  HostTensor operator()(const std::string& name, const Shape& shape) {
    used_.insert(name);
    return store_.getFloat(name, shape);
  }
  void checkAllUsed(const DeepSpeech2Config& c) const {
    for (const auto& name : store_.names()) {
      if (used_.count(name) || name.ends_with("num_batches_tracked")) continue;
      fail(store_.source(), ": tensor '", name, "' is not part of a ", c.rnn_type, " model with ", c.hidden_layers,
           " layers (", c.bidirectional ? "bidirectional" : "unidirectional",
           "): the config and the weights disagree");
    }
  }

 private:
  const WeightStore& store_;
  std::set<std::string> used_;
};

BatchNormDesc batchNorm(WeightReader& w, const std::string& prefix, int64_t channels) {
  return {w(prefix + ".weight", {channels}), w(prefix + ".bias", {channels}), w(prefix + ".running_mean", {channels}),
          w(prefix + ".running_var", {channels}), 1e-5f};
}

}  // namespace

NetworkDefinition DeepSpeech2Model::createNetwork(const DeepSpeech2NetworkOptions& options) const {
  const DeepSpeech2Config& c = config_;
  WeightReader w(weights_);
  NetworkDefinition net;
  net.setMetadata(kConfigKey, c.toJson());
  setTranscriptionMetadata(net, c.labels, &c.spect);
  const ActivationDesc hardtanh{ActivationType::kClip, 0.0f, 20.0f};

  Tensor x = net.addImageInput("features", 1, c.spect.frequencyBins());
  const Tensor lengths = net.addLengthsInput("lengths");
  // get_seq_lens: the time extent after each convolution; MaskConv masks every module with the final one.
  const Tensor conv0_lengths = net.addLengthsTransform("conv.seq_module.0.lengths", lengths, {11, 2, 5, 1});
  const Tensor out_lengths = net.addLengthsTransform("output_lengths", conv0_lengths, {11, 1, 5, 1});

  // deepspeech.pytorch's loader pads with zeros; padding the caller left may hold anything.
  x = net.addSequenceMask("input_mask", x, lengths);
  for (int i = 0; i < 2; ++i) {
    const models::DeepSpeech2Convolution& s = models::kDeepSpeech2Convolutions[i];
    const std::string conv = "conv.seq_module." + std::to_string(3 * i);
    const std::string bn = "conv.seq_module." + std::to_string(3 * i + 1);
    const std::string act = "conv.seq_module." + std::to_string(3 * i + 2);
    ConvolutionDesc desc{.out_channels = 32, .kernel = {s.kf, s.kt}, .stride = {s.sf, s.st}, .padding = {s.pf, s.pt},
                         .weight = w(conv + ".weight", {32, s.in, s.kf, s.kt}), .bias = w(conv + ".bias", {32})};
    x = net.addSequenceMask(conv + ".mask", net.addConvolution(conv, x, std::move(desc)), out_lengths);
    x = net.addSequenceMask(bn + ".mask", net.addBatchNorm(bn, x, batchNorm(w, bn, 32)), out_lengths);
    x = net.addSequenceMask(act + ".mask", net.addActivation(act, x, hardtanh), out_lengths);
  }
  x = net.addReshapeToSequence("reshape", x);

  const int64_t h = c.hidden_size, gh = static_cast<int64_t>(gateCount(c.cell())) * h;
  for (int i = 0; i < c.hidden_layers; ++i) {
    const std::string prefix = "rnns." + std::to_string(i);
    const int64_t in = i == 0 ? c.rnnInputSize() : h;
    if (i > 0) x = net.addBatchNorm(prefix + ".batch_norm", x, batchNorm(w, prefix + ".batch_norm.module", h));
    RNNDesc rnn{.cell = c.cell(), .hidden_size = c.hidden_size, .num_layers = 1,
                .direction = c.bidirectional ? RNNDirection::kBidirectional : RNNDirection::kForward,
                .merge = DirectionMerge::kSum, .linear_before_reset = true};
    for (int d = 0; d < rnn.directions(); ++d) {
      const std::string p = prefix + ".rnn.", s = d ? "_l0_reverse" : "_l0";
      rnn.setWeights(0, d, GateLayout::kPyTorch, w(p + "weight_ih" + s, {gh, in}), w(p + "weight_hh" + s, {gh, h}),
                     w(p + "bias_ih" + s, {gh}), w(p + "bias_hh" + s, {gh}));
    }
    x = net.addRNN(prefix + ".rnn", x, out_lengths, std::move(rnn));
  }
  if (!c.bidirectional) {
    x = net.addLookahead("lookahead.0", x, out_lengths,
                         {.weight = w("lookahead.0.conv.weight", {h, 1, c.lookahead_context})});
    x = net.addActivation("lookahead.1", x, hardtanh);
  }
  x = net.addBatchNorm("fc.0.module.0", x, batchNorm(w, "fc.0.module.0", h));
  const int classes = static_cast<int>(c.labels.size());
  x = net.addFullyConnected("fc.0.module.1", x, {.out_features = classes, .weight = w("fc.0.module.1.weight", {classes, h})});
  x = options.log_softmax ? net.addLogSoftmax("log_softmax", x) : net.addSoftmax("softmax", x);
  x = net.addBatchMajor("batch_major", x);
  x = net.addSequenceMask("output_mask", x, out_lengths);
  net.markOutput(x, options.log_softmax ? "log_probs" : "probs");
  net.markOutput(out_lengths);
  w.checkAllUsed(c);
  return net;
}

}  // namespace ds2rt
