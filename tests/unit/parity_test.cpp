// Golden parity with PyTorch: fixtures made by tests/fixtures_src/make_parity_fixtures.py with
// deepspeech.pytorch's architecture, random weights and a mixed-length batch whose padding
// holds garbage. Every valid frame must match within 1e-4 relative L2 (fp32).
#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

struct Fixture {
  DeepSpeech2Model model;
  WeightStore io;
};

Fixture loadFixture(const std::string& name) {
  return {DeepSpeech2Model::load(dataPath("parity/" + name + "/model.safetensors")),
          WeightStore::load(dataPath("parity/" + name + "/io.safetensors"))};
}

class ParityTest : public testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(ParityTest, MatchesPyTorch) {
  const auto& [name, optimize] = GetParam();
  const Fixture f = loadFixture(name);
  for (const bool log : {false, true}) {
    const Engine engine = Builder({.optimize = optimize}).build(f.model.createNetwork({.log_softmax = log}));
    auto ctx = engine.createContext();
    auto out = ctx.run({{"features", f.io.get("input")}, {"lengths", f.io.get("input_lengths")}});
    const HostTensor& lengths = out.at("output_lengths");
    const HostTensor& expected_lengths = f.io.get("output_lengths");
    ASSERT_EQ(toVector(lengths), toVector(expected_lengths));
    const std::string key = log ? "log_probs" : "probs";
    const HostTensor& expected = f.io.get(key);
    ASSERT_EQ(out.at(key).shape(), expected.shape());
    const double error = relativeL2(validFrames(out.at(key), lengths), validFrames(expected, expected_lengths));
    EXPECT_LT(error, 1e-4) << name << " " << key;
    RecordProperty(key + "_relative_l2", cat(error));
    // Frames past each utterance's output length are zero by contract.
    const auto all = toVector(out.at(key));
    double padded = 0;
    for (float v : all) padded += std::abs(v);
    double valid = 0;
    for (float v : validFrames(out.at(key), lengths)) valid += std::abs(v);
    EXPECT_NEAR(padded, valid, 1e-3 * valid);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, ParityTest,
    testing::Combine(testing::Values("lstm_bi_l2_h32", "gru_bi_l3_h24", "rnn_bi_l1_h16", "lstm_uni_l2_h16_ctx3",
                                     "gru_uni_l1_h24_ctx2", "rnn_uni_l3_h16_ctx4"),
                     testing::Bool()),
    [](const auto& info) {
      return std::get<0>(info.param) + (std::get<1>(info.param) ? "_optimized" : "_unoptimized");
    });

// An utterance gives the same output alone or inside any batch, whatever the padding holds.
TEST(BatchInvariance, AloneEqualsBatchedWithAnyPadding) {
  for (const std::string name : {"lstm_bi_l2_h32", "gru_uni_l1_h24_ctx2"}) {
    const Fixture f = loadFixture(name);
    const Engine engine = Builder().build(f.model.createNetwork());
    auto ctx = engine.createContext();
    const HostTensor& input = f.io.get("input");
    const HostTensor& lengths = f.io.get("input_lengths");
    const auto batched = ctx.run({{"features", input}, {"lengths", lengths}});
    const int64_t n = input.dim(0), bins = input.dim(2), t = input.dim(3);
    std::mt19937 rng(7);
    for (int64_t b = 0; b < n; ++b) {
      const int32_t len = lengths.data<int32_t>()[b];
      // Alone, unpadded.
      HostTensor alone(DataType::kFloat32, {1, 1, bins, len});
      for (int64_t k = 0; k < bins; ++k)
        for (int64_t s = 0; s < len; ++s)
          alone.mutableData<float>()[k * len + s] = input.data<float>()[(b * bins + k) * t + s];
      const auto single = ctx.run({{"features", alone}, {"lengths", HostTensor::fromInts({1}, {len})}});
      // Inside a bigger batch at another position, with fresh garbage in every padded frame.
      const int64_t wide = t + 13;
      HostTensor batch = randomTensor({3, 1, bins, wide}, rng, 1e3f);
      for (int64_t k = 0; k < bins; ++k)
        for (int64_t s = 0; s < len; ++s)
          batch.mutableData<float>()[(2 * bins + k) * wide + s] = alone.data<float>()[k * len + s];
      const auto mixed = ctx.run({{"features", batch}, {"lengths", HostTensor::fromInts({3}, {static_cast<int32_t>(wide), 5, len})}});
      const int32_t frames = single.at("output_lengths").data<int32_t>()[0];
      ASSERT_EQ(mixed.at("output_lengths").data<int32_t>()[2], frames);
      const int64_t classes = single.at("probs").dim(2);
      const float* a = single.at("probs").data<float>();
      const float* in_batch = batched.at("probs").data<float>() + b * batched.at("probs").dim(1) * classes;
      const float* in_mixed = mixed.at("probs").data<float>() + 2 * mixed.at("probs").dim(1) * classes;
      for (int64_t i = 0; i < frames * classes; ++i) {
        ASSERT_NEAR(a[i], in_batch[i], 1e-6) << name << " utterance " << b << " element " << i;
        ASSERT_NEAR(a[i], in_mixed[i], 1e-6) << name << " utterance " << b << " element " << i;
      }
    }
  }
}

}  // namespace
}  // namespace ds2rt::test
