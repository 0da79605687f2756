// Interpolated modified Kneser-Ney estimation over NGramCounts (the conventions are in
// include/ds2rt/lm_builder.h), and the ARPA text of the result.
#include <algorithm>
#include <charconv>
#include <cmath>

#include "ctc/ngram_counts.h"
#include "ds2rt/error.h"

namespace ds2rt::detail {
namespace {

Gram prefixOf(const Gram& g, int n) {
  Gram p = g;
  p[static_cast<size_t>(n - 1)] = 0;
  return p;
}

Gram suffixOf(const Gram& g, int n) {
  Gram s{};
  std::copy(g.begin() + 1, g.begin() + n, s.begin());
  return s;
}

double discountOf(const std::array<double, 3>& d, uint64_t adjusted) {
  return adjusted == 0 ? 0.0 : d[std::min<uint64_t>(adjusted, 3) - 1];
}

// Highest order and n-grams after <s>: raw counts; others: distinct left extensions.
void adjustCounts(NGramCounts& c) {
  const int order = c.order();
  c.grams[0].try_emplace(Gram{kUnkId});  // in every model, even when the text has no <unk>
  for (int n = 1; n <= order; ++n)
    for (auto& [g, info] : c.grams[static_cast<size_t>(n - 1)])
      info.adjusted = (n == order || g[0] == kBosId) ? info.raw : 0;
  c.grams[0].at(Gram{kBosId}).adjusted = 0;  // <s> is never predicted
  for (int n = 2; n <= order; ++n)
    for (const auto& [g, info] : c.grams[static_cast<size_t>(n - 1)])
      ++c.grams[static_cast<size_t>(n - 2)].at(suffixOf(g, n)).adjusted;
}

std::vector<int64_t> pruneThresholds(const NGramCounts& c, const LmBuildOptions& o) {
  const auto order = static_cast<size_t>(c.order());
  std::vector<int64_t> t(order, 0);
  for (size_t n = 0; n < order && !o.prune.empty(); ++n) t[n] = o.prune[std::min(n, o.prune.size() - 1)];
  if (o.max_ngrams <= 0) return t;

  const auto unigrams = static_cast<int64_t>(c.grams[0].size());
  check(unigrams <= o.max_ngrams, "max_ngrams ", o.max_ngrams, " is below the ", unigrams,
        " unigrams of the text (unigrams are never pruned)");
  std::vector<std::vector<uint64_t>> raw(order);  // sorted raw counts of orders 2 and up
  uint64_t highest = 0;
  for (size_t n = 1; n < order; ++n) {
    for (const auto& [g, info] : c.grams[n]) raw[n].push_back(info.raw);
    std::sort(raw[n].begin(), raw[n].end());
    if (!raw[n].empty()) highest = std::max(highest, raw[n].back());
  }
  const auto total = [&](uint64_t k) {
    int64_t sum = unigrams;
    for (size_t n = 1; n < order; ++n) {
      const uint64_t threshold = std::max(static_cast<uint64_t>(t[n]), k);
      sum += raw[n].end() - std::upper_bound(raw[n].begin(), raw[n].end(), threshold);
    }
    return sum;
  };
  uint64_t lo = 0, hi = highest;  // total(highest) == unigrams: it fits
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (total(mid) <= o.max_ngrams) hi = mid; else lo = mid + 1;
  }
  for (size_t n = 1; n < order; ++n) t[n] = std::max(t[n], static_cast<int64_t>(lo));
  return t;
}

// Pruned n-grams whose longer n-grams are kept (as context or as suffix) are kept too, so that
// the model stays consistent whatever the thresholds.
void markKept(NGramCounts& c, const std::vector<int64_t>& thresholds) {
  const int order = c.order();
  for (int n = 2; n <= order; ++n)
    for (auto& [g, info] : c.grams[static_cast<size_t>(n - 1)])
      info.kept = info.raw > static_cast<uint64_t>(thresholds[static_cast<size_t>(n - 1)]);
  for (int n = order; n >= 2; --n) {
    GramMap& lower = c.grams[static_cast<size_t>(n - 2)];
    for (const auto& [g, info] : c.grams[static_cast<size_t>(n - 1)])
      if (info.kept) lower.at(prefixOf(g, n)).kept = lower.at(suffixOf(g, n)).kept = true;
  }
}

std::string formatLog10(double value) {
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, static_cast<float>(value));
  return std::string(buffer, end);
}

}  // namespace

std::optional<std::array<double, 3>> kneserNeyDiscounts(const std::array<uint64_t, 5>& n) {
  if (n[1] == 0 || n[2] == 0 || n[3] == 0) return std::nullopt;
  const double y = static_cast<double>(n[1]) / (static_cast<double>(n[1]) + 2.0 * static_cast<double>(n[2]));
  std::array<double, 3> d{};
  for (size_t k = 1; k <= 3; ++k) {
    d[k - 1] = static_cast<double>(k) -
               static_cast<double>(k + 1) * y * static_cast<double>(n[k + 1]) / static_cast<double>(n[k]);
    if (!(d[k - 1] > 0.0 && d[k - 1] <= static_cast<double>(k))) return std::nullopt;
  }
  return d;
}

