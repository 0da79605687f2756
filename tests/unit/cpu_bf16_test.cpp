// bf16 on the CPU backend: the accuracy cost against fp32 on the parity fixtures (mixed lengths)
// and a larger random-weight model, plans that keep bf16, and the refusal on CPUs without it.
#include <gmock/gmock.h>

#include <random>

#include "cpu/bf16.h"
#include "cpu/amx_gemm.h"
#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "engine_comparison.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

constexpr double kBF16Tolerance = 1e-2;  // relative L2 of the probabilities against fp32

// haveBF16() as the backend sees it: cpuid and oneDNN's ISA.
bool cpuHasBF16() { return detail::cpu::haveBF16(); }

// Makes the backend see a CPU without AVX512_BF16 for the test's scope.
class HiddenBF16 {
 public:
  HiddenBF16() { detail::cpu::hideBF16ForTesting(true); }
  ~HiddenBF16() { detail::cpu::hideBF16ForTesting(false); }
  HiddenBF16(const HiddenBF16&) = delete;
  HiddenBF16& operator=(const HiddenBF16&) = delete;
};

std::map<std::string, HostTensor> runFixture(const Engine& engine, const WeightStore& io) {
  return engine.createContext().run({{"features", io.get("input")}, {"lengths", io.get("input_lengths")}});
}

class BF16ParityTest : public testing::TestWithParam<std::string> {};

