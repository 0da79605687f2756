// The counts behind the LM builder: a vocabulary and one hash map of n-grams per order, filled
// sentence by sentence, then annotated with what Kneser-Ney estimation derives from them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ds2rt/lm_builder.h"

namespace ds2rt::detail {

constexpr int kMaxLmOrder = 6;
// Word ids, the first 1..n used; the rest stay 0 so that equal n-grams compare and hash equal.
using Gram = std::array<uint32_t, kMaxLmOrder>;
constexpr uint32_t kUnkId = 0, kBosId = 1, kEosId = 2;

struct GramHash {
  size_t operator()(const Gram& g) const {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (uint32_t id : g) {
      h ^= id + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
      h *= 0xBF58476D1CE4E5B9ull;
      h ^= h >> 31;
    }
    return static_cast<size_t>(h);
  }
};

struct GramInfo {
  uint64_t raw = 0;       // occurrences in the text
  uint64_t adjusted = 0;  // Kneser-Ney's count (see lm_builder.h)
  bool kept = true;       // written to the model (not pruned)
  // As a context of the next order: sum of its extensions' adjusted counts, and the mass left for
  // the lower order (discounts of the kept extensions plus the whole count of the pruned ones).
  double denominator = 0;
  double gamma_numerator = 0;
  double prob = 0;  // interpolated P(last word | the others), once estimated
};

using GramMap = std::unordered_map<Gram, GramInfo, GramHash>;

class NGramCounts {
 public:
  NGramCounts(int order, LmBuildOptions::Case text_case);

  void addSentence(std::string_view line);  // whitespace-separated words; blank lines are skipped

  int order() const { return static_cast<int>(grams.size()); }
  int64_t sentences = 0;
  int64_t words = 0;
  std::vector<std::string> vocabulary;  // id -> word: <unk>, <s>, </s>, then in order of appearance
  std::vector<GramMap> grams;           // grams[n - 1]: the n-grams

 private:
  uint32_t idOf(std::string_view word);

  LmBuildOptions::Case case_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<uint32_t> sentence_;
  std::string folded_;
};

// Chen & Goodman's eq. 26 discounts D1, D2, D3+ from the count-of-counts n[1..4] (n[0] unused);
// nothing when they cannot be computed (n1, n2 or n3 is 0) or one falls outside (0, k].
std::optional<std::array<double, 3>> kneserNeyDiscounts(const std::array<uint64_t, 5>& n);

// Adjusted counts, pruning, discounts, probabilities and backoffs (in the GramInfo fields).
LmBuildStats estimateKneserNey(NGramCounts& counts, const LmBuildOptions& options);
// Writes the kept n-grams as ARPA text, in id order.
void writeArpa(const NGramCounts& counts, std::string& out);

}  // namespace ds2rt::detail
