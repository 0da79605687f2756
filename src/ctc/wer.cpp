// Word and character error rates: Levenshtein alignment with unit costs, counted as jiwer counts.
#include <algorithm>
#include <string_view>
#include <vector>

#include "ctc/utf8.h"
#include "ds2rt/decoder.h"

namespace ds2rt {
namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::vector<std::string_view> splitWords(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && isSpace(text[i])) ++i;
    size_t j = i;
    while (j < text.size() && !isSpace(text[j])) ++j;
    if (j > i) words.push_back(text.substr(i, j - i));
    i = j;
  }
  return words;
}

std::string_view strip(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Any minimal alignment has the same error total; among equal ones the walk back from the end
// prefers a deletion, then a match or substitution, then an insertion, which agrees with jiwer's
// substitution / deletion / insertion split in most (not all) ties.
EditCounts align(const std::vector<std::string_view>& ref, const std::vector<std::string_view>& hyp) {
  const size_t n = ref.size(), m = hyp.size();
  std::vector<int64_t> d((n + 1) * (m + 1));
  const auto at = [&](size_t i, size_t j) -> int64_t& { return d[i * (m + 1) + j]; };
  for (size_t i = 0; i <= n; ++i) at(i, 0) = static_cast<int64_t>(i);
  for (size_t j = 0; j <= m; ++j) at(0, j) = static_cast<int64_t>(j);
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j)
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (ref[i - 1] != hyp[j - 1])});

  EditCounts counts;
  size_t i = n, j = m;
  while (i > 0 || j > 0) {
    if (i > 0 && at(i, j) == at(i - 1, j) + 1) {
      ++counts.deletions;
      --i;
    } else if (i > 0 && j > 0 && at(i, j) == at(i - 1, j - 1) + (ref[i - 1] != hyp[j - 1])) {
      ++(ref[i - 1] == hyp[j - 1] ? counts.hits : counts.substitutions);
      --i;
      --j;
    } else {
      ++counts.insertions;
      --j;
    }
  }
  return counts;
}

}  // namespace

double EditCounts::rate() const {
  const int64_t length = referenceLength();
  return length == 0 ? static_cast<double>(insertions) : static_cast<double>(errors()) / static_cast<double>(length);
}

EditCounts& EditCounts::operator+=(const EditCounts& other) {
  hits += other.hits;
  substitutions += other.substitutions;
  deletions += other.deletions;
  insertions += other.insertions;
  return *this;
}

EditCounts wordEdits(std::string_view reference, std::string_view hypothesis) {
  return align(splitWords(reference), splitWords(hypothesis));
}

EditCounts charEdits(std::string_view reference, std::string_view hypothesis) {
  return align(detail::utf8CodePoints(strip(reference)), detail::utf8CodePoints(strip(hypothesis)));
}

double wordErrorRate(std::string_view reference, std::string_view hypothesis) {
  return wordEdits(reference, hypothesis).rate();
}

double charErrorRate(std::string_view reference, std::string_view hypothesis) {
  return charEdits(reference, hypothesis).rate();
}

}  // namespace ds2rt
