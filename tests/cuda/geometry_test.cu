// How the tensor-core persistent kernels split a block's rows over their 16 warps, and the cluster
// kernel's shape and h layout (host code: these run without a GPU, in CI too). The emit warps of a
// stack exist only where R's fragments leave four warps over, every warp of a part keeps its 16
// fragments in registers, and the batch is 1.
#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

#include "cuda/rnn_persistent.cuh"

namespace ds2rt::test {
namespace {

using detail::cuda::persistent::MmaGeometry;
using detail::cuda::persistent::mmaGeometry;
using detail::cuda::persistent::mmaSharedBytes;
using detail::cuda::persistent::stackedGeometry;
using detail::cuda::persistent::stackedSharedBytes;
using detail::cuda::persistent::ClusterGeometry;
using detail::cuda::persistent::clusterGeometry;
using detail::cuda::persistent::clusterShareBegin;
using detail::cuda::persistent::clusterHIndex;
using detail::cuda::persistent::kClusterCoreBytes;
using detail::cuda::persistent::kClusterStrideBytes;
using detail::cuda::persistent::kClusterHalf;

constexpr int kLstm = 4, kGru = 3, kRnn = 1;

TEST(MmaGeometry, SplitsA1024UnitBlockOverTheWarps) {
  const MmaGeometry lstm = mmaGeometry(kLstm, 16, 1024);  // 64 rows: 4 row tiles x 4 parts of 16 tiles
  EXPECT_EQ(lstm.mtiles, 4);
  EXPECT_EQ(lstm.ktiles, 64);
  EXPECT_EQ(lstm.ksplit, 4);
  EXPECT_TRUE(lstm.weights_in_registers);
  EXPECT_TRUE(lstm.straight_products);
  EXPECT_EQ(lstm.emit_warps, 0);
  const MmaGeometry gru = mmaGeometry(kGru, 16, 1024);  // 48 rows: 3 row tiles x 5 parts of 13 tiles
  EXPECT_EQ(gru.mtiles, 3);
  EXPECT_EQ(gru.ksplit, 5);
  EXPECT_TRUE(gru.straight_products);
  // Straight-line products run 16 tiles from each part's start: h's rows must reach the last one.
  const int k_per_part = (gru.ktiles + gru.ksplit - 1) / gru.ksplit;
  EXPECT_GE(gru.h_stride, ((gru.ksplit - 1) * k_per_part + 16) * 16);
}

TEST(MmaGeometry, StackedGruHasEmitWarpsAtBatchOneOnly) {
  const MmaGeometry one = stackedGeometry(kGru, 16, 1024, 1);
  EXPECT_EQ(one.emit_warps, 4);
  EXPECT_EQ(one.ksplit, 4);  // 12 warps of 16 fragments for R
  EXPECT_EQ(one.mtiles * one.ksplit + one.emit_warps, 16);
  EXPECT_TRUE(one.weights_in_registers);
  EXPECT_TRUE(one.straight_products);
  const MmaGeometry two = stackedGeometry(kGru, 16, 1024, 2);
  EXPECT_EQ(two.emit_warps, 0);
  EXPECT_EQ(two.ksplit, mmaGeometry(kGru, 16, 1024).ksplit);
}

TEST(MmaGeometry, NoEmitWarpsWhereRTakesEveryWarpOrProductsAreNotStraight) {
  EXPECT_EQ(stackedGeometry(kLstm, 16, 1024, 1).emit_warps, 0);  // 4 row tiles x 4 parts: all 16 warps
  EXPECT_EQ(stackedGeometry(kRnn, 16, 64, 1).emit_warps, 0);     // 4 column tiles: no straight-line products
  EXPECT_EQ(stackedGeometry(kGru, 12, 384, 1).emit_warps, 0);    // parts of 12 tiles
}

TEST(MmaGeometry, StackedSharedMemoryHoldsTheEmitWarpsPartialSums) {
  const MmaGeometry g = stackedGeometry(kGru, 16, 1024, 1);
  const size_t part = static_cast<size_t>(g.mtiles) * 16 * 8 * sizeof(float);  // 8 utterance columns
  const size_t input_tiles = static_cast<size_t>(g.mtiles) * g.ktiles * 512, h_buffers = 2 * 8 * g.h_stride * 2;
  // R's partial sums (4 parts) and two buffers of the emit warps' (4 parts each).
  EXPECT_EQ(stackedSharedBytes(g, DataType::kFloat16), input_tiles + h_buffers + (4 + 2 * 4) * part);
  EXPECT_GT(stackedSharedBytes(g, DataType::kFloat16), mmaSharedBytes(g, DataType::kFloat16));
}

// The cluster kernel (Hopper): one 64-row wgmma tile of R a block, all of h for 64 utterances in
// shared memory. deepspeech.pytorch's 1024-unit layers must fit an H100's 227 KB with both
// directions on its 132 SMs.
constexpr size_t kHopperSharedLimit = 232448;

TEST(ClusterGeometry, DeepSpeechLayersFitAHopperBlock) {
  const ClusterGeometry lstm = clusterGeometry(kLstm, 1024, DataType::kFloat16, kHopperSharedLimit);
  EXPECT_TRUE(lstm.usable);
  EXPECT_EQ(lstm.units, 16);
  EXPECT_EQ(lstm.blocks_per_direction, 64);  // 128 blocks for both directions
  EXPECT_GT(lstm.shared_bytes, size_t{1024} * 64 * 2);  // h of 64 utterances and more
  const ClusterGeometry gru = clusterGeometry(kGru, 1024, DataType::kBFloat16, kHopperSharedLimit);
  EXPECT_TRUE(gru.usable);
  EXPECT_EQ(gru.units, 21);  // 63 of the tile's 64 rows
  EXPECT_EQ(gru.blocks_per_direction, 49);
  EXPECT_EQ(clusterGeometry(kRnn, 256, DataType::kFloat16, kHopperSharedLimit).units, 32);  // 2 cells a thread and half
}

TEST(ClusterGeometry, OnlySizesTheWarpgroupsSplitIntoWholeInstantiatedTiles) {
  for (const int64_t hidden : {256, 512, 1024})
    EXPECT_TRUE(clusterGeometry(kLstm, hidden, DataType::kFloat16, kHopperSharedLimit).usable) << hidden;
  for (const int64_t hidden : {64, 320, 768, 1000, 2048})
    EXPECT_FALSE(clusterGeometry(kLstm, hidden, DataType::kFloat16, kHopperSharedLimit).usable) << hidden;
  EXPECT_FALSE(clusterGeometry(kLstm, 1024, DataType::kFloat16, 190 * 1024).usable);  // 194 KB needed
}

// Where the cells publish a half's h (clusterHIndex) is where wgmma's descriptor finds element (k = unit j,
// n = utterance b of the half): rows of a core matrix 16 bytes apart, N-adjacent core matrices the stride byte
// offset apart, K-adjacent ones the leading byte offset apart. Every element has its own place, and a
// warpgroup's quarter of the units is one contiguous range (one bulk copy per rank's share).
TEST(ClusterGeometry, PublishedHIsWhereTheDescriptorReadsIt) {
  const int64_t hidden = 256;
  std::vector<int> seen(static_cast<size_t>(hidden) * kClusterHalf, 0);
  for (int64_t b = 0; b < kClusterHalf; ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const int64_t bytes = (j / 8) * kClusterCoreBytes + (b / 8) * kClusterStrideBytes + (b % 8) * 16 + (j % 8) * 2;
      ASSERT_EQ(clusterHIndex(b, j) * 2, bytes) << "utterance " << b << ", unit " << j;
      ++seen.at(static_cast<size_t>(clusterHIndex(b, j)));
      const int64_t quarter = j / (hidden / 4), quarter_bytes = hidden / 4 * kClusterHalf * 2;
      EXPECT_EQ(bytes / quarter_bytes, quarter);
    }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
}

TEST(ClusterGeometry, RanksShareEachQuartersColumnsExactlyOnce) {
  for (const int cluster : {1, 2, 3, 4, 7, 8})
    for (const int64_t columns : {8, 16, 32}) {
      EXPECT_EQ(clusterShareBegin(0, cluster, columns), 0);
      EXPECT_EQ(clusterShareBegin(cluster, cluster, columns), columns);
      for (int rank = 0; rank < cluster; ++rank)
        EXPECT_LE(clusterShareBegin(rank, cluster, columns), clusterShareBegin(rank + 1, cluster, columns));
    }
}

}  // namespace
}  // namespace ds2rt::test