LmBuildStats estimateKneserNey(NGramCounts& c, const LmBuildOptions& options) {
  const int order = c.order();
  const auto orders = static_cast<size_t>(order);
  LmBuildStats stats{.sentences = c.sentences, .words = c.words};
  check(c.words > 0, "no words: the text has no non-blank line");
  adjustCounts(c);
  stats.prune = pruneThresholds(c, options);
  markKept(c, stats.prune);

  for (size_t n = 0; n < orders; ++n) {
    std::array<uint64_t, 5> count_of_counts{};
    for (const auto& [g, info] : c.grams[n])
      if (info.adjusted > 0 && info.adjusted < 5) ++count_of_counts[info.adjusted];
    const auto d = kneserNeyDiscounts(count_of_counts);
    stats.discounts.push_back(d.value_or(options.discount_fallback));
    stats.discount_fallback.push_back(!d);
  }

  // Context sums: over all extensions of a context, pruned ones included (their mass goes to gamma).
  double denominator0 = 0, gamma_numerator0 = 0;  // the empty context of the unigrams
  for (int n = 1; n <= order; ++n) {
    const auto& d = stats.discounts[static_cast<size_t>(n - 1)];
    for (const auto& [g, info] : c.grams[static_cast<size_t>(n - 1)]) {
      if (info.adjusted == 0) continue;
      const auto a = static_cast<double>(info.adjusted);
      const double left = info.kept ? discountOf(d, info.adjusted) : a;
      if (n == 1) {
        denominator0 += a;
        gamma_numerator0 += left;
      } else {
        GramInfo& context = c.grams[static_cast<size_t>(n - 2)].at(prefixOf(g, n));
        context.denominator += a;
        context.gamma_numerator += left;
      }
    }
  }

  // Interpolation, lowest order first: P(w | ctx) = u(w | ctx) + gamma(ctx) P(w | ctx minus its first word).
  const double uniform = 1.0 / static_cast<double>(c.grams[0].size() - 1);  // <unk> and </s> in, <s> out
  for (int n = 1; n <= order; ++n) {
    const auto& d = stats.discounts[static_cast<size_t>(n - 1)];
    int64_t kept = 0, pruned = 0;
    for (auto& [g, info] : c.grams[static_cast<size_t>(n - 1)]) {
      if (!info.kept) {
        ++pruned;
        continue;
      }
      ++kept;
      const double a = static_cast<double>(info.adjusted) - discountOf(d, info.adjusted);
      if (n == 1) {
        info.prob = g[0] == kBosId ? 0.0 : a / denominator0 + gamma_numerator0 / denominator0 * uniform;
      } else {
        const GramMap& lower = c.grams[static_cast<size_t>(n - 2)];
        const GramInfo& context = lower.at(prefixOf(g, n));
        info.prob = (a + context.gamma_numerator * lower.at(suffixOf(g, n)).prob) / context.denominator;
      }
    }
    stats.ngrams.push_back(kept);
    stats.pruned.push_back(pruned);
  }
  return stats;
}

void writeArpa(const NGramCounts& c, std::string& out) {
  const int order = c.order();
  out += "\\data\\\n";
  std::vector<std::vector<const GramMap::value_type*>> sorted(static_cast<size_t>(order));
  for (int n = 1; n <= order; ++n) {
    auto& entries = sorted[static_cast<size_t>(n - 1)];
    for (const auto& entry : c.grams[static_cast<size_t>(n - 1)])
      if (entry.second.kept) entries.push_back(&entry);
    std::sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
    out += cat("ngram ", n, "=", entries.size(), "\n");
  }
  for (int n = 1; n <= order; ++n) {
    out += cat("\n\\", n, "-grams:\n");
    for (const auto* entry : sorted[static_cast<size_t>(n - 1)]) {
      const auto& [g, info] = *entry;
      // Rounding may put a probability of one a hair above it; ARPA wants log10 P <= 0.
      out += n == 1 && g[0] == kBosId ? "-99" : formatLog10(std::min(0.0, std::log10(info.prob)));
      for (int i = 0; i < n; ++i) {
        out += i == 0 ? '\t' : ' ';
        out += c.vocabulary[g[static_cast<size_t>(i)]];
      }
      if (n < order) {
        out += '\t';
        out += info.denominator > 0 ? formatLog10(std::log10(info.gamma_numerator / info.denominator)) : "0";
      }
      out += '\n';
    }
  }
  out += "\n\\end\\\n";
}

}  // namespace ds2rt::detail
