// The cluster kernel's block products (Hopper wgmma: R's A fragments in registers, h in shared memory in
// the core-matrix layout its descriptor describes) against the CPU, for one block alone: every
// fragment, descriptor and accumulator position is checked, exactly (small integers: fp32 sums of
// fp16/bf16 products are exact). On a mismatch the test says which row and column of R, and which
// utterance, each wrong output came from. Needs compute capability 9.0 and a build with sm_90a.
#include <algorithm>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cuda/rnn_persistent.cuh"
#include "require_gpu.h"

namespace ds2rt::test {
namespace {

using detail::cuda::clusterBlockProducts;
using detail::cuda::persistent::clusterGeometry;
using detail::cuda::persistent::kClusterUtterances;

constexpr int kRows = 64;

struct Case {
  DataType products;
  int gates;
  int64_t hidden;
};

std::string describe(const Case& c) {
  return std::string(c.products == DataType::kFloat16 ? "fp16" : "bf16") + "_g" + std::to_string(c.gates) + "_h" +
         std::to_string(c.hidden);
}
std::string caseName(const testing::TestParamInfo<Case>& info) { return describe(info.param); }
void PrintTo(const Case& c, std::ostream* os) { *os << describe(c); }

class ClusterProducts : public testing::TestWithParam<Case> {};

TEST_P(ClusterProducts, MatchTheCpuExactly) {
  REQUIRE_GPU();
  const auto [products, gates, hidden] = GetParam();
  if (computeCapability() != 90) GTEST_SKIP() << "the cluster kernel runs on compute capability 9.0 only";
  const int units = clusterGeometry(gates, hidden, products, ~size_t{0}).units;
  const size_t rows_r = static_cast<size_t>(gates) * hidden;
  // Block 0's row `row` is gate row / units of unit row % units; rows past G*units are zero padding.
  const auto unitRow = [&](int row) -> int64_t {
    const int g = row / units, u = row % units;
    return g < gates && u < hidden ? g * hidden + u : -1;
  };
  const auto products_of = [&](const std::vector<float>& r, const std::vector<float>& h) {
    return clusterBlockProducts(products, gates, hidden, r, h, computeCapability());
  };

  std::mt19937 random(static_cast<unsigned>(gates * 7919 + hidden));
  std::uniform_int_distribution<int> small(-2, 2);
  std::vector<float> r(rows_r * hidden), h(static_cast<size_t>(kClusterUtterances) * hidden);
  for (float& v : r) v = static_cast<float>(small(random));
  for (float& v : h) v = static_cast<float>(small(random));
  const std::vector<float> got = products_of(r, h);
  ASSERT_EQ(got.size(), static_cast<size_t>(kClusterUtterances) * kRows) << "no products: not built for sm_90a?";

  int wrong = 0;
  std::vector<std::pair<int, int>> first_wrong;
  for (int b = 0; b < kClusterUtterances; ++b)
    for (int row = 0; row < kRows; ++row) {
      const int64_t source = unitRow(row);
      double expected = 0;
      if (source >= 0)
        for (int64_t k = 0; k < hidden; ++k) expected += double{r[source * hidden + k]} * h[b * hidden + k];
      if (got[b * kRows + row] != static_cast<float>(expected) && wrong++ < 8) first_wrong.emplace_back(row, b);
    }
  if (wrong == 0) return;

  // Provenance probes: h one-hot (utterance b holds 1 at column b), R filled with its own row (then its
  // column) index: a right product gives the output's own row (then b).
  std::vector<float> one_hot(h.size(), 0.0f), by_row(r.size(), 0.0f), by_column(r.size());
  for (int b = 0; b < kClusterUtterances; ++b) one_hot[b * hidden + b] = 1;
  for (int row = 0; row < kRows; ++row)
    if (const int64_t source = unitRow(row); source >= 0)
      std::fill_n(by_row.begin() + source * hidden, hidden, static_cast<float>(row));
  for (size_t i = 0; i < r.size(); ++i) by_column[i] = static_cast<float>(i % hidden % kRows);
  const std::vector<float> from_row = products_of(by_row, one_hot), from_column = products_of(by_column, one_hot);
  std::string where;
  for (const auto& [row, b] : first_wrong) {
    const int64_t source = unitRow(row);
    where += "\n  row " + std::to_string(row) + " (R row " + std::to_string(source) + "), utterance " +
             std::to_string(b) + ": got " + std::to_string(got[b * kRows + row]) + "; one-hot probe read block row " +
             std::to_string(from_row[b * kRows + row]) + ", column " +
             std::to_string(from_column[b * kRows + row]);
  }
  ADD_FAILURE() << wrong << " of " << kClusterUtterances * kRows << " products wrong; the first:" << where;
}

INSTANTIATE_TEST_SUITE_P(Hopper, ClusterProducts,
                         testing::Values(Case{DataType::kFloat16, 4, 256}, Case{DataType::kBFloat16, 3, 512},
                                         Case{DataType::kFloat16, 4, 1024}, Case{DataType::kBFloat16, 1, 1024},
                                         Case{DataType::kFloat16, 3, 1024}),
                         caseName);

}  // namespace
}  // namespace ds2rt::test
