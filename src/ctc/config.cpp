// validate() of the decoder configurations and the WORD:BOOST hotword syntax.
#include <charconv>
#include <cmath>
#include <set>

#include "ds2rt/decoder.h"
#include "ds2rt/error.h"

namespace ds2rt {

Hotword parseHotword(const std::string& spec) {
  const size_t colon = spec.rfind(':');
  Hotword hotword{spec.substr(0, colon), Hotword{}.boost};
  if (colon != std::string::npos) {
    const std::string_view boost = std::string_view(spec).substr(colon + 1);
    auto [end, ec] = std::from_chars(boost.data(), boost.data() + boost.size(), hotword.boost);
    check(!boost.empty() && ec == std::errc() && end == boost.data() + boost.size() && std::isfinite(hotword.boost),
          "hotword '", spec, "': boost '", boost, "' is not a number (expected WORD:BOOST)");
  }
  check(hotword.word.find_first_not_of(" \t") != std::string::npos, "hotword '", spec, "': no word (expected WORD:BOOST)");
  return hotword;
}

void BeamSearchConfig::validate() const {
  check(beam_width >= 1, "beam search: beam_width must be at least 1, got ", beam_width);
  check(cutoff_top_n >= 1, "beam search: cutoff_top_n must be at least 1, got ", cutoff_top_n);
  check(cutoff_prob > 0 && cutoff_prob <= 1, "beam search: cutoff_prob must be in (0, 1], got ", cutoff_prob);
  check(std::isfinite(token_min_logp) && token_min_logp <= 0, "beam search: token_min_logp must be <= 0, got ", token_min_logp);
  check(std::isfinite(beam_prune_logp) && beam_prune_logp <= 0, "beam search: beam_prune_logp must be <= 0, got ", beam_prune_logp);
  check(nbest >= 1, "beam search: nbest must be at least 1, got ", nbest);
  check(std::isfinite(alpha) && std::isfinite(beta) && std::isfinite(unk_score_offset),
        "beam search: alpha, beta and unk_score_offset must be finite");
  for (const Hotword& h : hotwords) {
    check(h.word.find_first_not_of(" \t") != std::string::npos, "beam search: a hotword is empty");
    check(std::isfinite(h.boost), "beam search: hotword '", h.word, "' has a non-finite boost");
  }
}

void DecoderConfig::validate() const {
  check(labels.size() >= 2, "decoder: at least two labels (blank and one symbol) are needed, got ", labels.size());
  check(blank_index >= 0 && static_cast<size_t>(blank_index) < labels.size(), "decoder: blank_index ", blank_index,
        " is outside the ", labels.size(), " labels");
  std::set<std::string> seen;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (static_cast<int>(i) == blank_index) continue;
    check(!labels[i].empty(), "decoder: label ", i, " is empty");
    check(seen.insert(labels[i]).second, "decoder: label '", labels[i], "' appears twice");
  }
  check(word_separator.empty() || word_separator != labels[static_cast<size_t>(blank_index)],
        "decoder: the word separator '", word_separator, "' is the blank label");
  check(std::isfinite(frame_seconds) && frame_seconds > 0, "decoder: frame_seconds must be positive, got ", frame_seconds);
  beam.validate();
}

}  // namespace ds2rt
