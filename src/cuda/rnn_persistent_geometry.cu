// How the tensor-core persistent kernels (rnn_persistent_mma.cu) split a block's rows over their warps,
// the shared memory that takes, and R tiled in mma.m16n8k16's A-fragment order. Host code.
#include <algorithm>

#include "cuda/rnn_persistent.cuh"

namespace ds2rt::detail::cuda::persistent {

namespace {

// The rest of the geometry once the split of the columns is chosen.
MmaGeometry withSplit(MmaGeometry g, int ksplit) {
  g.ksplit = ksplit;
  const int k_per_part = (g.ktiles + g.ksplit - 1) / g.ksplit;
  g.weights_in_registers = g.mtiles * g.ksplit <= kMmaThreads / 32 && k_per_part <= kRegisterFragments;
  // Straight-line products (mmaKernelImpl) where the parts are long enough that the zero tiles past
  // them cost less than a bound check per tile (1024-unit layers: 13-16 tiles a part). Every warp
  // then runs all kRegisterFragments column tiles: h_s rows reach the last part's last such tile,
  // zero there.
  g.straight_products = g.weights_in_registers && k_per_part > kRegisterFragments * 3 / 4;
  const int columns = g.straight_products ? std::max(g.ktiles, (g.ksplit - 1) * k_per_part + kRegisterFragments) : g.ktiles;
  g.h_stride = columns * 16 + 8;  // + 8 elements: the 8 utterances' rows start in different banks
  return g;
}

MmaGeometry tileCounts(int gates, int units, int64_t hidden) {
  MmaGeometry g;
  g.gates = gates;
  g.mtiles = (gates * units + 15) / 16;
  g.ktiles = static_cast<int>((hidden + 15) / 16);
  return g;
}

}  // namespace

MmaGeometry mmaGeometry(int gates, int units, int64_t hidden) {
  const MmaGeometry g = tileCounts(gates, units, hidden);
  return withSplit(g, std::max(1, std::min(kMmaThreads / 32 / g.mtiles, g.ktiles)));
}

MmaGeometry stackedGeometry(int gates, int units, int64_t hidden, int64_t batch) {
  const MmaGeometry g = tileCounts(gates, units, hidden);
  // The fewest parts that keep every warp's A fragments in registers; emit warps if those leave four
  // warps over and four warps hold one cell thread per (unit, utterance) (1024-unit GRU: 12 + 4).
  // Only at batch 1: at 2 x 15 s (H100, fp16 uni-GRU) the step warps, landing twice the words
  // without the emit warps' help, waited longer at the block's barrier than the emit warps saved
  // (6.2 against 5.8 ms; 2.97 against 3.67 at 1 x 10 s).
  const int ksplit = (g.ktiles + kRegisterFragments - 1) / kRegisterFragments;
  if (batch > 1 || g.mtiles * ksplit + kEmitWarps > kMmaThreads / 32 || units * kMaxBatch > kEmitWarps * 32)
    return mmaGeometry(gates, units, hidden);
  MmaGeometry emitting = withSplit(g, ksplit);
  if (!emitting.straight_products) return mmaGeometry(gates, units, hidden);
  emitting.emit_warps = kEmitWarps;
  return emitting;
}

size_t mmaSharedBytes(const MmaGeometry& g, DataType type) {
  const size_t weights = g.weights_in_registers ? 0 : static_cast<size_t>(g.mtiles) * g.ktiles * 32 * sizeof(uint4);
  return weights + kMaxBatch * g.h_stride * sizeOf(type) +
         static_cast<size_t>(g.ksplit) * g.mtiles * 16 * kMaxBatch * sizeof(float);
}

size_t stackedSharedBytes(const MmaGeometry& g, DataType type) {
  const size_t part = static_cast<size_t>(g.mtiles) * 16 * kMaxBatch * sizeof(float);
  return static_cast<size_t>(g.mtiles) * g.ktiles * 32 * sizeof(uint4) + 2 * kMaxBatch * g.h_stride * sizeOf(type) +
         (g.ksplit + 2 * emitParts(g)) * part;
}

int stackedMaxBatch() { return kFewUtterances; }

int mmaThreads() { return kMmaThreads; }

std::vector<float> tileForMma(const std::vector<float>& recurrent, int gates, int64_t hidden, int dirs, int units,
                              int blocks_per_direction) {
  const MmaGeometry geo = mmaGeometry(gates, units, hidden);
  const int64_t gh = gates * hidden;
  std::vector<float> tiles(static_cast<size_t>(dirs) * blocks_per_direction * geo.mtiles * geo.ktiles * 32 * 8, 0.0f);
  // The value of R (row `row` of the block's G*units rows, column k), 0 outside R.
  const auto weight = [&](int d, int block, int row, int64_t k) -> float {
    const int g = row / units, u = row % units;
    const int64_t unit = static_cast<int64_t>(block) * units + u;
    if (g >= gates || unit >= hidden || k >= hidden) return 0.0f;
    return recurrent[(d * gh + g * hidden + unit) * hidden + k];
  };
  size_t out = 0;
  for (int d = 0; d < dirs; ++d)
    for (int block = 0; block < blocks_per_direction; ++block)
      for (int mt = 0; mt < geo.mtiles; ++mt)
        for (int kt = 0; kt < geo.ktiles; ++kt)
          for (int lane = 0; lane < 32; ++lane) {
            // A fragment of mma.m16n8k16 (row-major 16 x 16): a0 a1 (row g, cols p, p+1),
            // a2 a3 (row g+8), a4 a5 (row g, cols p+8, p+9), a6 a7 (row g+8, cols p+8, p+9).
            const int group = lane / 4, pair = (lane % 4) * 2;
            for (int i = 0; i < 8; ++i) {
              const int row = mt * 16 + group + ((i / 2) % 2) * 8;
              const int64_t col = static_cast<int64_t>(kt) * 16 + pair + (i % 2) + (i / 4) * 8;
              tiles[out++] = weight(d, block, row, col);
            }
          }
  return tiles;
}

}  // namespace ds2rt::detail::cuda::persistent
