// importPaddleSpeech: PaddleSpeech's DeepSpeech2 (paddlespeech/s2t/models/ds2/deepspeech2.py, offline
// and online alike) from its .pdparams, translated layer by layer:
//
//   input B x T x D -> unsqueeze -> Conv2D(1, C, 3, stride 2) ReLU -> Conv2D(C, C, 3, stride 2) ReLU
//   (on B x C x T x D: ds2rt's N x C x F x T has the kernel axes the other way round)
//   -> transpose/reshape to B x T' x (C * D'), channel-major   lengths ((L - 1) // 2 - 1) // 2
//   -> per layer: nn.LSTM / nn.GRU (one layer; forward, or bidirectional with the directions
//      concatenated) then nn.LayerNorm (epsilon 1e-5)
//   -> fc_layers_list: Linear + ReLU each -> decoder.ctc_lo Linear -> softmax.
//
// Parameter names (under an optional prefix): encoder.conv.conv.{0,2}.{weight,bias},
// encoder.rnn.{i}.{weight_ih,weight_hh,bias_ih,bias_hh}_l0[_reverse] (Paddle also lists the same
// tensors as encoder.rnn.{i}.0.cell[_fw|_bw].*), encoder.layernorm_list.{i}.{weight,bias},
// encoder.fc_layers_list.{j}.{weight,bias}, decoder.ctc_lo.{weight,bias}. Paddle's Linear stores
// its weight in x out (transposed against PyTorch); its LSTM (i, f, g, o) and GRU (r, z, c with the
// hidden bias inside the reset product) use PyTorch's gate layout (checked by the fixtures).
// encoder.conv.out.* (a Linear of the subsampling module that DeepSpeech2 never calls) is skipped.
// Beside the file, a model.yaml (feat_dim) and a vocab.txt (labels) are read when present.
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>

#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "importers/paddle/pdparams.h"

namespace ds2rt {

namespace {

constexpr std::string_view kAnchor = "encoder.conv.conv.0.weight";
constexpr float kLayerNormEpsilon = 1e-5f;  // paddle.nn.LayerNorm's default, which PaddleSpeech keeps

struct Reader {
  const WeightStore& weights;
  std::string prefix;
  std::set<std::string> used;

