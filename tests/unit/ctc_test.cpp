// CTC decoding: greedy offsets, beam search against pyctcdecode (committed fixtures made by
// tests/fixtures_src/make_ctc_fixtures.py), LM and hotword effects, word times, bad input.
#include <gmock/gmock.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ds2rt/decoder.h"
#include "ds2rt/error.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

std::vector<std::string> deepSpeechLabels() {
  std::vector<std::string> labels = {"_", "'"};
  for (char c = 'A'; c <= 'Z'; ++c) labels.emplace_back(1, c);
  labels.emplace_back(" ");
  return labels;
}

DecoderConfig baseConfig() {
  DecoderConfig config;
  config.labels = deepSpeechLabels();
  return config;
}

int labelOf(char c) {
  const auto labels = deepSpeechLabels();
  return static_cast<int>(std::find(labels.begin(), labels.end(), std::string(1, c)) - labels.begin());
}

// One frame per character of `path` ('_' is blank): the character gets `peak`, the rest share what is left.
std::vector<float> peakedFrames(const std::string& path, float peak = 0.9f) {
  const size_t classes = deepSpeechLabels().size();
  std::vector<float> values;
  for (char c : path) {
    std::vector<float> row(classes, (1.0f - peak) / static_cast<float>(classes - 1));
    row[static_cast<size_t>(labelOf(c))] = peak;
    values.insert(values.end(), row.begin(), row.end());
  }
  return values;
}

Posteriors view(const std::vector<float>& values, int64_t classes = 29) {
  return {values, static_cast<int64_t>(values.size()) / classes, classes};
}

template <typename F>
void expectError(F&& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << part << "'";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(part));
  }
}

// ---- greedy -------------------------------------------------------------------------------------

TEST(CtcGreedy, CollapsesRepeatsDropsBlanksAndKeepsFrameOffsets) {
  const CtcDecoder decoder(baseConfig());
  const auto values = peakedFrames("__HHE_LL_LLO__  _WW_ORLD_ ");
  const Hypothesis h = decoder.greedy(view(values));
  EXPECT_EQ(h.text, "HELLO WORLD");
  ASSERT_EQ(h.chars.size(), 11u);
  EXPECT_EQ(h.chars[0].label, labelOf('H'));
  EXPECT_EQ(h.chars[0].start_frame, 2);
  EXPECT_EQ(h.chars[0].end_frame, 4);
  EXPECT_EQ(h.chars[2].start_frame, 6);  // first L, two frames
  EXPECT_EQ(h.chars[2].end_frame, 8);
  EXPECT_EQ(h.chars[3].start_frame, 9);  // second L after a blank
  EXPECT_EQ(h.chars[5].label, labelOf(' '));
  ASSERT_EQ(h.words.size(), 2u);
  EXPECT_EQ(h.words[0].text, "HELLO");
  EXPECT_EQ(h.words[0].start_frame, 2);
  EXPECT_EQ(h.words[0].end_frame, 12);
  EXPECT_EQ(h.words[1].text, "WORLD");
  EXPECT_EQ(h.words[1].start_frame, 17);
  EXPECT_NEAR(h.words[1].start_seconds, 17 * 0.02, 1e-12);
  EXPECT_NEAR(h.words[1].end_seconds, 24 * 0.02, 1e-12);
  EXPECT_NEAR(h.words[0].confidence, 0.9f, 1e-6);
  EXPECT_NEAR(h.confidence, 0.9f, 1e-6);
  EXPECT_NEAR(h.acoustic_score, values.size() / 29 * std::log(0.9), 1e-4);
}

