// The tensor-core persistent recurrent kernel (fp16/bf16). Each step, a block's recurrent rows
// (G*units of them, in 16-row tiles) multiply h (H x up to 8 utterances) with mma.m16n8k16:
// the weights are tiled in the A-fragment order of that instruction, so a lane fetches its
// fragment with one 16-byte load, and they stay on chip for the whole sequence: in registers
// when each warp's share fits (then shared memory is not read for them every step), else in
// shared memory. h is staged in shared memory in the activation type, padded so the
// B-fragment loads of a warp hit distinct banks.
#include <algorithm>

#include "cuda/rnn_persistent.cuh"

namespace ds2rt::detail::cuda::persistent {

namespace {

// 16 warps: the products are latency-bound chains of mma, so more warps in flight pay off.
constexpr int kMmaThreads = 512;
constexpr int kRegisterFragments = 16;  // A fragments (4 registers each) a warp may keep: 64 registers
constexpr int kFewUtterances = 2;       // batches this small get the instantiation with fewer h loads

// T: the type of R and h on chip; Out: the layer's output type (T, or float for a tf32 layer
// whose recurrent products run here in fp16: see planPersistent).
// Utterances: the most this instantiation takes (its h loads per thread scale with it).
// Registers: each warp keeps its A fragments in registers for the whole sequence instead of
// reading them from shared memory every step (the geometry must give every warp one row tile
// and at most kRegisterFragments column tiles).
template <typename T, typename Out, int Utterances, bool Registers>
__global__ void __launch_bounds__(kMmaThreads, 1) mmaKernelImpl(PersistentArgs a, MmaGeometry geo) {
  extern __shared__ uint4 shared[];
  const RecurrenceArgs& r = a.r;
  const int gates = r.gates, units = a.units, tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t h = r.h;
  const int dir = blockIdx.x / a.blocks_per_direction, block = blockIdx.x % a.blocks_per_direction;
  const int64_t first_unit = static_cast<int64_t>(block) * units;
  const int64_t tile_words = static_cast<int64_t>(geo.mtiles) * geo.ktiles * 32;  // uint4 per block
  const uint4* tiles = static_cast<const uint4*>(a.weights) + blockIdx.x * tile_words;

  const uint4* w_s = shared;
  T* h_s = reinterpret_cast<T*>(shared + (Registers ? 0 : tile_words));      // kMaxBatch x h_stride
  float* part_s = reinterpret_cast<float*>(h_s + kMaxBatch * geo.h_stride);  // ksplit x mtiles*16 x kMaxBatch

  if constexpr (!Registers)
    for (int64_t i = tid; i < tile_words; i += kMmaThreads) shared[i] = tiles[i];
  for (int64_t i = tid; i < kMaxBatch * geo.h_stride; i += kMmaThreads) h_s[i] = fromFloat<T>(0.0f);
  const int k_per_part = (geo.ktiles + geo.ksplit - 1) / geo.ksplit;
  uint4 a_frag[Registers ? kRegisterFragments : 1];
  if constexpr (Registers) {
    const int mt = warp % geo.mtiles, kt_begin = warp / geo.mtiles * k_per_part;
#pragma unroll
    for (int i = 0; i < kRegisterFragments; ++i) {
      const int kt = kt_begin + i;
      a_frag[i] = warp < geo.mtiles * geo.ksplit && i < k_per_part && kt < geo.ktiles
                      ? tiles[(static_cast<int64_t>(mt) * geo.ktiles + kt) * 32 + lane]
                      : make_uint4(0, 0, 0, 0);
    }
  }
  __syncthreads();
  const int max_len = maxLength(r);
  const int u = tid / kMaxBatch;
  OwnedUnit unit(r, dir, first_unit + u, tid % kMaxBatch, u < units);
  const int group = lane / 4, pair = (lane % 4) * 2;
  PhaseTrace trace(a.trace);

  for (int k = 0; k < max_len; ++k) {
    float x[4] = {0, 0, 0, 0};
    unit.prefetch(r, k, x);
    const unsigned long long* h_in = a.exchange + ((k % 2) * r.dirs + dir) * kMaxBatch * h;
    // Every word this thread needs is requested before any is waited for: one round trip.
    constexpr int kLoads = Utterances * 1024 / kMmaThreads;
    const int64_t words = r.n * h;
    unsigned long long word[kLoads];
#pragma unroll
    for (int q = 0; q < kLoads; ++q)
      if (tid + q * kMmaThreads < words) word[q] = loadRelaxed(h_in + tid + q * kMmaThreads);
#pragma unroll
    for (int q = 0; q < kLoads; ++q) {
      const int64_t i = tid + q * kMmaThreads;
      if (i < words) {
        while (static_cast<unsigned>(word[q] >> 32) != static_cast<unsigned>(k)) word[q] = loadRelaxed(h_in + i);
        h_s[(i / h) * geo.h_stride + i % h] = fromFloat<T>(__uint_as_float(static_cast<unsigned>(word[q])));
      }
    }
    for (int64_t i = tid + kLoads * kMmaThreads; i < words; i += kMmaThreads) {  // more than Utterances x 1024
      unsigned long long w = loadRelaxed(h_in + i);
      while (static_cast<unsigned>(w >> 32) != static_cast<unsigned>(k)) w = loadRelaxed(h_in + i);
      h_s[(i / h) * geo.h_stride + i % h] = fromFloat<T>(__uint_as_float(static_cast<unsigned>(w)));
    }
    trace.lap(0);
    __syncthreads();
    trace.lap(1);

    for (int job = warp; job < geo.mtiles * geo.ksplit; job += kMmaThreads / 32) {
      const int mt = job % geo.mtiles, part = job / geo.mtiles;
      const int kt_begin = part * k_per_part, kt_end = min(geo.ktiles, kt_begin + k_per_part);
      float acc[4][4] = {};  // four independent chains hide the mma latency
      const T* b_row = h_s + group * geo.h_stride + pair;  // utterance `group`, columns pair, pair + 1
      const auto product = [&](float* into, int kt, const uint4& fragment) {
        const unsigned b0 = *reinterpret_cast<const unsigned*>(b_row + kt * 16);
        const unsigned b1 = *reinterpret_cast<const unsigned*>(b_row + kt * 16 + 8);
        mma16816<T>(into, fragment, b0, b1);
      };
      if constexpr (Registers) {
#pragma unroll
        for (int i = 0; i < kRegisterFragments; ++i)
          if (kt_begin + i < kt_end) product(acc[i % 4], kt_begin + i, a_frag[i]);
      } else {
        const uint4* frags = w_s + (static_cast<int64_t>(mt) * geo.ktiles) * 32 + lane;
        int kt = kt_begin;
        for (; kt + 3 < kt_end; kt += 4) {
          product(acc[0], kt, frags[kt * 32]);
          product(acc[1], kt + 1, frags[(kt + 1) * 32]);
          product(acc[2], kt + 2, frags[(kt + 2) * 32]);
          product(acc[3], kt + 3, frags[(kt + 3) * 32]);
        }
        for (; kt < kt_end; ++kt) product(acc[0], kt, frags[kt * 32]);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[0][i] += acc[1][i] + acc[2][i] + acc[3][i];
      // C fragment: rows group and group + 8 of the tile, utterances pair and pair + 1.
      float* out = part_s + (static_cast<int64_t>(part) * geo.mtiles * 16 + mt * 16 + group) * kMaxBatch + pair;
      out[0] = acc[0][0];
      out[1] = acc[0][1];
      out[8 * kMaxBatch] = acc[0][2];
      out[8 * kMaxBatch + 1] = acc[0][3];
    }
    __syncthreads();
    trace.lap(2);

    float rec[4] = {0, 0, 0, 0};
    if (unit.active(k))  // parts outermost: four independent chains of shared-memory loads, not one
      for (int p = 0; p < geo.ksplit; ++p)
#pragma unroll
        for (int g = 0; g < 4; ++g)
          if (g < gates) rec[g] += part_s[(static_cast<int64_t>(p) * geo.mtiles * 16 + g * units + u) * kMaxBatch + unit.b];
    unit.finish<Out>(r, a.exchange, k, x, rec);
    trace.lap(3);
  }
}

template <typename T, typename Out>
void* mmaKernelFor(const MmaGeometry& g, int64_t batch) {
  const bool few = batch <= kFewUtterances, registers = g.weights_in_registers;
  if (few)
    return registers ? reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kFewUtterances, true>)
                     : reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kFewUtterances, false>);
  return registers ? reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kMaxBatch, true>)
                   : reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kMaxBatch, false>);
}

}  // namespace

