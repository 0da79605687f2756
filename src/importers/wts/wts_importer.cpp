// importWts: a .wts holding deepspeech.pytorch state_dict names -> shapes rebuilt from the element
// counts -> the PyTorch importer's architecture inference -> a DeepSpeech2Model.
//
// Shape reconstruction (a .wts stores only counts). With G gates and hidden size H:
//   rnns.N.rnn.bias_hh_l0 holds G*H values and rnns.N.rnn.weight_hh_l0 G*H*H, so
//   H = count(weight_hh) / count(bias_hh) and G = count(bias_hh) / H (4 LSTM, 3 GRU, 1 RNN);
//   weight_ih_l0 is [G*H, count / (G*H)]; the _reverse tensors likewise.
//   conv.seq_module.{0,3}.weight are deepspeech.pytorch's fixed [32,1,41,11] and [32,32,21,11];
//   lookahead.0.conv.weight is [H, 1, count / H] and fc.0.module.1.weight [count / H, H] with H
//   from rnns.0; num_batches_tracked (count 1) is a scalar; everything else (biases, batch-norm
//   vectors) is 1-D. The shapes then go through the PyTorch importer's inferFromShapes, so a .wts
//   and a state_dict of the same model give the same configuration.
#include <regex>

#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "importers/config_evidence.h"
#include "importers/pytorch/architecture.h"
#include "importers/wts/wts.h"

namespace ds2rt {

namespace {

constexpr std::string_view kAnchor = "conv.seq_module.0.weight";
constexpr const char* kNetworkPrefixes[] = {"conv.", "rnns.", "lookahead.", "fc."};

bool inNetwork(std::string_view name) {
  for (const char* p : kNetworkPrefixes)
    if (name.starts_with(p)) return true;
  return false;
}

HostTensor transposed(const float* data, int64_t rows, int64_t cols, int64_t row_stride) {
  HostTensor out(DataType::kFloat32, {cols, rows});
  float* o = out.mutableData<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) o[c * rows + r] = data[r * row_stride + c];
  return out;
}

}  // namespace

namespace wts {

std::map<std::string, Shape> reconstructShapes(const std::map<std::string, int64_t>& counts, const std::string& source) {
  std::map<std::string, Shape> shapes;
  const auto countOf = [&](const std::string& name) -> std::optional<int64_t> {
    const auto it = counts.find(name);
    return it == counts.end() ? std::nullopt : std::optional(it->second);
  };
  const std::regex hh(R"(rnns\.(\d+)\.rnn\.weight_hh_l0(_reverse)?)");
  int64_t hidden0 = 0;
  for (const auto& [name, count] : counts) {
    if (name.ends_with("num_batches_tracked") && count == 1) {
      shapes[name] = {};
    } else if (name == "conv.seq_module.0.weight" || name == "conv.seq_module.3.weight") {
      const Shape s = name == "conv.seq_module.0.weight" ? Shape{32, 1, 41, 11} : Shape{32, 32, 21, 11};
      check(count == numElements(s), "'", source, "': tensor '", name, "' holds ", count,
            " values; deepspeech.pytorch's convolution has ", toString(s), " = ", numElements(s));
      shapes[name] = s;
    } else {
      shapes[name] = {count};
    }
  }
  for (const auto& [name, count] : counts) {
    std::smatch m;
    if (!std::regex_match(name, m, hh)) continue;
    const std::string suffix = "_l0" + m[2].str(), prefix = "rnns." + m[1].str() + ".rnn.";
    const auto gh = countOf(prefix + "bias_hh" + suffix);
    check(gh && *gh > 0, "'", source, "': tensor '", name, "' has no '", prefix, "bias_hh", suffix,
          "', whose count (G*H) the hidden size is inferred from");
    const int64_t h = count / *gh;
    check(h > 0 && h * *gh == count && *gh % h == 0, "'", source, "': '", name, "' holds ", count, " values and '",
          prefix, "bias_hh", suffix, "' ", *gh, ": not G*H*H and G*H for a whole gate count G");
    if (m[1].str() == "0" && m[2].str().empty()) hidden0 = h;
    shapes[name] = {*gh, h};
    if (const auto ih = countOf(prefix + "weight_ih" + suffix)) {
      check(*ih % *gh == 0, "'", source, "': '", prefix, "weight_ih", suffix, "' holds ", *ih,
            " values, not a multiple of G*H = ", *gh);
      shapes[prefix + "weight_ih" + suffix] = {*gh, *ih / *gh};
    }
  }
  if (hidden0 > 0) {
    for (const char* name : {"lookahead.0.conv.weight", "fc.0.module.1.weight"}) {
      const auto c = countOf(name);
      if (!c) continue;
      check(*c % hidden0 == 0, "'", source, "': '", name, "' holds ", *c, " values, not a multiple of the hidden size ",
            hidden0);
      shapes[name] = std::string_view(name).starts_with("lookahead") ? Shape{hidden0, 1, *c / hidden0}
                                                                       : Shape{*c / hidden0, hidden0};
    }
  }
  return shapes;
}

}  // namespace wts