// Two pieces of one recording decoded apart: one hypothesis, frames and times from its start.
TEST(CtcJoin, PiecesJoinIntoOneHypothesisWithShiftedTimes) {
  DecoderConfig config = baseConfig();
  config.frame_seconds = 0.02;
  const CtcDecoder decoder(config);
  const auto a = peakedFrames("_HI_ _YOU__"), b = peakedFrames("__THERE_");
  const Hypothesis first = decoder.greedy(view(a)), second = decoder.greedy(view(b));
  const Hypothesis joined = joinHypotheses(std::vector{first, second}, std::vector{0.0, 3.0}, config);
  EXPECT_EQ(joined.text, "HI YOU THERE");
  ASSERT_EQ(joined.words.size(), 3u);
  EXPECT_EQ(joined.words[1].start_frame, first.words[1].start_frame);
  EXPECT_EQ(joined.words[2].start_frame, second.words[0].start_frame + 150);  // 3 s of 20 ms frames
  EXPECT_DOUBLE_EQ(joined.words[2].start_seconds, second.words[0].start_seconds + 3.0);
  EXPECT_DOUBLE_EQ(joined.words[2].end_seconds, second.words[0].end_seconds + 3.0);
  EXPECT_EQ(joined.chars.size(), first.chars.size() + 1 + second.chars.size());  // + the space between
  EXPECT_EQ(joined.chars[first.chars.size()].label, labelOf(' '));
  EXPECT_DOUBLE_EQ(joined.score, first.score + second.score);
  EXPECT_NEAR(joined.confidence,
              (first.words[0].confidence + first.words[1].confidence + second.words[0].confidence) / 3, 1e-6);
  // An empty piece adds nothing, not even a space; one piece is itself.
  const Hypothesis silence = decoder.greedy(view(peakedFrames("____")));
  EXPECT_EQ(joinHypotheses(std::vector{first, silence, second}, std::vector{0.0, 2.0, 3.0}, config).text,
            "HI YOU THERE");
  EXPECT_EQ(joinHypotheses(std::vector{second}, std::vector{0.0}, config).text, "THERE");
  expectError([&] { joinHypotheses(std::vector{first}, std::vector{0.0, 1.0}, config); }, "1 hypotheses but 2 offsets");
  config.frame_seconds = 0;
  expectError([&] { joinHypotheses(std::vector{first}, std::vector{0.0}, config); }, "no frame duration");
}

TEST(CtcGreedy, ConfidenceIsMeanOfPerLabelMaximumPosteriors) {
  auto values = peakedFrames("AA_B", 0.9f);
  values[static_cast<size_t>(labelOf('A'))] = 0.6f;  // frame 0: A at 0.6, frame 1: A at 0.9 -> A keeps 0.9
  values[3 * 29 + static_cast<size_t>(labelOf('B'))] = 0.5f;
  const Hypothesis h = CtcDecoder(baseConfig()).greedy(view(values));
  ASSERT_EQ(h.text, "AB");
  EXPECT_NEAR(h.chars[0].confidence, 0.9f, 1e-6);
  EXPECT_NEAR(h.chars[1].confidence, 0.5f, 1e-6);
  EXPECT_NEAR(h.words[0].confidence, 0.7f, 1e-6);
}

TEST(CtcGreedy, BatchHonoursLengthsAndFrameDuration) {
  DecoderConfig config = baseConfig();
  config.frame_seconds = 0.04;
  const auto a = peakedFrames("_HI_ ___");
  const auto b = peakedFrames("OK__AAAA");  // frames past its length (4) are ignored
  std::vector<float> both(a);
  both.insert(both.end(), b.begin(), b.end());
  const auto probs = HostTensor::fromFloats({2, 8, 29}, both);
  const auto lengths = HostTensor::fromInts({2}, {8, 4});
  const auto out = CtcDecoder(config).greedy(probs, lengths);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].text, "HI");
  EXPECT_NEAR(out[0].words[0].end_seconds, 3 * 0.04, 1e-12);
  EXPECT_EQ(out[1].text, "OK");
}

TEST(CtcGreedy, AcceptsLogProbabilities) {
  DecoderConfig config = baseConfig();
  config.input = PosteriorKind::kLogProbabilities;
  auto values = peakedFrames("_C_AT");
  for (float& v : values) v = std::log(v);
  EXPECT_EQ(CtcDecoder(config).greedy(view(values)).text, "CAT");
}

// ---- beam search: behaviour -----------------------------------------------------------------------

TEST(CtcBeamSearch, AgreesWithGreedyOnPeakedInputAndGivesNBest) {
  DecoderConfig config = baseConfig();
  config.beam.nbest = 5;
  const auto values = peakedFrames("_TH_E__ _CC_A_T_", 0.8f);
  const CtcDecoder decoder(config);
  const auto nbest = decoder.beamSearch(view(values));
  ASSERT_EQ(nbest.size(), 5u);
  EXPECT_EQ(nbest[0].text, decoder.greedy(view(values)).text);
  for (size_t i = 1; i < nbest.size(); ++i) {
    EXPECT_LE(nbest[i].score, nbest[i - 1].score);
    EXPECT_NE(nbest[i].text, nbest[0].text);
  }
  // Without an LM the ranking score is the prefix probability itself (all paths summed).
  EXPECT_DOUBLE_EQ(nbest[0].score, nbest[0].acoustic_score);
  EXPECT_GT(nbest[0].acoustic_score, decoder.greedy(view(values)).acoustic_score);
  ASSERT_EQ(nbest[0].words.size(), 2u);
  EXPECT_EQ(nbest[0].words[1].text, "CAT");
  EXPECT_EQ(nbest[0].words[1].start_frame, 9);
  EXPECT_EQ(nbest[0].words[1].end_frame, 15);
}

