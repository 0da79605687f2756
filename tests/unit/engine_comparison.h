// Helpers of the tests that hold two engines of one random model side by side (kernels, precisions):
// pinning a process-wide kernel choice while an engine is built, the model, and the distance of
// their probabilities on the same random batch.
#pragma once

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "test_util.h"

namespace ds2rt::test {

// A process-wide kernel choice (one of detail::cpu's force...ForTesting switches) held for the scope,
// then back to what the CPU and the environment choose.
class PinnedKernelChoice {
 public:
  using Switch = void (*)(std::optional<bool>);
  PinnedKernelChoice(Switch pin, bool value) : pin_(pin) { pin_(value); }
  ~PinnedKernelChoice() { pin_(std::nullopt); }
  PinnedKernelChoice(const PinnedKernelChoice&) = delete;
  PinnedKernelChoice& operator=(const PinnedKernelChoice&) = delete;

 private:
  Switch pin_;
};

// deepspeech.pytorch's architecture at test size, six labels.
inline DeepSpeech2Config randomModelConfig(const std::string& rnn_type, int hidden_size, int hidden_layers,
                                           bool bidirectional = true) {
  DeepSpeech2Config c;
  c.rnn_type = rnn_type;
  c.bidirectional = bidirectional;
  if (!bidirectional) c.lookahead_context = 3;
  c.hidden_size = hidden_size;
  c.hidden_layers = hidden_layers;
  for (const char* l : {"_", "'", "A", "B", "C", " "}) c.labels.emplace_back(l);
  return c;
}

// Relative L2 of `candidate`'s probabilities from `reference`'s on one random batch of `frames`
// spectrogram frames, utterances of the given lengths.
inline double probabilitiesDistance(const Engine& candidate, const Engine& reference, int frames,
                                    const std::vector<int32_t>& lengths, std::mt19937& rng) {
  const int64_t batch = static_cast<int64_t>(lengths.size());
  const HostTensor features = randomTensor({batch, 1, 161, frames}, rng);
  const HostTensor lengths_tensor = HostTensor::fromInts({batch}, lengths);
  const auto expected = reference.createContext().run({{"features", features}, {"lengths", lengths_tensor}});
  const auto actual = candidate.createContext().run({{"features", features}, {"lengths", lengths_tensor}});
  return relativeL2(toVector(actual.at("probs")), toVector(expected.at("probs")));
}

}  // namespace ds2rt::test
