// LanguageModel: scores equal to the kenlm module's on the same ARPA files (fixture made by
// tests/fixtures_src/make_ctc_fixtures.py), gzip input, and a clear Error for malformed files.
#include <gmock/gmock.h>
#include <zlib.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "ds2rt/decoder.h"
#include "ds2rt/error.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

constexpr const char* kSmallArpa = R"(\data\
ngram 1=5
ngram 2=3

\1-grams:
-1.0	<s>	-0.5
-0.7	</s>	0
-1.2	A	-0.3
-1.5	B	-0.2
-2.0	<unk>	0

\2-grams:
-0.3	<s> A
-0.4	A B
-0.2	B </s>

\end\
)";

std::string readText(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void expectArpaError(const std::string& text, std::initializer_list<std::string> parts) {
  try {
    LanguageModel::parseArpa(text, "bad.arpa");
    ADD_FAILURE() << "parsing succeeded:\n" << text;
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_THAT(e.what(), HasSubstr(p));
  }
}

// kSmallArpa with `from` replaced by `to` once.
std::string edited(const std::string& from, const std::string& to) {
  std::string text = kSmallArpa;
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(LanguageModel, ScoresMatchKenlmOnArpaFiles) {
  std::ifstream in(dataPath("lm/kenlm_scores.json"));
  const auto expected = nlohmann::json::parse(in);
  std::map<std::string, LanguageModel> models;
  int checked = 0;
  for (const auto& e : expected) {
    const std::string name = e["lm"];
    if (!models.count(name)) models.emplace(name, LanguageModel::loadArpa(dataPath("lm/" + name)));
    const double score = models.at(name).sentenceScore(e["sentence"].get<std::string>(), e["bos"], e["eos"]);
    EXPECT_NEAR(score, e["log10"].get<double>(), 1e-5) << name << ": '" << e["sentence"] << "'";
    ++checked;
  }
  EXPECT_GE(checked, 60);
}

TEST(LanguageModel, BackoffArithmeticByHand) {
  const LanguageModel lm = LanguageModel::parseArpa(kSmallArpa);
  EXPECT_EQ(lm.order(), 2);
  EXPECT_EQ(lm.vocabularySize(), 2u);
  LanguageModel::State out;
  EXPECT_FLOAT_EQ(lm.score(lm.beginSentence(), "A", out), -0.3f);          // bigram present
  EXPECT_EQ(out.words.size(), 1u);
  EXPECT_FLOAT_EQ(lm.score(out, "A", out), -0.3f + -1.2f);                 // backoff(A) + P(A)
  EXPECT_FLOAT_EQ(lm.score(lm.beginSentence(), "ZEBRA", out), -0.5f + -2.0f);  // backoff(<s>) + P(<unk>)
  EXPECT_FLOAT_EQ(lm.score(lm.nullContext(), "B", out), -1.5f);
  EXPECT_TRUE(lm.contains("A"));
  EXPECT_FALSE(lm.contains("ZEBRA"));
  EXPECT_FALSE(lm.contains("<unk>"));
  EXPECT_TRUE(lm.isWordPrefix("A"));
  EXPECT_FALSE(lm.isWordPrefix("AB"));
}

TEST(LanguageModel, MissingUnkGetsKenlmsDefault) {
  const LanguageModel lm = LanguageModel::loadArpa(dataPath("lm/bigram.arpa"));
  LanguageModel::State out;
  EXPECT_FLOAT_EQ(lm.score(lm.nullContext(), "ZEBRA", out), -100.0f);
  EXPECT_FALSE(lm.contains("ZEBRA"));
  EXPECT_TRUE(lm.isWordPrefix("MORN"));
}

TEST(LanguageModel, ReadsGzipCompressedArpa) {
  const std::string path = tempPath("tiny.arpa.gz");
  const std::string text = readText(dataPath("lm/tiny.arpa"));
  gzFile out = gzopen(path.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(gzwrite(out, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  gzclose(out);
  const LanguageModel gz = LanguageModel::loadArpa(path);
  const LanguageModel plain = LanguageModel::loadArpa(dataPath("lm/tiny.arpa"));
  EXPECT_EQ(gz.sentenceScore("THE CAT SAT"), plain.sentenceScore("THE CAT SAT"));
  std::remove(path.c_str());
}

TEST(LanguageModel, MalformedArpaFilesAreClearErrors) {
  expectArpaError("hello\nworld\n", {"bad.arpa", "no \\data\\ line"});
  expectArpaError(edited("ngram 2=3", "ngram 2=three"), {"bad.arpa:3:", "bad count line 'ngram 2=three'"});
  expectArpaError(edited("ngram 2=3", "ngram 3=3"), {"count line for order 3 where order 2"});
  expectArpaError(edited("ngram 2=3", "ngram 2=4"), {"bad.arpa:16:", "has 3 entries, the \\data\\ section declares 4"});
  expectArpaError(edited("ngram 2=3", "ngram 2=2"), {"more 2-grams than the 2"});
  expectArpaError(edited("ngram 1=5", "ngram 1=6"), {"bad.arpa:11:", "has 5 entries, the \\data\\ section declares 6"});
  expectArpaError(edited("-1.5\tB", "-1.5x\tB"), {"bad.arpa:9:", "probability '-1.5x' is not a number"});
  expectArpaError(edited("B\t-0.2", "B\tnan"), {"backoff 'nan' is not a number"});
  expectArpaError(edited("-0.4\tA B", "-0.4\tA C"), {"word 'C' is not among the unigrams"});
  expectArpaError(edited("-0.4\tA B", "-0.4\tA B -0.1"), {"found 4 field(s)"});
  expectArpaError(edited("-0.4\tA B", "0.4\tA B"), {"positive log10 probability"});
  expectArpaError(edited("-1.5\tB", "-1.5\tA"), {"duplicate unigram 'A'"});
  expectArpaError(edited("-0.7\t</s>\t0\n", ""), {"declares 5"});
  expectArpaError(edited("\n\\end\\\n", "\n"), {"truncated: no \\end\\ line"});
  const std::string full = kSmallArpa;
  expectArpaError(full.substr(0, full.find("<s> A") + 2), {"bad.arpa:13:", "truncated in the middle of a 2-gram line"});
  expectArpaError(full.substr(0, full.find("-1.5\tB")), {"truncated: the \\1-grams: section ends after 3 of 5"});
  expectArpaError("\\data\\\nngram 1=0\n\n\\1-grams:\n\n\\end\\\n", {"empty vocabulary"});
  expectArpaError("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n\n\\end\\\n", {"empty vocabulary"});
  expectArpaError("\\data\\\nngram 1=1\n\n\\1-grams:\n-1\tA\n\n\\end\\\n", {"lack <s>"});
  expectArpaError("\\data\\\n\n\\1-grams:\n", {"no 'ngram N=COUNT' lines"});
}

TEST(LanguageModel, FileErrorsNameTheFile) {
  try {
    LanguageModel::loadArpa("/nonexistent/model.arpa");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/model.arpa"));
  }
  const std::string binary = tempPath("model.binary");
  std::ofstream(binary) << "mmap lm http://kheafield.com/code format version 5\n";
  try {
    LanguageModel::loadArpa(binary);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("KenLM binary model"));
  }
  std::remove(binary.c_str());
}

}  // namespace
}  // namespace ds2rt::test