TEST(CtcBeamSearch, EmptyInputGivesEmptyText) {
  const std::vector<float> none;
  const auto nbest = CtcDecoder(baseConfig()).beamSearch(view(none));
  ASSERT_EQ(nbest.size(), 1u);
  EXPECT_EQ(nbest[0].text, "");
  EXPECT_TRUE(nbest[0].words.empty());
  EXPECT_EQ(CtcDecoder(baseConfig()).greedy(view(none)).text, "");
}

// "THE KAT SAT": K is a little more likely than C acoustically; the LM knows CAT, not KAT.
std::vector<float> katFrames() {
  auto values = peakedFrames("_THE_ _KAT_ _SAT_", 0.85f);
  const size_t k_frame = 7;
  values[k_frame * 29 + static_cast<size_t>(labelOf('K'))] = 0.48f;
  values[k_frame * 29 + static_cast<size_t>(labelOf('C'))] = 0.42f;
  return values;
}

TEST(CtcBeamSearch, LanguageModelMovesOutputToInVocabularyWords) {
  const auto values = katFrames();
  const LanguageModel lm = LanguageModel::loadArpa(dataPath("lm/tiny.arpa"));
  DecoderConfig config = baseConfig();
  const std::string without = CtcDecoder(config).beamSearch(view(values))[0].text;
  const Hypothesis with = CtcDecoder(config, lm).beamSearch(view(values))[0];
  EXPECT_EQ(without, "THE KAT SAT");
  EXPECT_EQ(with.text, "THE CAT SAT");
  for (const auto& w : with.words) EXPECT_TRUE(lm.contains(w.text)) << w.text;
  EXPECT_FALSE(lm.contains("KAT"));
  EXPECT_LT(with.acoustic_score, CtcDecoder(config).beamSearch(view(values))[0].acoustic_score);

  config.beam.alpha = 0.0;  // no LM weight (beta alone favours neither): the acoustics win again
  config.beam.beta = 0.0;
  config.beam.unk_score_offset = 0.0;
  EXPECT_EQ(CtcDecoder(config, lm).beamSearch(view(values))[0].text, "THE KAT SAT");
}

TEST(CtcBeamSearch, HotwordBoostsAreAppliedPerWord) {
  const auto values = katFrames();
  DecoderConfig config = baseConfig();
  config.beam.hotwords = {parseHotword("CAT:4"), parseHotword("KAT:0.5")};
  EXPECT_EQ(CtcDecoder(config).beamSearch(view(values))[0].text, "THE CAT SAT");
  config.beam.hotwords = {parseHotword("CAT:0.05")};
  EXPECT_EQ(CtcDecoder(config).beamSearch(view(values))[0].text, "THE KAT SAT");
  // A hotword's boost counts once per occurrence of the completed word.
  config.beam.hotwords = {parseHotword("SAT:3")};
  const auto boosted = CtcDecoder(config).beamSearch(view(values))[0];
  EXPECT_NEAR(boosted.score - boosted.acoustic_score, 3.0, 1e-9);
}

TEST(CtcBeamSearch, CutoffTopNLimitsCandidateLabels) {
  const auto values = katFrames();
  DecoderConfig config = baseConfig();
  config.beam.hotwords = {parseHotword("CAT:4")};
  config.beam.cutoff_top_n = 1;  // only the best label per frame: C can never be chosen
  EXPECT_EQ(CtcDecoder(config).beamSearch(view(values))[0].text, "THE KAT SAT");
  config.beam.cutoff_top_n = 40;
  config.beam.cutoff_prob = 0.45;  // K (0.48) alone reaches 0.45
  EXPECT_EQ(CtcDecoder(config).beamSearch(view(values))[0].text, "THE KAT SAT");
  config.beam.cutoff_prob = 0.95;
  EXPECT_EQ(CtcDecoder(config).beamSearch(view(values))[0].text, "THE CAT SAT");
}

