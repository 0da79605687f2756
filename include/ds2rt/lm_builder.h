// Building a word n-gram language model from text: interpolated modified Kneser-Ney smoothing
// (Chen & Goodman 1998, eq. 26 discounts), as KenLM's lmplz estimates it, written as an ARPA file
// that ds2rt's LanguageModel and KenLM both read.
//
// Conventions (lmplz's): each non-empty line of the text is a sentence of whitespace-separated
// words, scored as <s> words </s>. Adjusted counts: the raw count for the highest order and for
// n-grams starting with <s>, the number of distinct words seen before it otherwise. Three discounts
// per order (for adjusted counts 1, 2 and 3+) from that order's count-of-counts. Unigrams are
// interpolated with the uniform distribution over the vocabulary (with </s> and <unk>, without
// <s>), so <unk> gets gamma / |V|; <s> is never predicted (log10 probability -99). Backoff weights
// are the interpolation weights gamma, so every context's probabilities sum to one.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ds2rt {

struct LmBuildOptions {
  enum class Case : uint8_t { kKeep, kLower, kUpper };  // ASCII letters only; other bytes stay

  int order = 3;  // 1 to 6 (KenLM reads 2 to 6 with its default KENLM_MAX_ORDER; ds2rt any)
  // lmplz --prune: n-grams of order n seen at most prune[n-1] times are dropped; the last value
  // holds for the higher orders; empty: no pruning. prune[0] must be 0 (unigrams are all kept)
  // and the values must not decrease, so that every kept n-gram's context and suffix are kept.
  std::vector<int64_t> prune;
  Case text_case = Case::kKeep;
  // At most this many n-grams in all (0: no limit): when the model is larger, the thresholds of
  // orders 2 and up are raised together to the smallest value that fits. The unigrams must fit.
  int64_t max_ngrams = 0;
  // Discounts for adjusted counts 1, 2 and 3+ of an order whose count-of-counts cannot give them
  // (no n-grams seen once, twice or three times, or a discount out of range: small texts); lmplz's
  // --discount_fallback values.
  std::array<double, 3> discount_fallback = {0.5, 1.0, 1.5};

  void validate() const;  // throws ds2rt::Error naming the bad option
};

// Parses "0,1,1" (commas or spaces) into prune thresholds; throws ds2rt::Error when malformed.
std::vector<int64_t> parsePruneThresholds(std::string_view text);

struct LmBuildStats {
  int64_t sentences = 0;
  int64_t words = 0;  // tokens, <s> and </s> not counted
  std::vector<int64_t> ngrams;  // written per order (unigrams include <s>, </s> and <unk>)
  std::vector<int64_t> pruned;  // dropped per order
  std::vector<int64_t> prune;   // the thresholds applied per order (raised by max_ngrams)
  std::vector<std::array<double, 3>> discounts;  // per order: D1, D2, D3+
  std::vector<bool> discount_fallback;           // per order: the fallback discounts were used
};

// Called now and then while the text is read, with the bytes read so far.
using LmProgress = std::function<void(uint64_t bytes_read)>;

// Reads `text_path` (plain or gzip; "-": standard input) and writes the ARPA file `arpa_path`
// (written beside it under a temporary name, then renamed: a failed build leaves no partial
// file). Throws ds2rt::Error for bad options, unreadable or empty text, or an unwritable output.
LmBuildStats buildArpa(const std::string& text_path, const std::string& arpa_path, const LmBuildOptions& options,
                       const LmProgress& progress = {});
// The same from text in memory, returning the ARPA text.
std::string buildArpaText(std::string_view text, const LmBuildOptions& options, LmBuildStats* stats = nullptr);

}  // namespace ds2rt
