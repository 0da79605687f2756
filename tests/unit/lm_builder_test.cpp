// The LM builder: Kneser-Ney probabilities checked against values worked out by hand, every
// context's distribution summing to one (as LanguageModel scores it), pruning that keeps the model
// consistent, the size limit, file handling, and clear errors.
#include <gmock/gmock.h>
#include <zlib.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "ctc/ngram_counts.h"
#include "ds2rt/decoder.h"
#include "ds2rt/error.h"
#include "ds2rt/lm_builder.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

// ARPA text -> {"w1 w2" -> {log10 prob, backoff}} per order.
struct Entry {
  double prob = 0, backoff = 0;
};
std::vector<std::map<std::string, Entry>> parse(const std::string& arpa) {
  std::vector<std::map<std::string, Entry>> orders;
  std::istringstream in(arpa);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line == "\\end\\") continue;
    if (line.front() == '\\') {
      n = line == "\\data\\" ? 0 : line[1] - '0';
      if (n > 0) orders.resize(static_cast<size_t>(n));
      continue;
    }
    if (n == 0) continue;
    std::vector<std::string> fields;
    std::istringstream tabs(line);
    for (std::string field; std::getline(tabs, field, '\t');) fields.push_back(field);
    Entry e{std::stod(fields[0]), fields.size() > 2 ? std::stod(fields[2]) : 0.0};
    orders[static_cast<size_t>(n - 1)][fields[1]] = e;
  }
  return orders;
}

std::vector<std::string> split(const std::string& words) {
  std::istringstream in(words);
  return {std::istream_iterator<std::string>(in), std::istream_iterator<std::string>()};
}

LmBuildOptions withOrder(int order) {
  LmBuildOptions o;
  o.order = order;
  return o;
}

// Every context of the model (each n-gram below the highest order that is not </s> or <unk>):
// sum over the vocabulary of P(w | context) as LanguageModel computes it.
void expectDistributionsSumToOne(const std::string& arpa) {
  const auto orders = parse(arpa);
  const LanguageModel lm = LanguageModel::parseArpa(arpa);
  std::vector<std::string> vocabulary;
  for (const auto& [word, e] : orders[0])
    if (word != "<s>") vocabulary.push_back(word);
  size_t checked = 0;
  for (size_t n = 1; n < orders.size(); ++n)
    for (const auto& [context, e] : orders[n - 1]) {
      const auto words = split(context);
      if (words.back() == "</s>" || words.back() == "<unk>") continue;
      LanguageModel::State state = words.front() == "<s>" ? lm.beginSentence() : lm.nullContext(), next;
      for (size_t i = words.front() == "<s>" ? 1 : 0; i < words.size(); ++i) {
        lm.score(state, words[i], next);
        state = next;
      }
      ASSERT_EQ(state.words.size(), words.size()) << context;
      double sum = 0;
      for (const auto& w : vocabulary) sum += std::pow(10.0, lm.score(state, w, next));
      EXPECT_NEAR(sum, 1.0, 2e-5) << "context '" << context << "'";
      ++checked;
    }
  double unigrams = 0;
  for (const auto& w : vocabulary) unigrams += std::pow(10.0, orders[0].at(w).prob);
  EXPECT_NEAR(unigrams, 1.0, 2e-5);
  if (orders.size() > 1) EXPECT_GT(checked, 0u);
}

// Each n-gram's context (its first n-1 words) and suffix (its last n-1 words) are in the model.
void expectConsistent(const std::string& arpa) {
  const auto orders = parse(arpa);
  for (size_t n = 2; n <= orders.size(); ++n)
    for (const auto& [gram, e] : orders[n - 1]) {
      const std::string prefix = gram.substr(0, gram.rfind(' '));
      const std::string suffix = gram.substr(gram.find(' ') + 1);
      EXPECT_TRUE(orders[n - 2].contains(prefix)) << "context of '" << gram << "'";
      EXPECT_TRUE(orders[n - 2].contains(suffix)) << "suffix of '" << gram << "'";
    }
}

