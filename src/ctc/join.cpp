// Joining the hypotheses of consecutive pieces of one recording (splitAtPauses).
#include <algorithm>
#include <cmath>

#include "ds2rt/decoder.h"
#include "ds2rt/error.h"

namespace ds2rt {

Hypothesis joinHypotheses(std::span<const Hypothesis> pieces, std::span<const double> offsets_seconds,
                          const DecoderConfig& config) {
  check(pieces.size() == offsets_seconds.size(), "joinHypotheses: ", pieces.size(), " hypotheses but ",
        offsets_seconds.size(), " offsets");
  check(config.frame_seconds > 0, "joinHypotheses: the decoder config has no frame duration");
  const auto it = std::find(config.labels.begin(), config.labels.end(), " ");
  const int space = it == config.labels.end() ? -1 : static_cast<int>(it - config.labels.begin());
  Hypothesis joined;
  double confidence = 0;
  for (size_t piece = 0; piece < pieces.size(); ++piece) {
    const Hypothesis& h = pieces[piece];
    const double offset = offsets_seconds[piece];
    const int frames = static_cast<int>(std::lround(offset / config.frame_seconds));
    if (!h.text.empty() && !joined.text.empty()) {
      joined.text += ' ';
      if (space >= 0) joined.chars.push_back({space, frames, frames, 1.0f});
    }
    joined.text += h.text;
    for (DecodedChar c : h.chars) {
      c.start_frame += frames, c.end_frame += frames;
      joined.chars.push_back(c);
    }
    for (DecodedWord w : h.words) {
      w.start_frame += frames, w.end_frame += frames;
      w.start_seconds += offset, w.end_seconds += offset;
      confidence += w.confidence;
      joined.words.push_back(std::move(w));
    }
    joined.acoustic_score += h.acoustic_score;
    joined.score += h.score;
  }
  joined.confidence = joined.words.empty() ? 0.0f : static_cast<float>(confidence / joined.words.size());
  return joined;
}

}  // namespace ds2rt
