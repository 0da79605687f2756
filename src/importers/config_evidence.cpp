#include "importers/config_evidence.h"

#include "ds2rt/error.h"

namespace ds2rt::importers {

namespace {

std::string format(const std::string& v) { return v; }
std::string format(int v) { return std::to_string(v); }
std::string format(double v) { return cat(v); }
std::string format(bool v) { return v ? "true" : "false"; }
std::string format(const std::vector<std::string>& labels) {
  std::string joined;
  for (const std::string& l : labels) joined += l;
  return cat(labels.size(), " labels \"", joined, "\"");
}

template <typename T>
struct Pick {
  const char* field;
  const char* flag;  // command-line flag that sets it, or nullptr
  const std::string& source;
  std::vector<ConfigOrigin>& origins;

  T operator()(const Evidence<T>& e, const std::optional<T>& given, std::optional<T> fallback = std::nullopt,
               const char* fallback_detail = "", bool check_agreement = true) const {
    const auto record = [&](const T& value, ConfigOrigin::Kind kind, std::string detail) {
      origins.push_back({field, format(value), kind, std::move(detail)});
      return value;
    };
    if (given) return record(*given, ConfigOrigin::Kind::kGiven, flag ? flag : "ImportOptions");
    if (check_agreement && e.read && e.inferred && *e.read != *e.inferred)
      fail("'", source, "': the hyper-parameters say ", field, " = ", format(*e.read), " (", e.read_from,
           ") but the weights say ", format(*e.inferred), " (", e.inferred_from, ")",
           flag ? cat("; give the right value with ", flag) : std::string());
    if (e.read) return record(*e.read, ConfigOrigin::Kind::kRead, e.read_from);
    if (e.inferred) return record(*e.inferred, ConfigOrigin::Kind::kInferred, e.inferred_from);
    if (fallback) return record(*fallback, ConfigOrigin::Kind::kDefault, fallback_detail);
    fail("'", source, "': cannot tell the model's ", field, " from the file", flag ? cat("; give it with ", flag) : "");
  }
};

}  // namespace

std::vector<std::string> deepspeechPytorchLabels() {
  std::vector<std::string> labels = {"_", "'"};
  for (char c = 'A'; c <= 'Z'; ++c) labels.emplace_back(1, c);
  labels.emplace_back(" ");
  return labels;
}

ResolvedConfig resolveConfig(const ConfigEvidence& e, const ImportOptions& o, const std::string& source) {
  ResolvedConfig out;
  DeepSpeech2Config& c = out.config;
  auto& origins = out.origins;
  c.rnn_type = Pick<std::string>{"rnn_type", "--rnn-type", source, origins}(e.rnn_type, o.rnn_type);
  c.hidden_size = Pick<int>{"hidden_size", "--hidden-size", source, origins}(e.hidden_size, o.hidden_size);
  c.hidden_layers = Pick<int>{"hidden_layers", "--layers", source, origins}(e.hidden_layers, o.hidden_layers);
  c.bidirectional = Pick<bool>{"bidirectional", "--bidirectional / --unidirectional", source, origins}(
      e.bidirectional, o.bidirectional);
  c.lookahead_context = c.bidirectional ? 0
      : Pick<int>{"lookahead_context", "--context", source, origins}(e.lookahead_context, o.lookahead_context);

  // Labels: given, read, or deepspeech.pytorch's English set when the output layer has its 29 classes.
  std::optional<std::vector<std::string>> default_labels;
  if (e.num_classes.inferred == 29) default_labels = deepspeechPytorchLabels();
  if (!o.labels && !e.labels.read && !default_labels && e.num_classes.inferred)
    fail("'", source, "': the model has ", *e.num_classes.inferred, " output classes (", e.num_classes.inferred_from,
         ") and the file names no labels; give them with --labels");
  c.labels = Pick<std::vector<std::string>>{"labels", "--labels", source, origins}(
      e.labels, o.labels, default_labels, "deepspeech.pytorch's English labels (29 output classes)");
  check(!e.num_classes.inferred || static_cast<int>(c.labels.size()) == *e.num_classes.inferred, "'", source, "': ",
        c.labels.size(), " labels ", origins.back().kind == ConfigOrigin::Kind::kGiven ? "given" : "in the file",
        ", but the output layer has ", e.num_classes.inferred.value_or(0), " classes (", e.num_classes.inferred_from, ")");

  c.spect.sample_rate = Pick<int>{"spect_cfg.sample_rate", "--sample-rate", source, origins}(
      e.sample_rate, o.sample_rate, std::nullopt, "", /*check_agreement=*/false);
  c.spect.window_size = Pick<double>{"spect_cfg.window_size", nullptr, source, origins}(
      e.window_size, std::nullopt, 0.02, "deepspeech.pytorch's default");
  c.spect.window_stride = Pick<double>{"spect_cfg.window_stride", nullptr, source, origins}(
      e.window_stride, std::nullopt, 0.01, "deepspeech.pytorch's default");
  c.spect.window = Pick<std::string>{"spect_cfg.window", nullptr, source, origins}(
      e.window, std::nullopt, std::string("hamming"), "deepspeech.pytorch's default");
  try {
    c.validate();
  } catch (const Error& error) {
    fail("'", source, "': ", error.what());
  }
  return out;
}

}  // namespace ds2rt::importers
