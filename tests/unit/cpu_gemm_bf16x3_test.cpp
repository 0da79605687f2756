// fp32 GEMMs as three bf16 products on AMX tiles (src/cpu/gemm_bf16x3.h): the products against
// double precision over edge shapes and strides, whole engines against ones built with oneDNN's
// sgemm, and the environment switch.
#include <gmock/gmock.h>

#include <cstdlib>
#include <random>

#include "cpu/gemm_bf16x3.h"
#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

// Pins the choice for engines built in the test's scope.
class PinnedGemm {
 public:
  explicit PinnedGemm(bool x3) { detail::cpu::forceBF16x3GemmForTesting(x3); }
  ~PinnedGemm() { detail::cpu::forceBF16x3GemmForTesting(std::nullopt); }
  PinnedGemm(const PinnedGemm&) = delete;
  PinnedGemm& operator=(const PinnedGemm&) = delete;
};

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
    DeepSpeech2Config c;
    c.rnn_type = type;
    c.bidirectional = bidirectional;
    if (!bidirectional) c.lookahead_context = 3;
    c.hidden_size = 200;
    c.hidden_layers = 3;
    for (const char* l : {"_", "'", "A", "B", "C", " "}) c.labels.emplace_back(l);
    const auto network = [&] { return DeepSpeech2Model::withRandomWeights(c, 3).createNetwork(); };
    const Engine sgemm = [&] {
      const PinnedGemm pinned(false);
      return Builder().build(network());
    }();
    const Engine x3 = [&] {
      const PinnedGemm pinned(true);
      return Builder().build(network());
    }();
    EXPECT_THAT(sgemm.describe(), HasSubstr("oneDNN sgemm input projection"));
    EXPECT_THAT(x3.describe(), HasSubstr("fp32 input projection as three bf16 products on AMX tiles"));
    EXPECT_THAT(x3.describe(), HasSubstr("fp32 as three bf16 products on AMX tiles, fp32 sums"));
    EXPECT_THAT(x3.describe(), HasSubstr("step products are three bf16 products on AMX tiles"));
    std::mt19937 rng(11);
    std::vector<int32_t> many(20);  // 20 utterances of 150 down to 93 frames: 20, then fewer, active rows
    for (size_t i = 0; i < many.size(); ++i) many[i] = 150 - 3 * static_cast<int32_t>(i);
    for (const auto& [frames, lengths] : std::vector<std::pair<int, std::vector<int32_t>>>{
             {200, {200, 131, 57}}, {1800, {1800, 1500, 1777}}, {150, many}}) {
      const int64_t batch = static_cast<int64_t>(lengths.size());
      const HostTensor features = randomTensor({batch, 1, 161, frames}, rng);
      const HostTensor lengths_tensor = HostTensor::fromInts({batch}, lengths);
      const auto a = sgemm.createContext().run({{"features", features}, {"lengths", lengths_tensor}});
      const auto b = x3.createContext().run({{"features", features}, {"lengths", lengths_tensor}});
      const double error = relativeL2(toVector(b.at("probs")), toVector(a.at("probs")));
      EXPECT_LT(error, 1e-5) << type << " " << batch << " x " << frames;
      std::printf("%s 200x3 %s bf16x3 vs sgemm relative L2 %.3e (%ld x %d frames)\n", type.c_str(),
                  bidirectional ? "bi" : "uni", error, static_cast<long>(batch), frames);
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
