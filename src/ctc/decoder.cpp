// CtcDecoder: validation, per-utterance entry points and the batch forms.
#include "ctc/decoders.h"
#include "ds2rt/error.h"

namespace ds2rt {

CtcDecoder::CtcDecoder(DecoderConfig config, std::optional<LanguageModel> lm)
    : config_(std::move(config)), lm_(std::move(lm)) {
  config_.validate();
}

Hypothesis CtcDecoder::greedy(const Posteriors& posteriors) const {
  return detail::greedyDecode(detail::toLogPosteriors(posteriors, config_), config_);
}

std::vector<Hypothesis> CtcDecoder::beamSearch(const Posteriors& posteriors) const {
  return detail::beamSearchDecode(detail::toLogPosteriors(posteriors, config_), config_, languageModel());
}

std::vector<Hypothesis> CtcDecoder::greedy(const HostTensor& probs, const HostTensor& lengths) const {
  const HostTensor values = probs.toFloat32();
  std::vector<Hypothesis> out;
  for (const Posteriors& p : splitBatch(values, lengths, config_.labels.size())) out.push_back(greedy(p));
  return out;
}

std::vector<std::vector<Hypothesis>> CtcDecoder::beamSearch(const HostTensor& probs, const HostTensor& lengths) const {
  const HostTensor values = probs.toFloat32();
  std::vector<std::vector<Hypothesis>> out;
  for (const Posteriors& p : splitBatch(values, lengths, config_.labels.size())) out.push_back(beamSearch(p));
  return out;
}

}  // namespace ds2rt