  bool has(const std::string& name) const { return weights.contains(prefix + name); }
  const Shape& shape(const std::string& name) {
    check(has(name), weights.source(), ": missing parameter '", prefix + name,
          "' (not a PaddleSpeech DeepSpeech2 model, or a truncated one?)");
    return weights.get(prefix + name).shape();
  }
  HostTensor get(const std::string& name, const Shape& expected) {
    shape(name);
    used.insert(prefix + name);
    return weights.getFloat(prefix + name, expected);
  }
  int64_t dim(const std::string& name, size_t rank, size_t axis) {
    const Shape& s = shape(name);
    check(s.size() == rank, weights.source(), ": parameter '", prefix + name, "' has shape ", toString(s),
          ", expected rank ", rank);
    return s[axis];
  }
};

// [out, in, kT, kD] (Paddle, over B x C x T x D) -> [out, in, kD, kT] (ds2rt, over N x C x F x T).
HostTensor swapKernelAxes(const HostTensor& w) {
  const int64_t o = w.dim(0), i = w.dim(1), kt = w.dim(2), kd = w.dim(3);
  HostTensor out(DataType::kFloat32, {o, i, kd, kt});
  const float* src = w.data<float>();
  float* dst = out.mutableData<float>();
  for (int64_t a = 0; a < o * i; ++a)
    for (int64_t t = 0; t < kt; ++t)
      for (int64_t d = 0; d < kd; ++d) dst[(a * kd + d) * kt + t] = src[(a * kt + t) * kd + d];
  return out;
}

int countIndexed(const Reader& r, const std::string& stem, const std::string& leaf) {
  int n = 0;
  while (r.has(cat(stem, n, leaf))) ++n;
  return n;
}

// The names of one recurrent layer's direction: the flat cuDNN-style aliases, else the cells'.
struct RNNNames {
  std::string weight_ih, weight_hh, bias_ih, bias_hh;
};

RNNNames rnnNames(const Reader& r, int layer, int direction, bool bidirectional) {
  const std::string base = cat("encoder.rnn.", layer, ".");
  const std::string flat = direction == 1 ? "_l0_reverse" : "_l0";
  if (r.has(base + "weight_ih" + flat))
    return {base + "weight_ih" + flat, base + "weight_hh" + flat, base + "bias_ih" + flat, base + "bias_hh" + flat};
  const std::string cell = base + (bidirectional ? (direction == 1 ? "0.cell_bw." : "0.cell_fw.") : "0.cell.");
  return {cell + "weight_ih", cell + "weight_hh", cell + "bias_ih", cell + "bias_hh"};
}

// encoder.rnn.{i}.0.cell[_fw|_bw].* when the flat names of the same tensors were read.
bool isCellAlias(const Reader& r, const std::string& name) {
  const std::string rest = name.substr(std::min(name.size(), r.prefix.size()));
  if (!rest.starts_with("encoder.rnn.") || rest.find(".0.cell") == std::string::npos) return false;
  const std::string layer = rest.substr(0, rest.find(".0.cell"));  // encoder.rnn.{i}
  return r.has(layer + ".weight_ih_l0");
}

bool isBidirectional(const Reader& r, int layer) {
  const std::string base = cat("encoder.rnn.", layer, ".");
  return r.has(base + "weight_ih_l0_reverse") || r.has(base + "0.cell_bw.weight_ih");
}

// The feature bins D of the input: the weights fix only D' = ((D - 1) // 2 - 1) // 2 after the two
// convolutions, and every D with that D' gives the same output (the last bins are never read).
// PaddleSpeech's linear spectrogram has 161 bins; otherwise the smallest D that fits.
// A PaddleSpeech training config beside the parameters says the count (feat_dim).
int featureBins(int64_t reduced, std::optional<int64_t> configured, const std::string& config, std::string& detail) {
  const auto reduce = [](int64_t d) { return ((d - 1) / 2 - 1) / 2; };
  int64_t lowest = 4 * reduced + 3;
  while (lowest > 3 && reduce(lowest - 1) == reduced) --lowest;
  int64_t highest = lowest;
  while (reduce(highest + 1) == reduced) ++highest;
  if (configured) {
    check(lowest <= *configured && *configured <= highest, "'", config, "' says feat_dim ", *configured,
          ", but the model's weights take ", lowest, " to ", highest, " feature bins");
    detail = cat(*configured, " feature bins: feat_dim of '", config, "'");
    return static_cast<int>(*configured);
  }
  const int64_t chosen = lowest <= 161 && 161 <= highest ? 161 : lowest;
  detail = cat(chosen, " feature bins: the weights allow ", lowest, " to ", highest,
               " (each gives the same output; a model.yaml with feat_dim beside the file decides)");
  return static_cast<int>(chosen);
}

// The integer of a top-level "key: 123" line of a YAML file (PaddleSpeech's flat configs), if any.
std::optional<int64_t> yamlInteger(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  const std::regex line_re("^" + key + R"(:\s*(\d{1,9})\s*(#.*)?\r?$)");
  std::smatch match;
  for (std::string line; std::getline(in, line);)
    if (std::regex_match(line, match, line_re)) return std::stoll(match[1].str());
  return std::nullopt;
}

// model.yaml or <stem>.yaml beside the parameters.
std::optional<std::string> configBeside(const std::string& path) {
  const std::filesystem::path p(path);
  for (const auto& candidate : {p.parent_path() / "model.yaml", std::filesystem::path(p).replace_extension(".yaml")})
    if (std::filesystem::is_regular_file(candidate)) return candidate.string();
  return std::nullopt;
}

// vocab.txt beside the parameters, one token a line (PaddleSpeech's <blank> first, <space> for " ").
std::optional<std::vector<std::string>> vocabularyBeside(const std::string& path) {
  const std::filesystem::path file = std::filesystem::path(path).parent_path() / "vocab.txt";
  if (!std::filesystem::is_regular_file(file)) return std::nullopt;
  std::ifstream in(file);
  std::vector<std::string> tokens;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    tokens.push_back(line == "<space>" ? " " : line);
  }
  return tokens;
}

}  // namespace