// A corpus with Zipf-like word frequencies, so that the count-of-counts give real discounts.
std::string randomCorpus(int sentences, int vocabulary, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<double> weights;
  for (int i = 1; i <= vocabulary; ++i) weights.push_back(1.0 / i);
  std::discrete_distribution<int> word(weights.begin(), weights.end());
  std::uniform_int_distribution<int> length(1, 9);
  std::string text;
  for (int s = 0; s < sentences; ++s) {
    for (int i = 0, n = length(rng); i < n; ++i) text += cat(i ? " " : "", "w", word(rng));
    text += "\n";
  }
  return text;
}

// Two sentences, "a b" and "a b a"; no order has n-grams seen three times, so every order uses the
// fallback discounts D1 = 0.5, D2 = 1, D3+ = 1.5. Unigram adjusted counts (distinct words before):
// a 2 (<s>, b), b 1, </s> 2, <unk> 0; gamma = (1 + 0.5 + 1) / 5 = 0.5 spread over |V| = 4 words:
//   P(a) = (2 - 1)/5 + 0.5/4 = 0.325, P(b) = 0.5/5 + 0.125 = 0.225, P(</s>) = 0.325, P(<unk>) = 0.125.
constexpr const char* kTwoSentences = "a b\na b a\n";

TEST(LmBuilder, BigramProbabilitiesByHand) {
  LmBuildStats stats;
  const std::string arpa = buildArpaText(kTwoSentences, withOrder(2), &stats);
  const auto orders = parse(arpa);
  const auto p = [&](size_t n, const char* gram) { return std::pow(10.0, orders[n - 1].at(gram).prob); };
  const auto backoff = [&](const char* gram) { return std::pow(10.0, orders[0].at(gram).backoff); };
  EXPECT_NEAR(p(1, "a"), 0.325, 1e-6);
  EXPECT_NEAR(p(1, "b"), 0.225, 1e-6);
  EXPECT_NEAR(p(1, "</s>"), 0.325, 1e-6);
  EXPECT_NEAR(p(1, "<unk>"), 0.125, 1e-6);
  EXPECT_EQ(orders[0].at("<s>").prob, -99);
  // Bigrams (raw counts): <s> a 2, a b 2, a </s> 1, b a 1, b </s> 1. Context a: u(b|a) = (2 - 1)/3,
  // gamma(a) = (D(2) + D(1))/3 = 0.5; context b: u = 0.5/2 each, gamma(b) = 1/2; gamma(<s>) = 1/2.
  EXPECT_NEAR(p(2, "<s> a"), 0.5 + 0.5 * 0.325, 1e-6);
  EXPECT_NEAR(p(2, "a b"), 1.0 / 3 + 0.5 * 0.225, 1e-6);
  EXPECT_NEAR(p(2, "a </s>"), 0.5 / 3 + 0.5 * 0.325, 1e-6);
  EXPECT_NEAR(p(2, "b a"), 0.25 + 0.5 * 0.325, 1e-6);
  EXPECT_NEAR(p(2, "b </s>"), 0.25 + 0.5 * 0.325, 1e-6);
  for (const char* context : {"<s>", "a", "b"}) EXPECT_NEAR(backoff(context), 0.5, 1e-6) << context;
  EXPECT_EQ(orders[0].at("</s>").backoff, 0);
  EXPECT_EQ(orders[1].size(), 5u);

  EXPECT_EQ(stats.sentences, 2);
  EXPECT_EQ(stats.words, 5);
  EXPECT_EQ(stats.ngrams, (std::vector<int64_t>{5, 5}));  // with <s> and <unk>
  EXPECT_EQ(stats.discount_fallback, (std::vector<bool>{true, true}));
  const LanguageModel lm = LanguageModel::parseArpa(arpa);
  EXPECT_NEAR(lm.sentenceScore("a b"), std::log10(0.6625 * 0.4458333333 * 0.4125), 1e-5);
  // An unknown word: P(<unk> | a) = gamma(a) P(<unk>).
  EXPECT_NEAR(lm.sentenceScore("a zzz", true, false), std::log10(0.6625 * 0.5 * 0.125), 1e-5);
  expectDistributionsSumToOne(arpa);
}