TEST(CtcBeamSearch, BatchFormMatchesSingleUtterances) {
  const auto a = katFrames();
  auto b = peakedFrames("_D_OG_", 0.9f);
  b.resize(a.size(), 0.0f);
  for (size_t t = 6; t < a.size() / 29; ++t) b[t * 29] = 1.0f;
  std::vector<float> both(a);
  both.insert(both.end(), b.begin(), b.end());
  const int64_t frames = static_cast<int64_t>(a.size() / 29);
  const CtcDecoder decoder(baseConfig());
  const auto out = decoder.beamSearch(HostTensor::fromFloats({2, frames, 29}, both),
                                      HostTensor::fromInts({2}, {static_cast<int32_t>(frames), 6}));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0][0].text, "THE KAT SAT");
  EXPECT_EQ(out[1][0].text, "DOG");
}

// ---- beam search: cross-check against pyctcdecode ---------------------------------------------------

struct CrossCheckResult {
  int cases = 0;
  int best_text_agrees = 0;
  int nbest_agrees = 0;  // the best ten: texts in order, scores and acoustic scores within 1e-4
  int word_boundaries = 0;
  int word_boundaries_equal = 0;
  int max_boundary_difference = 0;  // in frames
};

// Word frames are compared, not required equal: ds2rt keeps the most probable path of a merge,
// pyctcdecode the last one merged.
void compareWords(const Hypothesis& h, const nlohmann::json& expected, CrossCheckResult& r) {
  ASSERT_EQ(h.words.size(), expected.size());
  for (size_t w = 0; w < h.words.size(); ++w) {
    EXPECT_EQ(h.words[w].text, expected[w][0].get<std::string>());
    for (const auto& [ours, theirs] : {std::pair{h.words[w].start_frame, expected[w][1].get<int>()},
                                       std::pair{h.words[w].end_frame, expected[w][2].get<int>()}}) {
      ++r.word_boundaries;
      r.word_boundaries_equal += ours == theirs;
      r.max_boundary_difference = std::max(r.max_boundary_difference, std::abs(ours - theirs));
    }
  }
}

