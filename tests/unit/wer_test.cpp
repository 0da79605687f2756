// WER and CER: jiwer's numbers on sample strings (fixture made by
// tests/fixtures_src/make_ctc_fixtures.py) and hand-checked alignments.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "ds2rt/decoder.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

TEST(ErrorRates, MatchJiwerOnSampleStrings) {
  std::ifstream in(dataPath("ctc/wer_jiwer.json"));
  const auto data = nlohmann::json::parse(in);
  EditCounts corpus;
  for (const auto& p : data["pairs"]) {
    const std::string ref = p["reference"], hyp = p["hypothesis"];
    SCOPED_TRACE("'" + ref + "' vs '" + hyp + "'");
    const EditCounts words = wordEdits(ref, hyp);
    const EditCounts chars = charEdits(ref, hyp);
    EXPECT_DOUBLE_EQ(words.rate(), p["wer"].get<double>());
    EXPECT_DOUBLE_EQ(chars.rate(), p["cer"].get<double>());
    EXPECT_EQ(words.errors(), p["word_errors"].get<int64_t>());
    EXPECT_EQ(words.referenceLength(), p["word_reference_length"].get<int64_t>());
    EXPECT_EQ(chars.errors(), p["char_errors"].get<int64_t>());
    EXPECT_EQ(chars.referenceLength(), p["char_reference_length"].get<int64_t>());
    EXPECT_DOUBLE_EQ(wordErrorRate(ref, hyp), words.rate());
    EXPECT_DOUBLE_EQ(charErrorRate(ref, hyp), chars.rate());
    if (!ref.empty()) corpus += words;
  }
  EXPECT_DOUBLE_EQ(corpus.rate(), data["corpus_wer_nonempty_references"].get<double>());
}

TEST(ErrorRates, CountsSubstitutionsDeletionsAndInsertions) {
  const EditCounts e = wordEdits("the cat sat on the mat", "the cat sit on mat");  // one alignment only
  EXPECT_EQ(e.hits, 4);
  EXPECT_EQ(e.substitutions, 1);
  EXPECT_EQ(e.deletions, 1);
  EXPECT_EQ(e.insertions, 0);
  EXPECT_DOUBLE_EQ(e.rate(), 2.0 / 6.0);
  const EditCounts i = wordEdits("a b", "a x b y");
  EXPECT_EQ(i.hits, 2);
  EXPECT_EQ(i.insertions, 2);
  EXPECT_DOUBLE_EQ(i.rate(), 1.0);
  EXPECT_DOUBLE_EQ(wordErrorRate("a b", "a b"), 0.0);
  EXPECT_DOUBLE_EQ(wordErrorRate("a b", ""), 1.0);
  EXPECT_DOUBLE_EQ(wordErrorRate("", "a b c"), 3.0);  // jiwer: an empty reference rates its insertions
  EXPECT_DOUBLE_EQ(charErrorRate("", ""), 0.0);
  EXPECT_DOUBLE_EQ(charErrorRate("abc", "abd"), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(charErrorRate("wörld", "world"), 1.0 / 5.0);  // code points, not bytes
  EXPECT_DOUBLE_EQ(charErrorRate(" a b ", "ab"), 1.0 / 3.0);     // strip, inner space counts
}

}  // namespace
}  // namespace ds2rt::test