TEST(LmBuilder, TrigramProbabilitiesByHand) {
  const std::string arpa = buildArpaText(kTwoSentences, withOrder(3));
  const auto orders = parse(arpa);
  const auto p = [&](size_t n, const char* gram) { return std::pow(10.0, orders[n - 1].at(gram).prob); };
  // Bigram adjusted counts are now distinct words before: a b 1 (<s>), b </s> 1, b a 1, a </s> 1,
  // but <s> a keeps its raw count 2. Context a: {b 1, </s> 1}, gamma 0.5.
  EXPECT_NEAR(p(2, "<s> a"), 0.6625, 1e-6);
  EXPECT_NEAR(p(2, "a b"), 0.25 + 0.5 * 0.225, 1e-6);
  EXPECT_NEAR(p(2, "a </s>"), 0.25 + 0.5 * 0.325, 1e-6);
  EXPECT_NEAR(p(2, "b </s>"), 0.4125, 1e-6);
  // Trigrams (raw counts): <s> a b 2, a b </s> 1, a b a 1, b a </s> 1.
  EXPECT_NEAR(p(3, "<s> a b"), 0.5 + 0.5 * 0.3625, 1e-6);
  EXPECT_NEAR(p(3, "a b </s>"), 0.25 + 0.5 * 0.4125, 1e-6);
  EXPECT_NEAR(p(3, "a b a"), 0.25 + 0.5 * 0.4125, 1e-6);
  EXPECT_NEAR(p(3, "b a </s>"), 0.5 + 0.5 * 0.4125, 1e-6);
  EXPECT_NEAR(std::pow(10.0, orders[1].at("b a").backoff), 0.5, 1e-6);  // (D(1)) / 1
  EXPECT_EQ(orders[1].at("a </s>").backoff, 0);
  const LanguageModel lm = LanguageModel::parseArpa(arpa);
  EXPECT_NEAR(lm.sentenceScore("a b a"), std::log10(0.6625 * 0.68125 * 0.45625 * 0.70625), 1e-5);
  expectDistributionsSumToOne(arpa);
}

TEST(LmBuilder, DiscountsFromCountOfCounts) {
  // Chen & Goodman eq. 26 with n1..n4 = 10, 5, 3, 2: Y = 10 / 20 = 0.5.
  const auto d = detail::kneserNeyDiscounts({0, 10, 5, 3, 2});
  ASSERT_TRUE(d);
  EXPECT_DOUBLE_EQ((*d)[0], 1 - 2 * 0.5 * 5 / 10);
  EXPECT_DOUBLE_EQ((*d)[1], 2 - 3 * 0.5 * 3 / 5);
  EXPECT_DOUBLE_EQ((*d)[2], 3 - 4 * 0.5 * 2 / 3);
  EXPECT_FALSE(detail::kneserNeyDiscounts({0, 10, 5, 0, 2}));   // no n-grams seen three times
  EXPECT_FALSE(detail::kneserNeyDiscounts({0, 1, 10, 1, 50}));  // D out of range

  LmBuildStats stats;
  buildArpaText(randomCorpus(2000, 1000, 1), withOrder(3), &stats);
  EXPECT_EQ(stats.discount_fallback, (std::vector<bool>{false, false, false}));
  for (const auto& d3 : stats.discounts) EXPECT_TRUE(d3[0] > 0 && d3[0] <= 1 && d3[1] > 0 && d3[1] <= 2 && d3[2] > 0 && d3[2] <= 3);
}

TEST(LmBuilder, DistributionsSumToOne) {
  for (int order : {1, 2, 3, 4}) {
    SCOPED_TRACE(cat("order ", order));
    const std::string arpa = buildArpaText(randomCorpus(300, 30, 7), withOrder(order));
    expectDistributionsSumToOne(arpa);
    expectConsistent(arpa);
  }
}

