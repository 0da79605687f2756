// Greedy (best path) decoding: the most probable label per frame, repeats collapsed, blanks
// dropped; each label keeps the frames of its run and its highest posterior there.
#include <algorithm>
#include <cmath>

#include "ctc/decoders.h"
#include "ctc/word_timing.h"

namespace ds2rt::detail {

Hypothesis greedyDecode(const LogPosteriors& p, const DecoderConfig& config) {
  Hypothesis h;
  std::vector<DecodedChar> emitted;
  int previous = config.blank_index;
  for (int64_t t = 0; t < p.frames; ++t) {
    const double* row = p.row(t);
    const auto best = static_cast<int>(std::max_element(row, row + p.classes) - row);  // first of equals
    const auto prob = static_cast<float>(std::exp(row[best]));
    h.acoustic_score += row[best];
    if (best == previous && best != config.blank_index) {
      emitted.back().end_frame = static_cast<int>(t) + 1;
      emitted.back().confidence = std::max(emitted.back().confidence, prob);
    } else if (best != config.blank_index) {
      emitted.push_back({best, static_cast<int>(t), static_cast<int>(t) + 1, prob});
    }
    previous = best;
  }
  h.score = h.acoustic_score;
  fillText(h, emitted, config, separatorLabel(config));
  return h;
}

}  // namespace ds2rt::detail
