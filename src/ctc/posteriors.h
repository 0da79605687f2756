// Checked, log-domain posteriors: the common input of both decoders.
#pragma once

#include <cstdint>
#include <vector>

#include "ds2rt/decoder.h"

namespace ds2rt::detail {

// pyctcdecode clips probabilities to [1e-15, 1] before taking logs; so does ds2rt.
inline constexpr double kMinProbability = 1e-15;

// Natural-log posteriors, clipped to [ln 1e-15, 0].
struct LogPosteriors {
  std::vector<double> values;
  int64_t frames = 0;
  int64_t classes = 0;
  const double* row(int64_t t) const { return values.data() + t * classes; }
};

// Throws ds2rt::Error for a size or class count that does not fit, NaN or impossible values.
LogPosteriors toLogPosteriors(const Posteriors& posteriors, const DecoderConfig& config);

// The index of the word separator label, or -1 when the labels have none.
int separatorLabel(const DecoderConfig& config);

}  // namespace ds2rt::detail