TEST(LmBuilder, PruningKeepsContextsAndSumsToOne) {
  const std::string text = randomCorpus(400, 30, 3);
  LmBuildOptions o = withOrder(4);
  LmBuildStats full, pruned;
  buildArpaText(text, o, &full);
  o.prune = {0, 1, 2};  // the last threshold holds for 4-grams too
  const std::string arpa = buildArpaText(text, o, &pruned);
  EXPECT_EQ(pruned.prune, (std::vector<int64_t>{0, 1, 2, 2}));
  for (size_t n = 1; n < 4; ++n) {
    EXPECT_LT(pruned.ngrams[n], full.ngrams[n]);
    EXPECT_EQ(pruned.ngrams[n] + pruned.pruned[n], full.ngrams[n]);
  }
  EXPECT_EQ(pruned.ngrams[0], full.ngrams[0]);
  expectConsistent(arpa);
  expectDistributionsSumToOne(arpa);
  // Only n-grams seen more often than the threshold survive.
  const auto orders = parse(arpa);
  for (const auto& [gram, e] : orders[2]) {
    const auto g = split(gram);
    if (g.front() == "<s>" || g.back() == "</s>") continue;
    size_t count = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      const auto w = split(line);
      for (size_t i = 0; i + 3 <= w.size(); ++i) count += w[i] == g[0] && w[i + 1] == g[1] && w[i + 2] == g[2];
    }
    EXPECT_GT(count, 2u) << gram;
  }
}

TEST(LmBuilder, SizeLimitRaisesThresholds) {
  const std::string text = randomCorpus(400, 30, 5);
  LmBuildOptions o = withOrder(3);
  LmBuildStats full, limited;
  buildArpaText(text, o, &full);
  const int64_t total = full.ngrams[0] + full.ngrams[1] + full.ngrams[2];
  o.max_ngrams = total / 2;
  const std::string arpa = buildArpaText(text, o, &limited);
  EXPECT_LE(limited.ngrams[0] + limited.ngrams[1] + limited.ngrams[2], o.max_ngrams);
  EXPECT_GT(limited.prune[1], 0);
  EXPECT_EQ(limited.prune[1], limited.prune[2]);
  // The smallest threshold that fits: one less would not.
  LmBuildOptions looser = withOrder(3);
  looser.prune = {0, limited.prune[1] - 1};
  LmBuildStats bigger;
  buildArpaText(text, looser, &bigger);
  EXPECT_GT(bigger.ngrams[0] + bigger.ngrams[1] + bigger.ngrams[2], o.max_ngrams);
  expectConsistent(arpa);
  expectDistributionsSumToOne(arpa);

  o.max_ngrams = full.ngrams[0] - 1;
  EXPECT_THAT(errorOf([&] { buildArpaText(text, o); }), HasSubstr("unigrams are never pruned"));
}

TEST(LmBuilder, TextHandling) {
  LmBuildOptions o = withOrder(2);
  o.text_case = LmBuildOptions::Case::kUpper;
  // Case folding, tabs and blank lines, CRLF, a last line without a newline, markers in the text.
  const std::string arpa = buildArpaText("Hello\thello WORLD\r\n\n   \n<s> hello </s> world", o);
  const auto orders = parse(arpa);
  EXPECT_EQ(orders[0].size(), 5u);  // <unk> <s> </s> HELLO WORLD
  EXPECT_TRUE(orders[1].contains("HELLO HELLO"));
  EXPECT_TRUE(orders[1].contains("<s> HELLO"));
  EXPECT_TRUE(orders[1].contains("WORLD </s>"));
  o.text_case = LmBuildOptions::Case::kLower;
  EXPECT_TRUE(parse(buildArpaText("Hello WORLD", o))[0].contains("world"));
}

