// What an importer found out about a DeepSpeech2 model's configuration -- read from the file's
// hyper-parameters and/or inferred from its weights -- and the one rule that turns it into a
// DeepSpeech2Config: given (ImportOptions) > read > inferred > default, with a clear error when
// the file's hyper-parameters and its weights disagree.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ds2rt/importers.h"

namespace ds2rt::importers {

template <typename T>
struct Evidence {
  std::optional<T> read;
  std::string read_from;  // "hyper_parameters.model_cfg.hidden_size"
  std::optional<T> inferred;
  std::string inferred_from;  // "rnns.0.rnn.weight_hh_l0 [36, 12]"

  void setRead(T value, std::string from) { read = std::move(value), read_from = std::move(from); }
  void setInferred(T value, std::string from) { inferred = std::move(value), inferred_from = std::move(from); }
};

struct ConfigEvidence {
  Evidence<std::string> rnn_type;
  Evidence<int> hidden_size, hidden_layers, lookahead_context;
  Evidence<bool> bidirectional;
  Evidence<std::vector<std::string>> labels;
  Evidence<int> num_classes;  // inferred from the output layer: picks default labels, or asks for them
  Evidence<int> sample_rate;
  Evidence<double> window_size, window_stride;
  Evidence<std::string> window;
};

struct ResolvedConfig {
  DeepSpeech2Config config;
  std::vector<ConfigOrigin> origins;
};

// `source` names the file in errors ("model.pth: ...").
ResolvedConfig resolveConfig(const ConfigEvidence& evidence, const ImportOptions& options, const std::string& source);

// deepspeech.pytorch's labels.json: blank, apostrophe, A-Z, space.
std::vector<std::string> deepspeechPytorchLabels();

}  // namespace ds2rt::importers