ImportedNetwork importPaddleSpeech(const std::string& path, const ImportOptions& options) {
  std::vector<std::string> notes;
  const WeightStore weights = paddle::readPdparams(path, &notes);
  std::string prefix;
  for (const std::string& name : weights.names())
    if (name.ends_with(kAnchor)) {
      prefix = name.substr(0, name.size() - kAnchor.size());
      break;
    }
  check(weights.contains(prefix + std::string(kAnchor)), "'", path, "' is a Paddle parameter file without '", kAnchor,
        "': not a PaddleSpeech DeepSpeech2 model (ds2rt imports that architecture from .pdparams)");
  if (!prefix.empty()) notes.push_back(cat("parameter names under the prefix '", prefix, "'"));
  Reader r{weights, prefix, {}};

  // Convolutions.
  const int64_t channels = r.dim("encoder.conv.conv.0.weight", 4, 0);
  check(r.shape("encoder.conv.conv.0.weight") == Shape{channels, 1, 3, 3}, "'", path,
        "': encoder.conv.conv.0.weight has shape ", toString(r.shape("encoder.conv.conv.0.weight")),
        ", expected [channels, 1, 3, 3] (PaddleSpeech's Conv2dSubsampling4)");
  const int rnn_layers = countIndexed(r, "encoder.layernorm_list.", ".weight");
  check(rnn_layers > 0, "'", path, "': missing parameter '", prefix, "encoder.layernorm_list.0.weight'");
  const RNNNames first = rnnNames(r, 0, 0, isBidirectional(r, 0));
  const int64_t conv_features = r.dim(first.weight_ih, 2, 1);
  check(conv_features % channels == 0, "'", path, "': ", prefix + first.weight_ih, " takes ", conv_features,
        " inputs, not a multiple of the ", channels, " convolution channels");
  const std::optional<std::string> config = configBeside(path);
  std::string bins_detail;
  const int bins = featureBins(conv_features / channels, config ? yamlInteger(*config, "feat_dim") : std::nullopt,
                               config.value_or(""), bins_detail);
  notes.push_back(bins_detail);

  NetworkDefinition net;
  Tensor x = net.addImageInput("features", 1, bins);
  Tensor lengths = net.addLengthsInput("lengths");
  for (int i = 0; i < 2; ++i) {
    const std::string conv = cat("encoder.conv.conv.", 2 * i, ".");
    const int64_t in = i == 0 ? 1 : channels;
    ConvolutionDesc d{.out_channels = static_cast<int>(channels), .kernel = {3, 3}, .stride = {2, 2}};
    d.weight = swapKernelAxes(r.get(conv + "weight", {channels, in, 3, 3}));
    if (r.has(conv + "bias")) d.bias = r.get(conv + "bias", {channels});
    x = net.addConvolution(cat("conv", i), x, std::move(d));
    x = net.addActivation(cat("conv", i, ".relu"), x, {ActivationType::kRelu});
    lengths = net.addLengthsTransform(cat("conv", i, ".lengths"), lengths, {3, 2, 0, 1});
  }
  x = net.addReshapeToSequence("reshape", x);

  // Recurrent layers, each followed by its layer norm.
  const bool bidirectional = isBidirectional(r, 0);
  const int64_t hidden = r.dim(first.weight_hh, 2, 1);
  const int64_t gates = hidden > 0 ? r.dim(first.weight_hh, 2, 0) / hidden : 0;
  check(gates == 4 || gates == 3, "'", path, "': ", prefix + first.weight_hh, " has shape ",
        toString(r.shape(first.weight_hh)), ": neither an LSTM (4 gates) nor a GRU (3 gates)");
  const RNNCell cell = gates == 4 ? RNNCell::kLSTM : RNNCell::kGRU;
  const int dirs = bidirectional ? 2 : 1;
  int64_t features = conv_features;
  for (int l = 0; l < rnn_layers; ++l) {
    check(isBidirectional(r, l) == bidirectional, "'", path, "': recurrent layer ", l,
          " has another direction than layer 0");
    RNNDesc rnn{.cell = cell, .hidden_size = static_cast<int>(hidden), .num_layers = 1,
                .direction = bidirectional ? RNNDirection::kBidirectional : RNNDirection::kForward,
                .merge = DirectionMerge::kConcat};
    for (int d = 0; d < dirs; ++d) {
      const RNNNames n = rnnNames(r, l, d, bidirectional);
      const int64_t gh = gates * hidden;
      rnn.setWeights(0, d, GateLayout::kPyTorch, r.get(n.weight_ih, {gh, features}), r.get(n.weight_hh, {gh, hidden}),
                     r.has(n.bias_ih) ? r.get(n.bias_ih, {gh}) : HostTensor{},
                     r.has(n.bias_hh) ? r.get(n.bias_hh, {gh}) : HostTensor{});
    }
    x = net.addRNN(cat("rnn", l), x, lengths, std::move(rnn));
    features = hidden * dirs;
    const std::string norm = cat("encoder.layernorm_list.", l, ".");
    LayerNormDesc ln{r.get(norm + "weight", {features}), {}, kLayerNormEpsilon};
    if (r.has(norm + "bias")) ln.bias = r.get(norm + "bias", {features});
    x = net.addLayerNorm(cat("rnn", l, ".norm"), x, lengths, std::move(ln));
  }

  // Fully connected layers, then the CTC projection.
  const int fc_layers = countIndexed(r, "encoder.fc_layers_list.", ".weight");
  std::string fc_sizes;
  for (int j = 0; j < fc_layers; ++j) {
    const std::string fc = cat("encoder.fc_layers_list.", j, ".");
    const int64_t out = r.dim(fc + "weight", 2, 1);
    FullyConnectedDesc d{.out_features = static_cast<int>(out)};
    d.weight = transpose2d(r.get(fc + "weight", {features, out}));
    if (r.has(fc + "bias")) d.bias = r.get(fc + "bias", {out});
    x = net.addFullyConnected(cat("fc", j), x, std::move(d));
    x = net.addActivation(cat("fc", j, ".relu"), x, {ActivationType::kRelu});
    fc_sizes += cat(j ? ", " : "", out);
    features = out;
  }
  const int64_t vocab = r.dim("decoder.ctc_lo.weight", 2, 1);
  FullyConnectedDesc ctc{.out_features = static_cast<int>(vocab)};
  ctc.weight = transpose2d(r.get("decoder.ctc_lo.weight", {features, vocab}));
  if (r.has("decoder.ctc_lo.bias")) ctc.bias = r.get("decoder.ctc_lo.bias", {vocab});
  x = net.addFullyConnected("ctc_lo", x, std::move(ctc));
  x = net.addSoftmax("softmax", x);
  x = net.addSequenceMask("softmax.mask", x, lengths);  // frames past each length are zeros, as ds2rt's outputs
  net.markOutput(net.addBatchMajor("probs", x));
  net.markOutput(lengths, "output_lengths");

  std::string skipped;
  for (const std::string& name : weights.names())
    if (!r.used.contains(name) && !isCellAlias(r, name)) skipped += cat(skipped.empty() ? "" : ", ", name);
  if (!skipped.empty()) notes.push_back("skipped (not used at inference): " + skipped);

  ImportedNetwork out;
  out.network = std::move(net);
  out.format = "PaddleSpeech DeepSpeech2 (.pdparams)";
  out.architecture = cat(toString(cell), ", ", rnn_layers, " layers of ", hidden, ", ",
                         bidirectional ? "bidirectional (offline)" : "forward (online)", ", layer norm, ",
                         fc_layers ? cat(fc_layers, " fc layers (", fc_sizes, ")") : std::string("no fc layers"), ", ",
                         vocab, " labels, ", bins, " feature bins");
  // The file fixes the architecture; options may only confirm it.
  const auto confirm = [&](bool given, bool agrees, const std::string& what) {
    check(!given || agrees, "'", path, "': the options ask for ", what, ", but the file holds ", out.architecture);
  };
  const std::string rnn_type = cell == RNNCell::kGRU ? "gru" : "lstm";
  confirm(options.rnn_type.has_value(), options.rnn_type == rnn_type, cat("rnn type ", options.rnn_type.value_or("")));
  confirm(options.hidden_size.has_value(), options.hidden_size == hidden, cat("hidden size ", options.hidden_size.value_or(0)));
  confirm(options.hidden_layers.has_value(), options.hidden_layers == rnn_layers,
          cat(options.hidden_layers.value_or(0), " recurrent layers"));
  confirm(options.bidirectional.has_value(), options.bidirectional == bidirectional,
          options.bidirectional.value_or(false) ? "a bidirectional model" : "a unidirectional model");
  confirm(options.lookahead_context.has_value(), false, "a lookahead (PaddleSpeech's DeepSpeech2 has none)");
  if (options.labels) {
    check(static_cast<int64_t>(options.labels->size()) == vocab, "'", path, "': ", options.labels->size(),
          " labels given, the model has ", vocab, " outputs");
    out.labels = *options.labels;
  } else if (auto vocabulary = vocabularyBeside(path)) {
    if (static_cast<int64_t>(vocabulary->size()) == vocab) {
      out.labels = std::move(*vocabulary);
      out.notes.push_back(cat(vocab, " labels from vocab.txt beside the parameters"));
    } else {
      out.notes.push_back(cat("vocab.txt beside the parameters has ", vocabulary->size(), " tokens, the model ", vocab,
                              " outputs: labels left empty"));
    }
  }
  out.notes.insert(out.notes.begin(), notes.begin(), notes.end());
  return out;
}

}  // namespace ds2rt
