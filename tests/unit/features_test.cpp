// Features: parity with deepspeech.pytorch's reference pipeline on real (synthesised) speech at
// 8, 16, 44.1 and 48 kHz (fixtures from tests/fixtures_src/make_audio_fixtures.py), windows,
// frame counts, normalisation options and batching.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ds2rt/audio.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "ds2rt/weights.h"
#include "test_util.h"

namespace ds2rt {
namespace {

using test::dataPath;
using test::errorOf;
using test::relativeL2;
using test::toVector;
using testing::HasSubstr;

const WeightStore& expectedFeatures() {
  static const WeightStore store = WeightStore::load(dataPath("audio/expected_features.safetensors"));
  return store;
}

// ||ours - reference|| / ||reference|| for the reference tensor `name` (bins x T).
double parityError(const HostTensor& ours, const std::string& name) {
  const HostTensor& reference = expectedFeatures().get(name);
  EXPECT_EQ(ours.shape(), (Shape{1, 1, reference.dim(0), reference.dim(1)})) << name;
  if (ours.size() != reference.size()) return INFINITY;
  return relativeL2(toVector(ours), toVector(reference));
}


double expectParity(const HostTensor& ours, const std::string& name) {
  const double error = parityError(ours, name);
  std::printf("  %-24s relative L2 %.2e\n", name.c_str(), error);
  EXPECT_LT(error, 1e-4) << name;
  return error;
}

class FeatureParity : public testing::TestWithParam<const char*> {};

TEST_P(FeatureParity, MatchesDeepSpeechPytorch) {
  const std::string file = GetParam();
  const FeatureExtractor extractor{FeatureConfig{}};
  const HostTensor features = extractor.compute(loadAudio(dataPath("audio/" + file), 16000));
  RecordProperty("relative_l2", std::to_string(expectParity(features, file.substr(0, file.find('.')))));
}

// 16-bit 16 kHz files compare with deepspeech.pytorch's own code; the others with the same
// features of python-soxr (HQ) resampled audio (see the fixture script).
INSTANTIATE_TEST_SUITE_P(Files, FeatureParity,
                         testing::Values("hello_16k.wav", "door_16k.wav", "numbers_16k.flac", "stereo_16k.wav",
                                         "hello_16k_s24.wav", "door_16k_f32.wav", "hello_8k.wav", "door_44k.wav",
                                         "numbers_48k.wav"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

TEST(Features, VariantsMatchTheirReferences) {
  const Audio audio = loadAudio(dataPath("audio/hello_16k.wav"), 16000);
  const FeatureExtractor standard{FeatureConfig{}};
  // A cut through the speech, where the padding matters (the files begin and end in silence).
  const std::span<const float> cut = std::span(audio.samples).subspan(3000, 8000);
  expectParity(standard.compute(cut), "hello_16k.mid");
  FeatureConfig constant;
  constant.pad_mode = PadMode::kConstant;  // librosa >= 0.9
  expectParity(FeatureExtractor(constant).compute(cut), "hello_16k.mid.constant");
  FeatureConfig symmetric;
  symmetric.symmetric_window = true;  // scipy.signal.hamming(n) passed to librosa as a function
  expectParity(FeatureExtractor(symmetric).compute(cut), "hello_16k.mid.symmetric");
  FeatureConfig raw;
  raw.normalization = Normalization::kNone;
  expectParity(FeatureExtractor(raw).compute(cut), "hello_16k.mid.raw");
  // Each option really changes the result.
  EXPECT_GT(parityError(standard.compute(cut), "hello_16k.mid.constant"), 1e-3);
  EXPECT_GT(parityError(standard.compute(cut), "hello_16k.mid.symmetric"), 1e-3);

  // deepspeech.pytorch's own features of a 24-bit file (its int16 read drops the low bits).
  const Audio s24 = loadAudio(dataPath("audio/hello_16k_s24.wav"), 16000);
  FeatureConfig truncated;
  truncated.truncate_to_int16 = true;
  expectParity(FeatureExtractor(truncated).compute(s24), "hello_16k_s24.int16");
  EXPECT_GT(parityError(standard.compute(s24), "hello_16k_s24.int16"), 1e-4);
  // 16-bit audio is on the grid already.
  EXPECT_EQ(toVector(FeatureExtractor(truncated).compute(audio)), toVector(standard.compute(audio)));
}

TEST(Features, WindowsAreScipys) {
  const auto near = [](const std::vector<double>& a, const std::vector<double>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-12) << i;
  };
  // scipy.signal.get_window(name, 4) (periodic) and scipy.signal.windows.<name>(n) (symmetric).
  near(makeWindow(WindowType::kHamming, 4, false), {0.08, 0.54, 1.0, 0.54});
  near(makeWindow(WindowType::kHamming, 4, true), {0.08, 0.77, 0.77, 0.08});
  near(makeWindow(WindowType::kHann, 4, false), {0.0, 0.5, 1.0, 0.5});
  near(makeWindow(WindowType::kBlackman, 3, true), {0.0, 1.0, 0.0});
  near(makeWindow(WindowType::kBlackman, 4, false), {0.0, 0.34, 1.0, 0.34});
  near(makeWindow(WindowType::kBartlett, 5, true), {0.0, 0.5, 1.0, 0.5, 0.0});
  near(makeWindow(WindowType::kBartlett, 4, false), {0.0, 0.5, 1.0, 0.5});
  EXPECT_EQ(windowTypeFromString("blackman"), WindowType::kBlackman);
  EXPECT_THAT(errorOf([] { windowTypeFromString("kaiser"); }), HasSubstr("unknown window 'kaiser'"));
}

TEST(Features, SizesFollowDeepSpeechPytorch) {
  const FeatureConfig config;
  EXPECT_EQ(config.fftSize(), 320);
  EXPECT_EQ(config.hopSize(), 160);
  EXPECT_EQ(config.bins(), 161);
  EXPECT_EQ(config.frames(16000), 101);  // centred: 1 + len / hop
  EXPECT_EQ(config.frames(1), 1);
  EXPECT_EQ(config.frames(0), 0);
  FeatureConfig uncentred;
  uncentred.center = false;
  EXPECT_EQ(uncentred.frames(16000), 99);
  EXPECT_EQ(uncentred.frames(319), 0);

  SpectrogramConfig spect;
  spect.sample_rate = 8000;
  spect.window = "hann";
  const FeatureConfig from_model = FeatureConfig::fromSpectrogramConfig(spect);
  EXPECT_EQ(from_model.fftSize(), 160);
  EXPECT_EQ(from_model.bins(), spect.frequencyBins());
  EXPECT_EQ(from_model.window, WindowType::kHann);
  const HostTensor x = FeatureExtractor(from_model).compute(std::vector<float>(8000, 0.1f));
  EXPECT_EQ(x.shape(), (Shape{1, 1, 81, 101}));  // hop 80
  spect.window = "rectangular";
  EXPECT_THAT(errorOf([&] { FeatureConfig::fromSpectrogramConfig(spect); }), HasSubstr("unknown window"));
}

TEST(Features, EdgeCases) {
  const FeatureExtractor extractor{FeatureConfig{}};
  EXPECT_THAT(errorOf([&] { extractor.compute(std::vector<float>{}); }), HasSubstr("too short"));
  // Shorter than the reflect padding: numpy's repeated reflection, one frame, finite values.
  const HostTensor tiny = extractor.compute(std::vector<float>{0.1f, -0.2f, 0.3f});
  EXPECT_EQ(tiny.shape(), (Shape{1, 1, 161, 1}));
  for (float v : toVector(tiny)) EXPECT_TRUE(std::isfinite(v));
  // Digital silence has std 0 (torch would give NaN): all zeros here.
  for (float v : toVector(extractor.compute(std::vector<float>(1600, 0.0f)))) ASSERT_EQ(v, 0.0f);
  // Per-utterance normalisation: mean 0, unbiased std 1.
  const std::vector<float> v = toVector(extractor.compute(loadAudio(dataPath("audio/door_16k.wav"), 16000)));
  double sum = 0, squares = 0;
  for (float x : v) sum += x;
  for (float x : v) squares += (x - sum / v.size()) * (x - sum / v.size());
  EXPECT_NEAR(sum / v.size(), 0.0, 1e-6);
  EXPECT_NEAR(std::sqrt(squares / (v.size() - 1)), 1.0, 1e-5);
  EXPECT_THAT(errorOf([&] { extractor.compute(Audio{{0.1f, 0.2f}, 8000}); }), HasSubstr("audio at 8000 Hz"));
  FeatureConfig bad;
  bad.window_size = 0.0001;
  EXPECT_THAT(errorOf([&] { FeatureExtractor{bad}; }), HasSubstr("under 2 samples"));
}

TEST(Features, GlobalNormalisation) {
  const Audio audio = loadAudio(dataPath("audio/hello_16k.wav"), 16000);
  FeatureConfig raw;
  raw.normalization = Normalization::kNone;
  const std::vector<float> plain = toVector(FeatureExtractor(raw).compute(audio));

  const std::string json = test::tempPath("stats.json");
  std::ofstream(json) << R"({"mean": 0.25, "std": 2.0})";
  FeatureConfig global;
  global.loadGlobalStats(json);
  EXPECT_EQ(global.normalization, Normalization::kGlobal);
  const std::vector<float> normalised = toVector(FeatureExtractor(global).compute(audio));
  for (size_t i = 0; i < plain.size(); ++i) ASSERT_FLOAT_EQ(normalised[i], (plain[i] - 0.25f) / 2.0f);

  std::vector<float> per_bin_mean(161), per_bin_std(161);
  for (int f = 0; f < 161; ++f) per_bin_mean[f] = 0.01f * f, per_bin_std[f] = 1.0f + 0.1f * f;
  WeightStore store;
  store.set("mean", HostTensor::fromFloats({161}, per_bin_mean));
  store.set("std", HostTensor::fromFloats({161}, per_bin_std));
  const std::string tensors = test::tempPath("stats.safetensors");
  store.save(tensors);
  FeatureConfig per_bin;
  per_bin.loadGlobalStats(tensors);
  const std::vector<float> by_bin = toVector(FeatureExtractor(per_bin).compute(audio));
  const size_t frames = plain.size() / 161;
  for (size_t i = 0; i < plain.size(); ++i)
    ASSERT_FLOAT_EQ(by_bin[i], (plain[i] - per_bin_mean[i / frames]) / per_bin_std[i / frames]);

  std::ofstream(json) << R"({"mean": [1, 2, 3], "std": 1})";
  EXPECT_THAT(errorOf([&] { FeatureConfig().loadGlobalStats(json); }),
              HasSubstr("'" + json + "': features: global mean and std need 1 or 161 values each, got 3 and 1"));
  std::ofstream(json) << R"({"mean": 0, "std": 0})";
  EXPECT_THAT(errorOf([&] { FeatureConfig().loadGlobalStats(json); }), HasSubstr("std values must be positive"));
  std::ofstream(json) << "{not json";
  EXPECT_THAT(errorOf([&] { FeatureConfig().loadGlobalStats(json); }), HasSubstr("not valid JSON"));
  std::filesystem::remove(json);
  std::filesystem::remove(tensors);
}

TEST(Features, BatchPadsToTheLongestUtterance) {
  const FeatureExtractor extractor{FeatureConfig{}};
  const std::vector<HostTensor> utterances{extractor.compute(loadAudio(dataPath("audio/hello_16k.wav"), 16000)),
                                           extractor.compute(loadAudio(dataPath("audio/numbers_16k.flac"), 16000))};
  const FeatureBatch batch = batchFeatures(utterances);
  const int64_t t0 = utterances[0].dim(3), t1 = utterances[1].dim(3);
  ASSERT_LT(t0, t1);
  EXPECT_EQ(batch.features.shape(), (Shape{2, 1, 161, t1}));
  EXPECT_EQ(batch.lengths.dtype(), DataType::kInt32);
  EXPECT_EQ(batch.lengths.data<int32_t>()[0], t0);
  EXPECT_EQ(batch.lengths.data<int32_t>()[1], t1);
  const float* out = batch.features.data<float>();
  for (int64_t f = 0; f < 161; ++f) {
    for (int64_t t = 0; t < t1; ++t) {
      ASSERT_EQ(out[f * t1 + t], t < t0 ? utterances[0].data<float>()[f * t0 + t] : 0.0f);
      ASSERT_EQ(out[(161 + f) * t1 + t], utterances[1].data<float>()[f * t1 + t]);
    }
  }
  FeatureConfig narrow;
  narrow.sample_rate = 8000;
  const std::vector<HostTensor> mixed{utterances[0], FeatureExtractor(narrow).compute(std::vector<float>(800, 0.1f))};
  EXPECT_THAT(errorOf([&] { batchFeatures(mixed); }), HasSubstr("utterance 1 has 81 bins, utterance 0 has 161"));
  EXPECT_THAT(errorOf([&] { batchFeatures({}); }), HasSubstr("no utterances"));
}

TEST(Features, OneExtractorServesManyThreads) {
  const FeatureExtractor extractor{FeatureConfig{}};
  const Audio audio = loadAudio(dataPath("audio/door_16k.wav"), 16000);
  const std::vector<float> expected = toVector(extractor.compute(audio));
  std::vector<std::vector<float>> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results)
    threads.emplace_back([&] {
      FeatureConfig other;  // also plans a new FFT size concurrently
      other.sample_rate = 8000 + 1000 * int(&result - results.data());
      FeatureExtractor(other).compute(std::vector<float>(4000, 0.1f));
      result = toVector(extractor.compute(audio));
    });
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_EQ(result, expected);
}

}  // namespace
}  // namespace ds2rt
