#include "ctc/word_timing.h"

namespace ds2rt::detail {
namespace {

DecodedWord makeWord(const std::vector<DecodedChar>& chars, size_t begin, size_t end, const DecoderConfig& config) {
  DecodedWord word;
  double confidence = 0;
  for (size_t i = begin; i < end; ++i) {
    word.text += config.labels[static_cast<size_t>(chars[i].label)];
    confidence += chars[i].confidence;
  }
  word.start_frame = chars[begin].start_frame;
  word.end_frame = chars[end - 1].end_frame;
  word.start_seconds = word.start_frame * config.frame_seconds;
  word.end_seconds = word.end_frame * config.frame_seconds;
  word.confidence = static_cast<float>(confidence / static_cast<double>(end - begin));
  return word;
}

}  // namespace

void fillText(Hypothesis& h, const std::vector<DecodedChar>& emitted, const DecoderConfig& config, int separator) {
  h.chars.clear();
  for (const DecodedChar& c : emitted) {
    const bool is_separator = c.label == separator;
    if (is_separator && (h.chars.empty() || h.chars.back().label == separator)) continue;
    h.chars.push_back(c);
  }
  if (!h.chars.empty() && h.chars.back().label == separator) h.chars.pop_back();

  h.words.clear();
  h.text.clear();
  size_t begin = 0;
  for (size_t i = 0; i <= h.chars.size(); ++i) {
    if (i < h.chars.size() && h.chars[i].label != separator) continue;
    if (i > begin) h.words.push_back(makeWord(h.chars, begin, i, config));
    begin = i + 1;
  }
  double confidence = 0;
  for (const DecodedWord& w : h.words) {
    if (!h.text.empty()) h.text += ' ';
    h.text += w.text;
    confidence += w.confidence;
  }
  h.confidence = h.words.empty() ? 0.0f : static_cast<float>(confidence / static_cast<double>(h.words.size()));
}

}  // namespace ds2rt::detail