TEST(LmBuilder, FilesPlainAndGzip) {
  const std::string text = randomCorpus(50, 10, 9);
  const std::string dir = scratch("lm_builder");
  std::filesystem::create_directories(dir);
  {
    std::unique_ptr<gzFile_s, int (*)(gzFile)> gz(gzopen((dir + "/text.gz").c_str(), "wb"), gzclose);
    gzwrite(gz.get(), text.data(), static_cast<unsigned>(text.size()));
  }
  std::ofstream(dir + "/text.txt") << text;
  std::vector<uint64_t> progress;
  const LmBuildStats stats =
      buildArpa(dir + "/text.gz", dir + "/lm.arpa.gz", withOrder(3), [&](uint64_t bytes) { progress.push_back(bytes); });
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), text.size());
  EXPECT_EQ(stats.sentences, 50);
  buildArpa(dir + "/text.txt", dir + "/lm.arpa", withOrder(3));
  const LanguageModel a = LanguageModel::loadArpa(dir + "/lm.arpa.gz"), b = LanguageModel::loadArpa(dir + "/lm.arpa");
  EXPECT_EQ(a.sentenceScore("w1 w2 w3"), b.sentenceScore("w1 w2 w3"));
  EXPECT_EQ(a.sentenceScore("w1 w2 w3"), LanguageModel::parseArpa(buildArpaText(text, withOrder(3))).sentenceScore("w1 w2 w3"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/lm.arpa.partial"));
}

TEST(LmBuilder, Errors) {
  const std::string dir = scratch("lm_builder_errors");
  std::filesystem::create_directories(dir);
  EXPECT_THAT(errorOf([&] { buildArpaText("", withOrder(3)); }), HasSubstr("no words"));
  EXPECT_THAT(errorOf([&] { buildArpaText(" \n\t\n", withOrder(3)); }), HasSubstr("no words"));
  std::ofstream(dir + "/empty.txt") << "\n\n";
  EXPECT_THAT(errorOf([&] { buildArpa(dir + "/empty.txt", dir + "/out.arpa", {}); }),
              HasSubstr("no words in text '" + dir + "/empty.txt'"));
  EXPECT_THAT(errorOf([&] { buildArpa(dir + "/missing.txt", dir + "/out.arpa", {}); }),
              HasSubstr("cannot open text '" + dir + "/missing.txt'"));
  EXPECT_THAT(errorOf([&] { buildArpa(dir, dir + "/out.arpa", {}); }), HasSubstr("is a directory"));
  std::ofstream(dir + "/text.txt") << "a b\n";
  EXPECT_THAT(errorOf([&] { buildArpa(dir + "/text.txt", dir + "/no/such/dir/out.arpa", {}); }),
              HasSubstr("cannot open '" + dir + "/no/such/dir/out.arpa.partial' for writing"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/out.arpa"));

  const auto bad = [](auto change) {
    LmBuildOptions o;
    change(o);
    return errorOf([&] { o.validate(); });
  };
  EXPECT_THAT(bad([](auto& o) { o.order = 0; }), HasSubstr("order must be 1 to 6, got 0"));
  EXPECT_THAT(bad([](auto& o) { o.order = 7; }), HasSubstr("order must be 1 to 6, got 7"));
  EXPECT_THAT(bad([](auto& o) { o.prune = {1}; }), HasSubstr("unigram prune threshold must be 0"));
  EXPECT_THAT(bad([](auto& o) { o.prune = {0, 2, 1}; }), HasSubstr("must not decrease"));
  EXPECT_THAT(bad([](auto& o) { o.prune = {0, -1}; }), HasSubstr("must not be negative"));
  EXPECT_THAT(bad([](auto& o) { o.prune = {0, 0, 0, 0}; }), HasSubstr("more than the order 3"));
  EXPECT_THAT(bad([](auto& o) { o.max_ngrams = -5; }), HasSubstr("max_ngrams"));
  EXPECT_THAT(bad([](auto& o) { o.discount_fallback[1] = 2.5; }), HasSubstr("D2 must be in (0, 2]"));
  EXPECT_THAT(errorOf([&] { buildArpaText("a", withOrder(9)); }), HasSubstr("order must be"));

  EXPECT_EQ(parsePruneThresholds("0,1,1"), (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(parsePruneThresholds("0 1 2"), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_THAT(errorOf([] { parsePruneThresholds("0,x"); }), HasSubstr("bad prune threshold 'x'"));
  EXPECT_THAT(errorOf([] { parsePruneThresholds(","); }), HasSubstr("no prune thresholds"));
}

}  // namespace
}  // namespace ds2rt::test
