// Text, words, times and confidences of a decoded path.
#pragma once

#include <vector>

#include "ds2rt/decoder.h"

namespace ds2rt::detail {

// Fills h.text, h.chars, h.words and h.confidence from the labels a path emitted, oldest first
// (separators included; leading, repeated and trailing ones are dropped, as in the text).
void fillText(Hypothesis& h, const std::vector<DecodedChar>& emitted, const DecoderConfig& config, int separator);

}  // namespace ds2rt::detail
