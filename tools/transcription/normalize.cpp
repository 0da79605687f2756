#include "transcription/normalize.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace ds2rt::tools {

namespace {

// Length in bytes of the UTF-8 sequence starting with `lead` (1 for stray bytes).
size_t sequenceLength(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

}  // namespace

std::string normalizeTranscript(const std::string& text, const std::vector<std::string>& labels) {
  const std::set<std::string> known(labels.begin(), labels.end());
  std::string out;
  bool pending_space = false;
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::min(sequenceLength(static_cast<unsigned char>(text[i])), text.size() - i);
    std::string ch = text.substr(i, n);
    i += n;
    if (ch.size() == 1 && std::isspace(static_cast<unsigned char>(ch[0]))) {
      pending_space = true;
      continue;
    }
    if (!known.count(ch) && ch.size() == 1) {
      const auto c = static_cast<unsigned char>(ch[0]);
      if (known.count(std::string(1, static_cast<char>(std::toupper(c))))) ch[0] = static_cast<char>(std::toupper(c));
      else if (known.count(std::string(1, static_cast<char>(std::tolower(c))))) ch[0] = static_cast<char>(std::tolower(c));
    }
    if (!known.count(ch)) continue;
    if (pending_space && !out.empty()) out += ' ';
    pending_space = false;
    out += ch;
  }
  return out;
}

}  // namespace ds2rt::tools
