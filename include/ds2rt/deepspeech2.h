// DeepSpeech2 models as deepspeech.pytorch defines them: the hyper-parameters under its own
// names, weights under its own state_dict names, turned into a NetworkDefinition by one call.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ds2rt/network.h"
#include "ds2rt/weights.h"

namespace ds2rt {

// deepspeech.pytorch's SpectConfig.
struct SpectrogramConfig {
  int sample_rate = 16000;
  double window_size = 0.02;    // seconds
  double window_stride = 0.01;  // seconds
  std::string window = "hamming";
  int fftSize() const;       // sample_rate * window_size
  int frequencyBins() const;  // fftSize() / 2 + 1
};

// deepspeech.pytorch's BiDirectionalConfig / UniDirectionalConfig plus labels and spect_cfg.
struct DeepSpeech2Config {
  std::string rnn_type = "lstm";  // "lstm" | "gru" | "rnn"
  int hidden_size = 1024;
  int hidden_layers = 5;
  bool bidirectional = true;
  int lookahead_context = 20;  // unidirectional models only
  std::vector<std::string> labels;
  SpectrogramConfig spect;

  static DeepSpeech2Config fromJson(const std::string& json_text, const std::string& source = "config");
  std::string toJson() const;
  void validate() const;
  RNNCell cell() const;
  int rnnInputSize() const;  // 32 * frequency bins after the two convolutions
};

// Networks (and so engines and plan files) carry what transcription needs besides the weights: the labels
// under "ds2rt.labels" (a JSON array) and the feature settings under "ds2rt.spect_cfg" (deepspeech.pytorch's
// spect_cfg as JSON; absent when unknown, meaning the defaults). DeepSpeech2Model networks and every
// import with known labels have them, so a plan alone is enough to transcribe.
void setTranscriptionMetadata(NetworkDefinition& network, const std::vector<std::string>& labels,
                              const SpectrogramConfig* spect);
// Labels and feature settings from that metadata (architecture fields left at their defaults);
// nullopt when the labels are absent. Throws naming `source` when they are malformed.
std::optional<DeepSpeech2Config> transcriptionConfigFromMetadata(const std::map<std::string, std::string>& metadata,
                                                                const std::string& source);

struct DeepSpeech2NetworkOptions {
  bool log_softmax = false;  // output log-probabilities instead of probabilities
};

class DeepSpeech2Model {
 public:
  // A .safetensors file with the config JSON under the "ds2rt.config" metadata key, or a .json
  // config naming its weights file ("weights": path relative to the JSON) or lying beside
  // a .safetensors file of the same stem.
  static DeepSpeech2Model load(const std::string& path);
  DeepSpeech2Model(DeepSpeech2Config config, WeightStore weights);
  // A model of this architecture with random weights (PyTorch's default initialisation and
  // random batch-norm statistics): for benchmarks and tests, where speed does not depend on values.
  static DeepSpeech2Model withRandomWeights(DeepSpeech2Config config, uint32_t seed = 1);
  // Writes one self-describing .safetensors file.
  void save(const std::string& path) const;

  const DeepSpeech2Config& config() const { return config_; }
  const WeightStore& weights() const { return weights_; }

  // Inputs "features" (N x 1 x bins x T) and "lengths"; outputs "probs" (N x T' x classes,
  // batch-major as deepspeech.pytorch returns it) and "output_lengths". Throws naming the
  // tensor when a weight is missing or has the wrong shape.
  NetworkDefinition createNetwork(const DeepSpeech2NetworkOptions& options = {}) const;

 private:
  DeepSpeech2Config config_;
  WeightStore weights_;
};

}  // namespace ds2rt
