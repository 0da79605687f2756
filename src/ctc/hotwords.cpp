#include "ctc/hotwords.h"

#include <algorithm>

#include "ctc/utf8.h"

namespace ds2rt::detail {

HotwordScorer::HotwordScorer(const std::vector<Hotword>& hotwords) {
  for (const Hotword& hotword : hotwords) {
    std::string_view rest = hotword.word;
    while (!rest.empty()) {
      const size_t start = rest.find_first_not_of(" \t");
      if (start == std::string_view::npos) break;
      const size_t end = std::min(rest.find_first_of(" \t", start), rest.size());
      std::string word(rest.substr(start, end - start));
      if (boosts_.insert_or_assign(word, hotword.boost).second) by_length_.push_back(std::move(word));
      rest.remove_prefix(end);
    }
  }
  std::stable_sort(by_length_.begin(), by_length_.end(),
                   [](const std::string& a, const std::string& b) { return utf8Length(a) < utf8Length(b); });
}

double HotwordScorer::wordBoost(std::string_view word) const {
  auto it = boosts_.find(std::string(word));
  return it == boosts_.end() ? 0.0 : it->second;
}

const std::string* HotwordScorer::shortestStartingWith(std::string_view partial) const {
  for (const std::string& word : by_length_)
    if (word.starts_with(partial)) return &word;
  return nullptr;
}

bool HotwordScorer::startsHotword(std::string_view partial) const { return shortestStartingWith(partial) != nullptr; }

double HotwordScorer::partialBoost(std::string_view partial) const {
  const std::string* word = shortestStartingWith(partial);
  if (!word) return 0.0;
  return boosts_.at(*word) * static_cast<double>(utf8Length(partial)) / static_cast<double>(utf8Length(*word));
}

}  // namespace ds2rt::detail