ImportedModel importWts(const std::string& path, const ImportOptions& options) {
  WtsFlavor flavor{};
  const WeightStore raw = readWts(path, &flavor);

  std::string prefix;
  bool found = false;
  for (const std::string& name : raw.names())
    if (name.ends_with(kAnchor)) {
      prefix = name.substr(0, name.size() - kAnchor.size()), found = true;
      break;
    }
  check(found, "'", path, "' holds no DeepSpeech2 tensors under deepspeech.pytorch's state_dict names (no '", kAnchor,
        "'); ds2rt maps .wts files written from a deepspeech.pytorch state_dict (gen_wts.py)");

  std::map<std::string, int64_t> counts;
  std::vector<std::string> skipped;
  for (const auto& [name, tensor] : raw.tensors()) {
    if (!name.starts_with(prefix) || !inNetwork(std::string_view(name).substr(prefix.size()))) {
      skipped.push_back(name);
      continue;
    }
    counts[name.substr(prefix.size())] = tensor.size();
  }
  const std::map<std::string, Shape> shapes = wts::reconstructShapes(counts, path);

  importers::ConfigEvidence evidence;
  pytorch::inferFromShapes(shapes, evidence);
  importers::ResolvedConfig resolved = importers::resolveConfig(evidence, options, path);

  WeightStore weights;
  weights.setSource(path);
  for (const auto& [name, shape] : shapes) weights.set(name, raw.get(prefix + name).reshaped(shape));

  std::vector<std::string> notes;
  notes.push_back(cat(counts.size(), " tensors, shapes rebuilt from their counts",
                      prefix.empty() ? std::string() : cat(", prefix '", prefix, "' removed")));
  const GateLayout layout = options.gate_layout.value_or(GateLayout::kCanonical);
  const RNNCell cell = resolved.config.cell();
  const bool reorder = layout != GateLayout::kCanonical && layout != GateLayout::kPyTorch && layout != GateLayout::kCuDNN;
  check(!options.forget_bias || cell == RNNCell::kLSTM, "'", path, "': --forget-bias applies to LSTM models only");
  if (reorder || options.forget_bias) {
    const std::regex rnn(R"(rnns\.\d+\.rnn\.(weight_ih|weight_hh|bias_ih|bias_hh)_l0(_reverse)?)");
    for (const auto& [name, shape] : shapes) {
      std::smatch m;
      if (!std::regex_match(name, m, rnn)) continue;
      HostTensor t = weights.get(name).toFloat32();
      if (reorder) t = toCanonicalGates(t, cell, layout);
      if (options.forget_bias && m[1].str() == "bias_ih") {
        t = t.clone();
        const int64_t h = t.dim(0) / 4;
        for (int64_t k = h; k < 2 * h; ++k) t.mutableData<float>()[k] += *options.forget_bias;
      }
      weights.set(name, std::move(t));
    }
    notes.push_back(cat("recurrent gates converted from the ", toString(layout), " layout",
                        options.forget_bias ? cat(", forget_bias ", *options.forget_bias, " added to the f input bias") : ""));
  }
  if (!skipped.empty()) notes.push_back(cat("skipped ", skipped.size(), " tensors outside the DeepSpeech2 network: ", skipped[0],
                                            skipped.size() > 1 ? ", ..." : ""));
  const std::string format = cat(".wts, ", flavor == WtsFlavor::kPyTorch ? "gen_wts.py flavour (name count hex...)"
                                                                         : "TensorRT flavour (name type count hex...)");
  return {DeepSpeech2Model(std::move(resolved.config), std::move(weights)), format, std::move(resolved.origins),
          std::move(notes)};
}

CanonicalLSTMWeights tf1LstmCellToCanonical(const HostTensor& kernel_in, const HostTensor& bias_in, int64_t input_size,
                                            float forget_bias) {
  const HostTensor kernel = kernel_in.toFloat32(), bias = bias_in.toFloat32();
  check(kernel.rank() == 2 && kernel.dim(1) % 4 == 0 && kernel.dim(1) > 0, "TF1 LSTMCell kernel ",
        toString(kernel.shape()), ": expected (input + hidden) x 4*hidden");
  const int64_t h = kernel.dim(1) / 4;
  check(input_size > 0 && kernel.dim(0) == input_size + h, "TF1 LSTMCell kernel ", toString(kernel.shape()),
        ": rows must be input ", input_size, " + hidden ", h);
  check(bias.rank() == 1 && bias.dim(0) == 4 * h, "TF1 LSTMCell bias ", toString(bias.shape()), ": expected [", 4 * h, "]");
  const float* k = kernel.data<float>();
  CanonicalLSTMWeights out;
  out.W = toCanonicalGates(transposed(k, input_size, 4 * h, 4 * h), RNNCell::kLSTM, GateLayout::kTF1);
  out.R = toCanonicalGates(transposed(k + input_size * 4 * h, h, 4 * h, 4 * h), RNNCell::kLSTM, GateLayout::kTF1);
  out.Wb = toCanonicalGates(bias, RNNCell::kLSTM, GateLayout::kTF1).clone();
  for (int64_t i = h; i < 2 * h; ++i) out.Wb.mutableData<float>()[i] += forget_bias;  // canonical i, f, g, o
  out.Rb = HostTensor(DataType::kFloat32, {4 * h});
  return out;
}

}  // namespace ds2rt
