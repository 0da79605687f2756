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

// The B fragments of mma.m16n8k16 for two consecutive column tiles, (b0, b1) of the first in x, y
// and of the second in z, w: ldmatrix.x4 with each lane giving the address of one row (utterance)
// of one of the four 8 x 8 matrices (8 columns each). The memory clobber keeps it after the barrier
// that publishes h_s; not volatile, so that the compiler may issue it ahead of earlier mma.
template <typename T>
__device__ __forceinline__ uint4 loadFragmentPair(const T* row) {
  uint4 v;
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "r"(address)
      : "memory");
  return v;
}

// T: the type of R and h on chip; Out: the layer's output type (T, or float for a tf32 layer
// whose recurrent products run here in fp16: see planPersistent).
// Utterances: the most this instantiation takes (its h loads per thread scale with it).
// Registers: each warp keeps its A fragments in registers for the whole sequence instead of
// reading them from shared memory every step (the geometry must give every warp one row tile
// and at most kRegisterFragments column tiles).
// Straight (with Registers): every warp runs all kRegisterFragments column tiles without bound
// checks (MmaGeometry::straight_products).
template <typename T, typename Out, int Utterances, bool Registers, bool Straight>
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
  // With the weights in registers each warp has one job (a row tile, a part of the columns):
  // decomposed here once, not by two divisions at the start of every step's products.
  const int warp_mt = warp % geo.mtiles, warp_part = warp / geo.mtiles;
  // This thread's cell reads the partial sums of gate g, part p at mine[g * gate_stride + p * part_stride].
  const float* mine = part_s + u * kMaxBatch + unit.b;
  const int gate_stride = units * kMaxBatch, part_stride = geo.mtiles * 16 * kMaxBatch;
  const int group = lane / 4, pair = (lane % 4) * 2;
  // h arrives two units to a word (see PersistentArgs::exchange): H / 2 words an utterance.
  constexpr int kLoads = Utterances * 512 / kMmaThreads;
  const int64_t pairs = (h + 1) / 2, words = r.n * pairs;
  // Where this thread's first h word lands in h_s (utterance row, column pair); the next ones
  // follow without a division (one used to sit between each word's arrival and the barrier).
  const int first_row = static_cast<int>(tid / pairs), first_pair = static_cast<int>(tid % pairs);
  // This lane's row address for ldmatrix: row lane % 8 (utterance) of 8 x 8 matrix lane / 8, so
  // that one ldmatrix.x4 gives the B fragments (b0, b1) of column tiles kt and kt + 1.
  const T* b_lane = h_s + (lane % 8) * geo.h_stride + (lane / 8) * 8;
  PhaseTrace trace(a.trace);

  for (int k = 0; k < max_len; ++k) {
    float x[4] = {0, 0, 0, 0};
    unit.prefetch(r, k, x);
    const unsigned long long* h_in = exchangeBuffer(a.exchange, k, r.dirs, dir, pairs);
    // A word's two 16-bit values land as one 32-bit store (h_stride is even).
    const auto land = [&](int64_t row, int64_t pair, unsigned long long w) {
      *reinterpret_cast<unsigned*>(h_s + row * geo.h_stride + 2 * pair) = static_cast<unsigned>(w);
    };
    // Every word this thread needs is requested before any is waited for: one round trip.
    unsigned long long word[kLoads];
#pragma unroll
    for (int q = 0; q < kLoads; ++q)
      if (tid + q * kMmaThreads < words) word[q] = loadRelaxed(h_in + tid + q * kMmaThreads);
    int row = first_row, pair_index = first_pair;
#pragma unroll
    for (int q = 0; q < kLoads; ++q) {
      const int64_t i = tid + q * kMmaThreads;
      if (i < words) {
        while (static_cast<unsigned>(word[q] >> 32) != static_cast<unsigned>(k)) word[q] = loadRelaxed(h_in + i);
        land(row, pair_index, word[q]);
      }
      for (pair_index += kMmaThreads; pair_index >= pairs; pair_index -= static_cast<int>(pairs)) ++row;
    }
    for (int64_t i = tid + kLoads * kMmaThreads; i < words; i += kMmaThreads) {  // more than Utterances x 1024 units
      unsigned long long w = loadRelaxed(h_in + i);
      while (static_cast<unsigned>(w >> 32) != static_cast<unsigned>(k)) w = loadRelaxed(h_in + i);
      land(i / pairs, i % pairs, w);
    }
    trace.lap(0);
    __syncthreads();
    trace.lap(1);

    for (int job = warp; job < geo.mtiles * geo.ksplit; job += kMmaThreads / 32) {
      const int mt = Registers ? warp_mt : job % geo.mtiles, part = Registers ? warp_part : job / geo.mtiles;
      const int kt_begin = part * k_per_part, kt_end = min(geo.ktiles, kt_begin + k_per_part);
      float acc[4][4] = {};  // independent chains hide the mma latency (four; two with the weights in registers)
      // A pair load may read one tile past kt_end (padding or the next row: finite, never multiplied).
      if constexpr (Registers) {
        // One ldmatrix gives h's fragments for two mma; the next pair's is requested before this
        // pair's mma. Two chains, not four: the registers freed hold that load (at 512 threads a
        // thread has 128, and the A fragments take 64); 16 warps give the tensor cores enough
        // independent chains. Straight: every warp runs all kRegisterFragments tiles, those past its
        // part with zero A fragments (h_s is zero there, see mmaGeometry): straight-line code, where
        // a bound check per tile cost a branch, register moves and a warp sync around each mma. The
        // checks stay for parts of few tiles (small layers: not 16 mma of mostly zeros) and 3-8
        // utterances.
        uint4 next = loadFragmentPair(b_lane + kt_begin * 16);
#pragma unroll
        for (int p = 0; p < kRegisterFragments / 2; ++p)
          if (Straight || kt_begin + 2 * p < kt_end) {
            const uint4 b = next;
            if (p + 1 < kRegisterFragments / 2 && (Straight || kt_begin + 2 * p + 2 < kt_end))
              next = loadFragmentPair(b_lane + (kt_begin + 2 * p + 2) * 16);
            mma16816<T>(acc[0], a_frag[2 * p], b.x, b.y);
            if (Straight || kt_begin + 2 * p + 1 < kt_end) mma16816<T>(acc[1], a_frag[2 * p + 1], b.z, b.w);
          }
      } else {
        const uint4* frags = w_s + (static_cast<int64_t>(mt) * geo.ktiles) * 32 + lane;
        int kt = kt_begin;
        for (; kt + 3 < kt_end; kt += 4) {
          const uint4 b01 = loadFragmentPair(b_lane + kt * 16), b23 = loadFragmentPair(b_lane + (kt + 2) * 16);
          const uint4 a0 = frags[kt * 32], a1 = frags[(kt + 1) * 32], a2 = frags[(kt + 2) * 32], a3 = frags[(kt + 3) * 32];
          mma16816<T>(acc[0], a0, b01.x, b01.y);
          mma16816<T>(acc[1], a1, b01.z, b01.w);
          mma16816<T>(acc[2], a2, b23.x, b23.y);
          mma16816<T>(acc[3], a3, b23.z, b23.w);
        }
        for (; kt < kt_end; ++kt) {
          const uint4 b01 = loadFragmentPair(b_lane + kt * 16);
          mma16816<T>(acc[0], frags[kt * 32], b01.x, b01.y);
        }
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
    if (unit.active(k)) {  // parts outermost: independent chains of shared-memory loads, one per gate
      const float* q = mine;
#pragma unroll 4
      for (int p = 0; p < geo.ksplit; ++p, q += part_stride) {
        rec[0] += q[0];
        if (gates >= 3) {  // GRU, LSTM (a vanilla RNN has one gate)
          rec[1] += q[gate_stride];
          rec[2] += q[2 * gate_stride];
        }
        if (gates == 4) rec[3] += q[3 * gate_stride];
      }
    }
    unit.step<Out, true>(r, k, x, rec);
    // Units u and u + 1 (u even; blocks own an even number of units) publish one word: the thread
    // of u + 1 is kMaxBatch lanes on, in the same warp. A unit past H is never active: its h is 0.
    const unsigned bits = bitsOf(fromFloat<T>(unit.h));
    const unsigned next_bits = __shfl_down_sync(0xffffffffu, bits, kMaxBatch);
    if (unit.owner && u % 2 == 0)
      storeRelaxed(exchangeBuffer(a.exchange, k + 1, r.dirs, dir, pairs) + unit.b * pairs + unit.j / 2,
                   tagged(bits, next_bits, k + 1));
    trace.lap(3);
  }
}

template <typename T, typename Out>
void* mmaKernelFor(const MmaGeometry& g, int64_t batch) {
  const bool few = batch <= kFewUtterances, registers = g.weights_in_registers;
  if (few && g.straight_products) return reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kFewUtterances, true, true>);
  if (few)
    return registers ? reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kFewUtterances, true, false>)
                     : reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kFewUtterances, false, false>);
  // (3-8 utterances run here only where the wide-batch kernel cannot: the bound-checked loop.)
  return registers ? reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kMaxBatch, true, false>)
                   : reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kMaxBatch, false, false>);
}

}  // namespace

MmaGeometry mmaGeometry(int gates, int units, int64_t hidden) {
  MmaGeometry g;
  g.mtiles = (gates * units + 15) / 16;
  g.ktiles = static_cast<int>((hidden + 15) / 16);
  g.ksplit = std::max(1, std::min(kMmaThreads / 32 / g.mtiles, g.ktiles));
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
