#include "ctc/ngram_counts.h"

#include "ds2rt/error.h"

namespace ds2rt::detail {

NGramCounts::NGramCounts(int order, LmBuildOptions::Case text_case)
    : vocabulary{"<unk>", "<s>", "</s>"}, grams(static_cast<size_t>(order)), case_(text_case) {
  for (uint32_t id = 0; id < vocabulary.size(); ++id) ids_.emplace(vocabulary[id], id);
}

uint32_t NGramCounts::idOf(std::string_view word) {
  for (uint32_t id : {kUnkId, kBosId, kEosId})  // markers, whatever the case folding
    if (word == vocabulary[id]) return id;
  folded_.assign(word);
  if (case_ != LmBuildOptions::Case::kKeep)
    for (char& c : folded_) {
      if (case_ == LmBuildOptions::Case::kLower && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (case_ == LmBuildOptions::Case::kUpper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
  auto [it, added] = ids_.try_emplace(folded_, static_cast<uint32_t>(vocabulary.size()));
  if (added) vocabulary.push_back(folded_);
  return it->second;
}

void NGramCounts::addSentence(std::string_view line) {
  sentence_.assign(1, kBosId);
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
  for (size_t i = 0; i < line.size();) {
    while (i < line.size() && space(line[i])) ++i;
    size_t j = i;
    while (j < line.size() && !space(line[j])) ++j;
    if (j > i) {
      const uint32_t id = idOf(line.substr(i, j - i));
      // Sentence markers in the text would break the model's conventions: they are dropped.
      if (id != kBosId && id != kEosId) sentence_.push_back(id);
    }
    i = j;
  }
  if (sentence_.size() == 1) return;
  sentence_.push_back(kEosId);
  ++sentences;
  words += static_cast<int64_t>(sentence_.size() - 2);
  const size_t length = sentence_.size();
  for (size_t n = 1; n <= grams.size(); ++n) {
    GramMap& map = grams[n - 1];
    for (size_t i = 0; i + n <= length; ++i) {
      Gram g{};
      std::copy_n(sentence_.begin() + static_cast<ptrdiff_t>(i), n, g.begin());
      ++map[g].raw;
    }
  }
}

}  // namespace ds2rt::detail