TEST_P(BF16ParityTest, CloseToFp32) {
  if (!cpuHasBF16()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  const std::string name = GetParam();
  const auto model = DeepSpeech2Model::load(dataPath("parity/" + name + "/model.safetensors"));
  const auto io = WeightStore::load(dataPath("parity/" + name + "/io.safetensors"));
  const Engine fp32 = Builder().build(model.createNetwork());
  const Engine bf16 = Builder({.precision = Precision::kBF16}).build(model.createNetwork());
  const auto expected = runFixture(fp32, io);
  const auto out = runFixture(bf16, io);
  const HostTensor& lengths = out.at("output_lengths");
  ASSERT_EQ(toVector(lengths), toVector(io.get("output_lengths")));
  const double error = relativeL2(validFrames(out.at("probs"), lengths), validFrames(expected.at("probs"), lengths));
  const double vs_pytorch = relativeL2(validFrames(out.at("probs"), lengths), validFrames(io.get("probs"), lengths));
  EXPECT_LT(error, kBF16Tolerance) << name;
  EXPECT_LT(vs_pytorch, kBF16Tolerance) << name;
  RecordProperty("bf16_relative_l2", cat(error));
  std::printf("%s bf16 vs fp32 relative L2 %.3e (vs PyTorch %.3e)\n", name.c_str(), error, vs_pytorch);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BF16ParityTest,
                         testing::Values("lstm_bi_l2_h32", "gru_bi_l3_h24", "rnn_bi_l1_h16", "lstm_uni_l2_h16_ctx3",
                                         "gru_uni_l1_h24_ctx2", "rnn_uni_l3_h16_ctx4"));

class BF16GemmTest : public testing::TestWithParam<bool> {};

// deepspeech.pytorch's shapes at a width where the packed blocks and both directions' threads
// matter, with either GEMM for the input projections and the fully connected layer; the second
// batch (3 x 900 frames after the convolutions) runs the projection in two chunks.
TEST_P(BF16GemmTest, RandomWeightModelCloseToFp32) {
  if (!cpuHasBF16()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  const bool bf16_matmul = GetParam();
  // which GEMMs bf16 engines use (the bf16 matmul or fp32 sgemm), as on CPUs where one or the other is faster
  const PinnedKernelChoice pinned(detail::cpu::forceBF16MatmulForTesting, bf16_matmul);
  for (const std::string type : {"lstm", "gru"}) {
    // 200 units: not a multiple of 16, a partial unit block
    const auto network = [&] {
      return DeepSpeech2Model::withRandomWeights(randomModelConfig(type, 200, 3), 3).createNetwork();
    };
    const Engine fp32 = Builder().build(network());
    const Engine bf16 = Builder({.precision = Precision::kBF16}).build(network());
    // What runs is what the engine says runs.
    const bool tiles = bf16_matmul && detail::cpu::amxTilesUsable();  // the own AMX kernel, else oneDNN's
    EXPECT_THAT(bf16.describe(), HasSubstr(tiles         ? "bf16: bf16 input projection on AMX tiles"
                                           : bf16_matmul ? "bf16: oneDNN bf16 matmul input projection"
                                                         : "bf16: oneDNN sgemm input projection (fp32"));
    EXPECT_THAT(bf16.describe(), HasSubstr("AVX512_BF16 recurrent step"));
    EXPECT_THAT(bf16.describe(), HasSubstr(bf16_matmul ? "bf16: oneDNN bf16 matmul, fp32 sums"
                                                       : "oneDNN sgemm (bf16 engine: fp32 GEMMs"));
    std::mt19937 rng(5);
    for (const auto& [frames, lengths] : std::vector<std::pair<int, std::vector<int32_t>>>{{200, {200, 131, 57}},
                                                                                         {1800, {1800, 1500, 1777}}}) {
      const double error = probabilitiesDistance(bf16, fp32, frames, lengths, rng);
      EXPECT_LT(error, kBF16Tolerance) << type << " " << lengths.size() << " x " << frames;
      std::printf("%s 200x3 bf16 (%s GEMMs) vs fp32 relative L2 %.3e (%zu x %d frames)\n", type.c_str(),
                  bf16_matmul ? "bf16" : "fp32", error, lengths.size(), frames);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Gemms, BF16GemmTest, testing::Bool(),
                         [](const auto& info) { return info.param ? "Bf16Matmul" : "Fp32Sgemm"; });

// The choice is measured once and then kept: every engine of the process runs the same kernels.
TEST(BF16, MatmulChoiceIsMeasuredOnceAndKept) {
  if (!cpuHasBF16()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  detail::cpu::forceBF16MatmulForTesting(std::nullopt);
  const bool first = detail::cpu::bf16MatmulFaster();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(detail::cpu::bf16MatmulFaster(), first);
  std::printf("this CPU: oneDNN's bf16 matmul %s than its fp32 sgemm\n", first ? "faster" : "slower");
}

TEST(BF16, PlanKeepsThePrecision) {
  if (!cpuHasBF16()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  const std::string name = "gru_uni_l1_h24_ctx2";  // unidirectional + lookahead
  const auto model = DeepSpeech2Model::load(dataPath("parity/" + name + "/model.safetensors"));
  const auto io = WeightStore::load(dataPath("parity/" + name + "/io.safetensors"));
  const Engine built = Builder({.precision = Precision::kBF16}).build(model.createNetwork());
  const Engine loaded = Engine::deserialize(built.serialize(), "bf16.plan");
  EXPECT_EQ(loaded.config().precision, Precision::kBF16);
  EXPECT_THAT(loaded.describe(), HasSubstr("bf16"));
  EXPECT_EQ(toVector(runFixture(loaded, io).at("probs")), toVector(runFixture(built, io).at("probs")));
}

TEST(BF16, RefusedOnCpuWithoutIt) {
  const auto model = DeepSpeech2Model::load(dataPath("parity/lstm_bi_l2_h32/model.safetensors"));
  std::vector<uint8_t> plan;
  if (cpuHasBF16()) plan = Builder({.precision = Precision::kBF16}).build(model.createNetwork()).serialize();
  const HiddenBF16 hidden;
  EXPECT_THAT(errorOf([&] { Builder({.precision = Precision::kBF16}).build(model.createNetwork()); }),
              HasSubstr("AVX512_BF16"));
  if (!plan.empty())  // a bf16 plan made elsewhere
    EXPECT_THAT(errorOf([&] { Engine::deserialize(plan, "bf16.plan"); }), HasSubstr("AVX512_BF16"));
  // fp32 is unaffected.
  EXPECT_NO_THROW(Builder().build(model.createNetwork()));
}

TEST(BF16, Conversion) {
  using detail::cpu::toBF16;
  EXPECT_EQ(toBF16(1.0f), 0x3f80);
  EXPECT_EQ(toBF16(-2.0f), 0xc000);
  EXPECT_EQ(toBF16(1.0f + 1.0f / 256), 0x3f80);      // a tie rounds to even
  EXPECT_EQ(toBF16(1.0f + 3.0f / 256), 0x3f82);      // a tie rounds to even (up)
  EXPECT_EQ(toBF16(1.0f + 1.0f / 128 + 1e-4f), 0x3f81);
  EXPECT_EQ(toBF16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(toBF16(std::numeric_limits<float>::quiet_NaN()) & 0x7fc0, 0x7fc0);
  EXPECT_NO_THROW((BuilderConfig{.device = Device::kCPU, .precision = Precision::kBF16}.validate()));
  EXPECT_EQ(precisionFromString("bf16"), Precision::kBF16);
}

}  // namespace
}  // namespace ds2rt::test
