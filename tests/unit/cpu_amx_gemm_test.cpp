// fp32 GEMMs as three bf16 products on AMX tiles (src/cpu/amx_gemm.h): the products against
// double precision over edge shapes and strides, whole engines against ones built with oneDNN's
// sgemm, and the environment switch.
#include <gmock/gmock.h>

#include <cstdlib>
#include <random>

#include "cpu/amx_gemm.h"
#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "engine_comparison.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

struct GemmShape {
  int64_t m, n, k, lda, ldc;
};

class BF16x3GemmShapes : public testing::TestWithParam<GemmShape> {};

// Rows, columns and depth that fill no tile, one tile and a few, row strides beyond the width, and
// more rows than one pass over A takes (2048); C around each block must stay untouched.
TEST_P(BF16x3GemmShapes, MatchDoublePrecisionProducts) {
  if (!detail::cpu::amxTilesUsable()) GTEST_SKIP() << "this CPU has no AMX tiles";
  const auto [m, n, k, lda, ldc] = GetParam();
  std::mt19937 rng(static_cast<unsigned>(m * 131 + n * 7 + k));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> a(m * lda), w(n * k), c(m * ldc, -7.0f);
  for (float& v : a) v = normal(rng);
  for (float& v : w) v = normal(rng) * 0.05f;
  const detail::cpu::BF16x3Gemm gemm(w.data(), n, k);
  std::vector<float> workspace_floats((gemm.workspaceBytes(m) + 127) / 4);
  void* workspace = workspace_floats.data() + (64 - reinterpret_cast<uintptr_t>(workspace_floats.data()) % 64) % 64 / 4;
  gemm.run(a.data(), lda, m, c.data(), ldc, workspace);
  double error = 0, norm = 0;
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      double exact = 0;
      for (int64_t i = 0; i < k; ++i) exact += double{a[r * lda + i]} * w[j * k + i];
      const double d = c[r * ldc + j] - exact;
      error += d * d;
      norm += exact * exact;
    }
    for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(c[r * ldc + j], -7.0f) << "row " << r << " column " << j;
  }
  EXPECT_LT(std::sqrt(error / norm), 2e-5) << m << " x " << n << " x " << k;
}

INSTANTIATE_TEST_SUITE_P(Edges, BF16x3GemmShapes,
                         testing::Values(GemmShape{1, 1, 1, 1, 1}, GemmShape{1, 29, 1024, 1024, 29},
                                         GemmShape{17, 33, 31, 40, 35}, GemmShape{32, 32, 32, 32, 32},
                                         GemmShape{33, 300, 65, 65, 301}, GemmShape{70, 96, 1312, 1400, 96},
                                         GemmShape{2050, 40, 48, 48, 41}));

// Whole engines with the input projections, the recurrent steps of 16 utterances or more and the
// fully connected layer on either GEMM: the same probabilities well inside fp32's 1e-4 (mixed
// lengths, a partial unit block, chunked projections; bidirectional: a thread per direction, one
// direction: its units split over the threads).
TEST(BF16x3Gemm, EnginesAgreeWithSgemmEngines) {
  if (!detail::cpu::amxTilesUsable()) GTEST_SKIP() << "this CPU has no AMX tiles";
  for (const auto& [type, bidirectional] : std::vector<std::pair<std::string, bool>>{
           {"lstm", true}, {"gru", true}, {"gru", false}}) {
    const auto network = [&] {
      const DeepSpeech2Config config = randomModelConfig(type, 200, 3, bidirectional);
      return DeepSpeech2Model::withRandomWeights(config, 3).createNetwork();
    };
    const auto build = [&](bool x3) {
      const PinnedKernelChoice pinned(detail::cpu::forceBF16x3GemmForTesting, x3);
      return Builder().build(network());
    };
    const Engine sgemm = build(false);
    const Engine x3 = build(true);
    EXPECT_THAT(sgemm.describe(), HasSubstr("oneDNN sgemm input projection"));
    EXPECT_THAT(x3.describe(), HasSubstr("fp32 input projection as three bf16 products on AMX tiles"));
    EXPECT_THAT(x3.describe(), HasSubstr("fp32 as three bf16 products on AMX tiles, fp32 sums"));
    EXPECT_THAT(x3.describe(), HasSubstr("step products are three bf16 products on AMX tiles"));
    std::mt19937 rng(11);
    std::vector<int32_t> many(20);  // 20 utterances of 150 down to 93 frames: 20, then fewer, active rows
    for (size_t i = 0; i < many.size(); ++i) many[i] = 150 - 3 * static_cast<int32_t>(i);
    for (const auto& [frames, lengths] : std::vector<std::pair<int, std::vector<int32_t>>>{
             {200, {200, 131, 57}}, {1800, {1800, 1500, 1777}}, {150, many}}) {
      const double error = probabilitiesDistance(x3, sgemm, frames, lengths, rng);
      EXPECT_LT(error, 1e-5) << type << " " << lengths.size() << " x " << frames;
      std::printf("%s 200x3 %s bf16x3 vs sgemm relative L2 %.3e (%zu x %d frames)\n", type.c_str(),
                  bidirectional ? "bi" : "uni", error, lengths.size(), frames);
    }
  }
}

TEST(BF16x3Gemm, EnvironmentSwitch) {
  detail::cpu::forceBF16x3GemmForTesting(std::nullopt);
  const char* before = std::getenv("DS2RT_CPU_FP32_GEMM");
  const std::string saved = before ? before : "";
  setenv("DS2RT_CPU_FP32_GEMM", "fast", 1);
  EXPECT_THAT(errorOf([] { detail::cpu::useBF16x3Gemm(); }), HasSubstr("DS2RT_CPU_FP32_GEMM is 'fast': auto, sgemm or bf16x3"));
  setenv("DS2RT_CPU_FP32_GEMM", "sgemm", 1);
  EXPECT_FALSE(detail::cpu::useBF16x3Gemm());
  setenv("DS2RT_CPU_FP32_GEMM", "auto", 1);
  EXPECT_EQ(detail::cpu::useBF16x3Gemm(), detail::cpu::amxTilesUsable());
  setenv("DS2RT_CPU_FP32_GEMM", "bf16x3", 1);
  if (detail::cpu::amxTilesUsable()) EXPECT_TRUE(detail::cpu::useBF16x3Gemm());
  else EXPECT_THAT(errorOf([] { detail::cpu::useBF16x3Gemm(); }), HasSubstr("needs AMX tiles"));
  if (before) setenv("DS2RT_CPU_FP32_GEMM", saved.c_str(), 1);
  else unsetenv("DS2RT_CPU_FP32_GEMM");
}

}  // namespace
}  // namespace ds2rt::test
