// The two decoding algorithms behind CtcDecoder.
#pragma once

#include <vector>

#include "ctc/posteriors.h"
#include "ds2rt/decoder.h"

namespace ds2rt::detail {

Hypothesis greedyDecode(const LogPosteriors& posteriors, const DecoderConfig& config);
std::vector<Hypothesis> beamSearchDecode(const LogPosteriors& posteriors, const DecoderConfig& config,
                                         const LanguageModel* lm);

}  // namespace ds2rt::detail