MmaGeometry mmaGeometry(int gates, int units, int64_t hidden) {
  MmaGeometry g;
  g.mtiles = (gates * units + 15) / 16;
  g.ktiles = static_cast<int>((hidden + 15) / 16);
  g.ksplit = std::max(1, std::min(kMmaThreads / 32 / g.mtiles, g.ktiles));
  g.h_stride = g.ktiles * 16 + 8;  // + 8 elements: the 8 utterances' rows start in different banks
  const int k_per_part = (g.ktiles + g.ksplit - 1) / g.ksplit;
  g.weights_in_registers = g.mtiles * g.ksplit <= kMmaThreads / 32 && k_per_part <= kRegisterFragments;
  return g;
}

size_t mmaSharedBytes(const MmaGeometry& g, DataType type) {
  const size_t weights = g.weights_in_registers ? 0 : static_cast<size_t>(g.mtiles) * g.ktiles * 32 * sizeof(uint4);
  return weights + kMaxBatch * g.h_stride * sizeOf(type) +
         static_cast<size_t>(g.ksplit) * g.mtiles * 16 * kMaxBatch * sizeof(float);
}

int mmaThreads() { return kMmaThreads; }

void* mmaKernel(DataType type, DataType output, const MmaGeometry& g, int64_t batch) {
  check(type != DataType::kFloat32 && productsSupported(output, type),
        "internal: no tensor-core recurrent kernel for ", toString(type), " products with ", toString(output), " output");
  if (type == DataType::kBFloat16) return mmaKernelFor<__nv_bfloat16, __nv_bfloat16>(g, batch);
  if (output == DataType::kFloat32) return mmaKernelFor<__half, float>(g, batch);
  return mmaKernelFor<__half, __half>(g, batch);
}

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
