// Reference transcripts in the model's alphabet, for error rates: a character that is a label
// stays; otherwise its upper-case, then its lower-case form if that is a label (so upper-case
// label sets upper-case the text); whitespace becomes one space; anything else is dropped.
// Leading and trailing spaces go. "Don't  panic, 42!" -> "DON'T PANIC" with A-Z, ' and space.
#pragma once

#include <string>
#include <vector>

namespace ds2rt::tools {

// `labels`: the model's labels without the blank.
std::string normalizeTranscript(const std::string& text, const std::vector<std::string>& labels);

}  // namespace ds2rt::tools
