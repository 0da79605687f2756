#include "ctc/posteriors.h"

#include <algorithm>
#include <cmath>

#include "ds2rt/error.h"

namespace ds2rt {
namespace detail {

LogPosteriors toLogPosteriors(const Posteriors& p, const DecoderConfig& config) {
  const auto num_labels = static_cast<int64_t>(config.labels.size());
  check(p.frames >= 0 && p.classes >= 0, "decoder: negative posterior shape [", p.frames, ", ", p.classes, "]");
  check(p.classes == num_labels, "decoder: label count mismatch: the posteriors have ", p.classes,
        " classes but the decoder has ", num_labels, " labels");
  check(static_cast<int64_t>(p.values.size()) == p.frames * p.classes, "decoder: ", p.values.size(),
        " posterior values do not make ", p.frames, " frames x ", p.classes, " classes");
  const bool probabilities = config.input == PosteriorKind::kProbabilities;
  const double min_log = std::log(kMinProbability);
  LogPosteriors out{std::vector<double>(p.values.size()), p.frames, p.classes};
  for (size_t i = 0; i < p.values.size(); ++i) {
    const double v = p.values[i];
    const auto where = [&] { return cat("frame ", static_cast<int64_t>(i) / p.classes, ", class ", static_cast<int64_t>(i) % p.classes); };
    check(!std::isnan(v), "decoder: NaN posterior at ", where());
    if (probabilities) {
      // Tolerates float rounding above 1; logits or log-probabilities fail here.
      check(v >= 0 && v <= 1.001, "decoder: probability ", v, " at ", where(),
            " is outside [0, 1] (log-softmax outputs need PosteriorKind::kLogProbabilities)");
      out.values[i] = std::log(std::clamp(v, kMinProbability, 1.0));
    } else {
      check(v <= 1e-3, "decoder: log-probability ", v, " at ", where(), " is above 0");
      out.values[i] = std::clamp(v, min_log, 0.0);
    }
  }
  return out;
}

int separatorLabel(const DecoderConfig& config) {
  if (config.word_separator.empty()) return -1;
  auto it = std::find(config.labels.begin(), config.labels.end(), config.word_separator);
  return it == config.labels.end() ? -1 : static_cast<int>(it - config.labels.begin());
}

}  // namespace detail

std::vector<Posteriors> splitBatch(const HostTensor& probs, const HostTensor& lengths, size_t num_labels) {
  check(probs.rank() == 3, "decoder: posteriors must be N x T x C, got ", toString(probs.shape()));
  check(probs.dtype() == DataType::kFloat32, "decoder: posteriors must be F32, got ", toString(probs.dtype()));
  const int64_t n = probs.dim(0), frames = probs.dim(1), classes = probs.dim(2);
  check(classes == static_cast<int64_t>(num_labels), "decoder: label count mismatch: the posteriors have ", classes,
        " classes but the decoder has ", num_labels, " labels");
  check(lengths.rank() == 1 && lengths.dim(0) == n, "decoder: lengths must have shape [", n, "], got ",
        toString(lengths.shape()));
  check(lengths.dtype() == DataType::kInt32 || lengths.dtype() == DataType::kInt64, "decoder: lengths must be I32 or I64, got ",
        toString(lengths.dtype()));
  std::vector<Posteriors> out;
  const float* data = probs.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t len = lengths.dtype() == DataType::kInt32 ? lengths.data<int32_t>()[i] : lengths.data<int64_t>()[i];
    check(len >= 0 && len <= frames, "decoder: length ", len, " of utterance ", i, " is outside [0, ", frames, "]");
    out.push_back({{data + i * frames * classes, static_cast<size_t>(len * classes)}, len, classes});
  }
  return out;
}

}  // namespace ds2rt