CrossCheckResult crossCheck(const std::string& file, const LanguageModel* lm) {
  std::ifstream in(dataPath("ctc/" + file));
  const auto data = nlohmann::json::parse(in);
  CrossCheckResult result;
  for (const auto& c : data["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    DecoderConfig config = baseConfig();
    config.labels = data["labels"].get<std::vector<std::string>>();
    config.beam.beam_width = c["beam_width"];
    config.beam.nbest = c["beam_width"];
    config.beam.beam_prune_logp = c["beam_prune_logp"];
    config.beam.token_min_logp = c["token_min_logp"];
    if (c.contains("alpha")) {
      config.beam.alpha = c["alpha"];
      config.beam.beta = c["beta"];
      config.beam.lm_score_boundary = c["lm_score_boundary"];
    }
    if (c.contains("hotwords"))
      for (const auto& h : c["hotwords"]) config.beam.hotwords.push_back({h[0], h[1]});
    std::vector<float> values;
    for (const auto& row : data["posteriors"][c["posteriors"].get<size_t>()])
      for (const auto& k : row) values.push_back(static_cast<float>(k.get<int>() / 10000.0));

    const auto nbest = (lm ? CtcDecoder(config, *lm) : CtcDecoder(config)).beamSearch(view(values));
    const auto& expected = c["expected"];
    ++result.cases;
    EXPECT_GE(nbest.size(), expected.size());
    if (nbest.empty()) continue;
    result.best_text_agrees += nbest[0].text == expected[0]["text"];
    bool all = nbest.size() >= expected.size();
    for (size_t i = 0; i < std::min(nbest.size(), expected.size()); ++i) {
      const auto& e = expected[i];
      const Hypothesis& h = nbest[i];
      const bool same = h.text == e["text"] && std::abs(h.score - e["score"].get<double>()) < 1e-4 &&
                        std::abs(h.acoustic_score - e["logit_score"].get<double>()) < 1e-4;
      EXPECT_TRUE(same) << "beam " << i << ": '" << h.text << "' " << h.score << " vs '" << e["text"] << "' " << e["score"];
      all = all && same;
      if (same) compareWords(h, e["word_frames"], result);
    }
    result.nbest_agrees += all;
  }
  std::cout << file << ": " << result.cases << " cases, best text equal in " << result.best_text_agrees
            << ", N-best equal in " << result.nbest_agrees << "; word boundaries equal " << result.word_boundaries_equal
            << "/" << result.word_boundaries << " (max difference " << result.max_boundary_difference << " frames)\n";
  return result;
}

TEST(CtcBeamSearch, MatchesPyctcdecodeWithoutLanguageModel) {
  const CrossCheckResult r = crossCheck("beam_nolm.json", nullptr);
  EXPECT_EQ(r.cases, 29);
  EXPECT_EQ(r.best_text_agrees, r.cases);
  EXPECT_EQ(r.nbest_agrees, r.cases);
  EXPECT_LE(r.max_boundary_difference, 6);  // a sanity bound: same words, nearby frames
}

TEST(CtcBeamSearch, MatchesPyctcdecodeWithKenlmOnArpa) {
  const LanguageModel lm = LanguageModel::loadArpa(dataPath("lm/tiny.arpa"));
  const CrossCheckResult r = crossCheck("beam_lm.json", &lm);
  EXPECT_EQ(r.cases, 13);
  EXPECT_EQ(r.best_text_agrees, r.cases);
  EXPECT_EQ(r.nbest_agrees, r.cases);
  EXPECT_LE(r.max_boundary_difference, 6);  // a sanity bound: same words, nearby frames
}

// ---- bad input -------------------------------------------------------------------------------------

TEST(CtcBadInput, WrongShapesLabelCountsAndValuesAreClearErrors) {
  const CtcDecoder decoder(baseConfig());
  const auto values = peakedFrames("_A_");
  expectError([&] { decoder.greedy(view(values, 28)); }, "label count mismatch");
  expectError([&] { decoder.beamSearch(Posteriors{values, 4, 29}); }, "do not make 4 frames");
  auto nan = values;
  nan[30] = std::nanf("");
  expectError([&] { decoder.beamSearch(view(nan)); }, "NaN posterior at frame 1, class 1");
  auto negative = values;
  negative[5] = -0.5f;
  expectError([&] { decoder.greedy(view(negative)); }, "outside [0, 1]");
  auto logits = values;
  logits[2] = 7.0f;
  expectError([&] { decoder.greedy(view(logits)); }, "kLogProbabilities");

  const auto probs = HostTensor::fromFloats({1, 3, 29}, values);
  expectError([&] { decoder.greedy(probs.reshaped({3, 29}), HostTensor::fromInts({1}, {3})); }, "N x T x C");
  expectError([&] { decoder.greedy(HostTensor::fromFloats({1, 3, 28}, std::vector<float>(84, 0.1f)),
                                   HostTensor::fromInts({1}, {3})); },
              "28 classes but the decoder has 29 labels");
  expectError([&] { decoder.greedy(probs, HostTensor::fromInts({2}, {3, 3})); }, "lengths must have shape [1]");
  expectError([&] { decoder.beamSearch(probs, HostTensor::fromInts({1}, {4})); }, "length 4 of utterance 0");
}

TEST(CtcBadInput, InvalidConfigurationsAreRejected) {
  const auto build = [](auto edit) {
    DecoderConfig config = baseConfig();
    edit(config);
    CtcDecoder decoder(config);
  };
  expectError([&] { build([](DecoderConfig& c) { c.labels = {"_"}; }); }, "at least two labels");
  expectError([&] { build([](DecoderConfig& c) { c.blank_index = 29; }); }, "blank_index 29");
  expectError([&] { build([](DecoderConfig& c) { c.labels[5] = "A"; }); }, "'A' appears twice");
  expectError([&] { build([](DecoderConfig& c) { c.frame_seconds = 0; }); }, "frame_seconds");
  expectError([&] { build([](DecoderConfig& c) { c.beam.beam_width = 0; }); }, "beam_width");
  expectError([&] { build([](DecoderConfig& c) { c.beam.cutoff_prob = 1.5; }); }, "cutoff_prob");
  expectError([&] { build([](DecoderConfig& c) { c.beam.alpha = NAN; }); }, "finite");
  expectError([&] { build([](DecoderConfig& c) { c.beam.hotwords = {{" ", 1.0}}; }); }, "hotword is empty");
}

TEST(CtcHotwords, ParsesWordColonBoost) {
  EXPECT_EQ(parseHotword("ZEBRA:2.5").word, "ZEBRA");
  EXPECT_EQ(parseHotword("ZEBRA:2.5").boost, 2.5);
  EXPECT_EQ(parseHotword("ZEBRA").boost, 10.0);
  EXPECT_EQ(parseHotword("NEW YORK:-1").boost, -1.0);
  expectError([] { parseHotword("ZEBRA:lots"); }, "is not a number");
  expectError([] { parseHotword("ZEBRA:"); }, "is not a number");
  expectError([] { parseHotword(":3"); }, "no word");
}

}  // namespace
}  // namespace ds2rt::test
