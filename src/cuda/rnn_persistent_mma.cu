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

// Named barriers of a stack with emit warps (0 is __syncthreads'): the step warps' own; h(k - 1)
// landed (step warps arrive, emit warps wait); the emit warps' own; the emit warps done with a round
// (they arrive, the step warps wait a round later); both roles' setup done.
constexpr int kStepBarrier = 1, kLandedBarrier = 2, kEmitBarrier = 3, kEmittedBarrier = 4, kSetupBarrier = 5;

// A barrier of the first `threads` threads (the warps that run the step, without a stack's emit warps).
__device__ __forceinline__ void barrierOf(int id, int threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}
// Counts this thread's arrival at barrier `id` (of `threads`) without waiting for the others.
__device__ __forceinline__ void arriveAt(int id, int threads) {
  asm volatile("bar.arrive %0, %1;" ::"r"(id), "r"(threads) : "memory");
}
// A barrier of all `threads` reached from different instructions (a stack's emit warps and step
// warps after their setup): the unaligned form. __syncthreads() (bar.sync 0, aligned) reached from
// two places is undefined; compute-sanitizer's synccheck reported it there.
__device__ __forceinline__ void barrierFromAnywhere(int id, int threads) {
  asm volatile("barrier.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

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

// A warp's products of one row tile with h over column tiles [kt_begin, kt_end), A fragments read
// from shared memory (`frags`: the tile's first fragment, this lane's), in `Chains` chains (four, or
// two where the weights in registers leave room for no more).
// A pair load may read one tile past kt_end (padding or the next row: finite, never multiplied).
template <typename T, int Chains>
__device__ __forceinline__ void productsFromShared(float (&acc)[4][4], const uint4* frags, const T* b_lane, int kt_begin,
                                                   int kt_end) {
  static_assert(Chains == 2 || Chains == 4);
  int kt = kt_begin;
  if constexpr (Chains == 4)
    for (; kt + 3 < kt_end; kt += 4) {
      const uint4 b01 = loadFragmentPair(b_lane + kt * 16), b23 = loadFragmentPair(b_lane + (kt + 2) * 16);
      const uint4 a0 = frags[kt * 32], a1 = frags[(kt + 1) * 32], a2 = frags[(kt + 2) * 32], a3 = frags[(kt + 3) * 32];
      mma16816<T>(acc[0], a0, b01.x, b01.y);
      mma16816<T>(acc[1], a1, b01.z, b01.w);
      mma16816<T>(acc[2], a2, b23.x, b23.y);
      mma16816<T>(acc[3], a3, b23.z, b23.w);
    }
  for (; kt + 1 < kt_end; kt += 2) {
    const uint4 b01 = loadFragmentPair(b_lane + kt * 16);
    mma16816<T>(acc[0], frags[kt * 32], b01.x, b01.y);
    mma16816<T>(acc[1], frags[(kt + 1) * 32], b01.z, b01.w);
  }
  for (; kt < kt_end; ++kt) {
    const uint4 b01 = loadFragmentPair(b_lane + kt * 16);
    mma16816<T>(acc[0], frags[kt * 32], b01.x, b01.y);
  }
}

// Sums a warp's chains and stores its C fragment (rows group and group + 8 of the tile, utterances
// pair and pair + 1) where the cells read their part: partials + (part, row, utterance).
__device__ __forceinline__ void storePartials(float (&acc)[4][4], float* partials, int part, int mt, const MmaGeometry& geo,
                                              int group, int pair) {
#pragma unroll
  for (int i = 0; i < 4; ++i) acc[0][i] += acc[1][i] + acc[2][i] + acc[3][i];
  float* out = partials + (static_cast<int64_t>(part) * geo.mtiles * 16 + mt * 16 + group) * kMaxBatch + pair;
  out[0] = acc[0][0];
  out[1] = acc[0][1];
  out[8 * kMaxBatch] = acc[0][2];
  out[8 * kMaxBatch + 1] = acc[0][3];
}

// The steps of one layer in one block. T: the type of R and h on chip; Out: the layer's output
// type (T, or float for a tf32 layer whose recurrent products run here in fp16: see planPersistent).
// Utterances: the most this instantiation takes (its h loads per thread scale with it).
// Registers: each warp keeps its A fragments in registers for the whole sequence instead of
// reading them from shared memory every step (the geometry must give every warp one row tile
// and at most kRegisterFragments column tiles).
// Straight (with Registers): every warp runs all kRegisterFragments column tiles without bound
// checks (MmaGeometry::straight_products).
// Slot: -1 for a layer alone (blocks [0, B) its forward direction, [B, 2B) its backward one);
// 0 or 1 for the half of a stacked launch (StackArgs) that runs layer `r`.
// Gates: 4 (LSTM) or 3 (GRU) compiles the cell and every loop over gates for that cell (the
// straight-line instantiations: a smaller step, no branches over cell types); 0 reads r.gates.
template <typename T, typename Out, int Utterances, bool Registers, bool Straight, int Slot, int Gates, bool Emit = false>
__device__ __forceinline__ void mmaSteps(const PersistentArgs& a, const MmaGeometry& geo, const RecurrenceArgs& r,
                                         const StackArgs& stack) {
  constexpr bool kStacked = Slot >= 0;
  extern __shared__ uint4 shared[];
  const int gates = Gates ? Gates : r.gates, units = a.units, tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t h = r.h;
  const int block = blockIdx.x % a.blocks_per_direction;
  const int dir = kStacked ? 0 : blockIdx.x / a.blocks_per_direction;  // in r's terms
  // The exchange holds two h sequences: the two directions, or the two layers of a stack.
  const int lanes = kStacked ? 2 : r.dirs, lane_of_h = kStacked ? Slot : dir;
  const int64_t first_unit = static_cast<int64_t>(block) * units;
  const int64_t tile_words = static_cast<int64_t>(geo.mtiles) * geo.ktiles * 32;  // uint4 per block
  const uint4* tiles = kStacked ? static_cast<const uint4*>(Slot == 0 ? a.weights : stack.second_weights) +
                                      block * tile_words
                                : static_cast<const uint4*>(a.weights) + blockIdx.x * tile_words;
  // A stacked half multiplies h by the next layer's input weights too (none after the last layer).
  const uint4* next_input = kStacked ? stack.next_input[Slot] : nullptr;
  const bool emits = next_input != nullptr;

  // Shared memory: [R tiles, or in a stack the next layer's input tiles] [h: one buffer, two in a
  // stack (the next step lands in one while the other is still multiplied by the input weights)]
  // [partial sums] [in a stack two more, for the input weights' products].
  const uint4* w_s = shared;
  T* h_s = reinterpret_cast<T*>(shared + (Registers && !kStacked ? 0 : tile_words));
  const int64_t h_buffer = kMaxBatch * geo.h_stride;
  float* part_s = reinterpret_cast<float*>(h_s + (kStacked ? 2 : 1) * h_buffer);
  const int part_floats = geo.ksplit * geo.mtiles * 16 * kMaxBatch, emit_floats = emitParts(geo) * geo.mtiles * 16 * kMaxBatch;
  float* emit_s = part_s + part_floats;  // stack only: two buffers, by step parity
  // With emit warps, the step's own barriers take only the warps before them (all, without).
  constexpr int step_threads = kMmaThreads - (Emit ? 32 * kEmitWarps : 0);
  const bool emit_warp = Emit && tid >= step_threads;
  // The step warps' barrier: a named one of their own beside emit warps, else the whole block's.
  const auto stepWarpsSync = [] {
    if constexpr (Emit) barrierOf(kStepBarrier, step_threads);
    else __syncthreads();
  };

  if constexpr (!Registers)
    for (int64_t i = tid; i < tile_words; i += kMmaThreads) shared[i] = tiles[i];
  if (emits)
    for (int64_t i = tid; i < tile_words; i += kMmaThreads) shared[i] = next_input[block * tile_words + i];
  for (int64_t i = tid; i < (kStacked ? 2 : 1) * h_buffer; i += kMmaThreads) h_s[i] = fromFloat<T>(0.0f);
  const int k_per_part = (geo.ktiles + geo.ksplit - 1) / geo.ksplit;
  const int max_len = maxLength(r);
  const int u = tid / kMaxBatch;
  OwnedUnit unit(r, dir, first_unit + u, tid % kMaxBatch, u < units);
  // With the weights in registers each warp has one job (a row tile, a part of the columns):
  // decomposed here once, not by two divisions at the start of every step's products.
  const int warp_mt = warp % geo.mtiles, warp_part = warp / geo.mtiles;
  // This thread's cell reads the partial sums of gate g, part p at mine[g * gate_stride + p * part_stride].
  const int mine = u * kMaxBatch + unit.b;
  const int gate_stride = units * kMaxBatch, part_stride = geo.mtiles * 16 * kMaxBatch;
  const int group = lane / 4, pair = (lane % 4) * 2;
  // h arrives two units to a word (see PersistentArgs::exchange): H / 2 words an utterance.
  // The step warps land h (all warps where there are no emit warps): kLoads words each at most.
  constexpr int kLoads = (Utterances * 512 + step_threads - 1) / step_threads;
  const int64_t pairs = (h + 1) / 2, words = r.n * pairs;
  // Where this thread's first h word lands in h_s (utterance row, column pair); the next ones
  // follow without a division (one used to sit between each word's arrival and the barrier).
  const int first_row = static_cast<int>(tid / pairs), first_pair = static_cast<int>(tid % pairs);
  // This lane's row address for ldmatrix: row lane % 8 (utterance) of 8 x 8 matrix lane / 8, so
  // that one ldmatrix.x4 gives the B fragments (b0, b1) of column tiles kt and kt + 1.
  const T* b_lane = h_s + (lane % 8) * geo.h_stride + (lane / 8) * 8;
  PhaseTrace trace(a.trace);

  // This thread's share of h(k - 1) (of the step warps' threads), waited for word by word and landed
  // in buffer `parity`.
  const auto landH = [&](int k, int parity) {
    const unsigned long long* h_in = exchangeBuffer(a.exchange, k, lanes, lane_of_h, pairs);
    T* h_land = h_s + parity * h_buffer;
    // A word's two 16-bit values land as one 32-bit store (h_stride is even).
    const auto land = [&](int64_t row, int64_t pair, unsigned long long w) {
      *reinterpret_cast<unsigned*>(h_land + row * geo.h_stride + 2 * pair) = static_cast<unsigned>(w);
    };
    // Every word this thread needs is requested before any is waited for: one round trip.
    unsigned long long word[kLoads];
#pragma unroll
    for (int q = 0; q < kLoads; ++q)
      if (tid + q * step_threads < words) word[q] = loadRelaxed(h_in + tid + q * step_threads);
    int row = first_row, pair_index = first_pair;
#pragma unroll
    for (int q = 0; q < kLoads; ++q) {
      const int64_t i = tid + q * step_threads;
      if (i < words) {
        while (static_cast<unsigned>(word[q] >> 32) != static_cast<unsigned>(k)) word[q] = loadRelaxed(h_in + i);
        land(row, pair_index, word[q]);
      }
      for (pair_index += step_threads; pair_index >= pairs; pair_index -= static_cast<int>(pairs)) ++row;
    }
    for (int64_t i = tid + kLoads * step_threads; i < words; i += step_threads) {  // more than Utterances x 1024 units
      unsigned long long w = loadRelaxed(h_in + i);
      while (static_cast<unsigned>(w >> 32) != static_cast<unsigned>(k)) w = loadRelaxed(h_in + i);
      land(i / pairs, i % pairs, w);
    }
  };
  // The projection of step `time` for the next layer, from the input weights' partial sums of the
  // step that gathered h(time) (buffer `parity`): the unit, gates and utterance of `who` (a cell
  // thread, or an emit warp's thread), whose sums start at `at_sums`.
  const auto storeProjection = [&](const OwnedUnit& who, int at_sums, int64_t time, int parity) {
    if (!who.owner || time < 0 || time >= who.len) return;
    const float* sums = emit_s + parity * emit_floats + at_sums;
    const int64_t at = (time * r.n + who.b) * gates * h + who.j;
#pragma unroll
    for (int g = 0; g < 4; ++g)
      if (g < gates) {
        float v = stack.next_bias[Slot][g * h + who.j];
        for (int p = 0; p < emitParts(geo); ++p) v += sums[g * gate_stride + p * part_stride];
        // To the second half as a word with its step, which its reader spins on (no fence); to
        // the next launch as a float.
        if (Slot == 0) storeRelaxed(stack.handoff + at + g * h, tagged(v, static_cast<unsigned>(time + 1)));
        else stack.emitted[at + g * h] = v;
      }
  };
  // In a stack that emits, one more round after the last step gathers the last h for the next layer.
  const int rounds = max_len + (emits ? 1 : 0);

  // Emit warps (a stack's last four, where the geometry has them; batch 1) run a loop of their own,
  // without R's fragments: each round they wait for the step warps to land h(k - 1), multiply it by
  // the next layer's input weights (a quarter of the columns of every row tile each) while the step
  // warps run step k, and store that projection. The step warps wait for them (kEmittedBarrier) only
  // before landing a round later: the buffer read here is next written in round k + 2, and the
  // barriers' rounds never mix.
  if (emit_warp) {
    const int part = warp - step_threads / 32, per_part = (geo.ktiles + kEmitWarps - 1) / kEmitWarps;
    const int kt_begin = part * per_part, kt_end = min(geo.ktiles, kt_begin + per_part);
    const int emit_u = (tid - step_threads) / kMaxBatch;
    const OwnedUnit emitter(r, dir, first_unit + emit_u, tid % kMaxBatch, emit_u < units);
    barrierFromAnywhere(kSetupBarrier, kMmaThreads);
    for (int k = 0; k < rounds; ++k) {
      const int parity = k % 2;
      barrierOf(kLandedBarrier, kMmaThreads);  // the step warps have landed h(k - 1)
      if (emits && k >= 1) {
        for (int mt = 0; mt < geo.mtiles; ++mt) {
          float acc[4][4] = {};
          productsFromShared<T, 4>(acc, w_s + (static_cast<int64_t>(mt) * geo.ktiles) * 32 + lane,
                                   b_lane + parity * h_buffer, kt_begin, kt_end);
          storePartials(acc, emit_s + parity * emit_floats, part, mt, geo, group, pair);
        }
        barrierOf(kEmitBarrier, 32 * kEmitWarps);
        storeProjection(emitter, emit_u * kMaxBatch + emitter.b, k - 1, parity);
      }
      arriveAt(kEmittedBarrier, kMmaThreads);  // done with buffer `parity`
    }
    return;
  }

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
  if constexpr (Emit) barrierFromAnywhere(kSetupBarrier, kMmaThreads);  // with the emit warps' setup
  else __syncthreads();
  // Without emit warps, a stack's step warps multiply h by the next layer's input weights too, in
  // R's split, into the partial sums of buffer `parity`.
  const auto emitProducts = [&](int parity) {
    if (warp >= geo.mtiles * geo.ksplit) return;
    const int kt_begin = warp_part * k_per_part, kt_end = min(geo.ktiles, kt_begin + k_per_part);
    float acc[4][4] = {};
    productsFromShared<T, 2>(acc, w_s + (static_cast<int64_t>(warp_mt) * geo.ktiles) * 32 + lane,
                             b_lane + parity * h_buffer, kt_begin, kt_end);
    storePartials(acc, emit_s + parity * emit_floats, warp_part, warp_mt, geo, group, pair);
  };

  for (int k = 0; k < rounds; ++k) {
    const bool last_round = emits && k == max_len;
    const int parity = kStacked ? k % 2 : 0;  // the buffer h(k - 1) lands in
    float x[4] = {0, 0, 0, 0};
    // The second half's projection of this step: words the first half tagged with step + 1,
    // requested with h and waited for after it (the first half is a few steps ahead: no wait).
    unsigned long long handed[Slot == 1 ? 4 : 1];
    const int64_t handoff_at = (static_cast<int64_t>(k) * r.n + unit.b) * gates * h + unit.j;
    if (Slot == 1 && unit.active(k)) {
#pragma unroll
      for (int g = 0; g < 4; ++g)
        if (g < gates) handed[g] = loadRelaxed(stack.handoff + handoff_at + g * h);
    } else if (!last_round) {
      unit.prefetch(r, k, x);
    }
    landH(k, parity);
    if (Slot == 1 && unit.active(k))
#pragma unroll
      for (int g = 0; g < 4; ++g)
        if (g < gates) {
          while (static_cast<unsigned>(handed[g] >> 32) != static_cast<unsigned>(k + 1))
            handed[g] = loadRelaxed(stack.handoff + handoff_at + g * h);
          x[g] = __uint_as_float(static_cast<unsigned>(handed[g]));
        }
    trace.lap(0);
    if constexpr (Emit) {
      // The emit warps wait for h(k - 1) without holding up the step warps, which wait for them
      // only if they are a whole round behind (the barriers' rounds must not mix).
      if (k >= 1) barrierOf(kEmittedBarrier, kMmaThreads);
      arriveAt(kLandedBarrier, kMmaThreads);
      barrierOf(kStepBarrier, step_threads);
    } else {
      __syncthreads();
    }
    trace.lap(1);
    if (last_round) {
      if constexpr (!Emit) {
        storeProjection(unit, mine, k - 2, 1 - parity);
        emitProducts(parity);
        __syncthreads();
        storeProjection(unit, mine, k - 1, parity);
      }
      break;
    }

    const T* b_step = b_lane + parity * h_buffer;
    for (int job = warp; job < geo.mtiles * geo.ksplit; job += kMmaThreads / 32) {
      const int mt = Registers ? warp_mt : job % geo.mtiles, part = Registers ? warp_part : job / geo.mtiles;
      const int kt_begin = part * k_per_part, kt_end = min(geo.ktiles, kt_begin + k_per_part);
      float acc[4][4] = {};  // independent chains hide the mma latency (four; two with the weights in registers)
      if constexpr (Registers) {
        // One ldmatrix gives h's fragments for two mma; the next pair's is requested before this
        // pair's mma. Two chains, not four: the registers freed hold that load (at 512 threads a
        // thread has 128, and the A fragments take 64); 16 warps give the tensor cores enough
        // independent chains. Straight: every warp runs all kRegisterFragments tiles, those past its
        // part with zero A fragments (h_s is zero there, see mmaGeometry): straight-line code, where
        // a bound check per tile cost a branch, register moves and a warp sync around each mma. The
        // checks stay for parts of few tiles (small layers: not 16 mma of mostly zeros) and 3-8
        // utterances. (A pair load may read one tile past kt_end: finite, never multiplied.)
        uint4 next = loadFragmentPair(b_step + kt_begin * 16);
#pragma unroll
        for (int p = 0; p < kRegisterFragments / 2; ++p)
          if (Straight || kt_begin + 2 * p < kt_end) {
            const uint4 b = next;
            if (p + 1 < kRegisterFragments / 2 && (Straight || kt_begin + 2 * p + 2 < kt_end))
              next = loadFragmentPair(b_step + (kt_begin + 2 * p + 2) * 16);
            mma16816<T>(acc[0], a_frag[2 * p], b.x, b.y);
            if (Straight || kt_begin + 2 * p + 1 < kt_end) mma16816<T>(acc[1], a_frag[2 * p + 1], b.z, b.w);
          }
      } else {
        productsFromShared<T, 4>(acc, w_s + (static_cast<int64_t>(mt) * geo.ktiles) * 32 + lane, b_step, kt_begin, kt_end);
      }
      storePartials(acc, part_s, part, mt, geo, group, pair);
    }
    stepWarpsSync();
    trace.lap(2);

    float rec[4] = {0, 0, 0, 0};
    if (unit.active(k)) {  // parts outermost: independent chains of shared-memory loads, one per gate
      const float* q = part_s + mine;
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
    // Traced, the sums and then x are waited for apart, each timed.
    trace.lapAfter(3, rec[0] + rec[1] + rec[2] + rec[3]);
    trace.lapAfter(4, x[0] + x[1] + x[2] + x[3]);
    unit.step<Out, true, Gates>(r, k, x, rec);
    trace.lapAfter(5, unit.h);
    // Units u and u + 1 (u even; blocks own an even number of units) publish one word: the thread
    // of u + 1 is kMaxBatch lanes on, in the same warp. A unit past H is never active: its h is 0.
    const unsigned bits = bitsOf(fromFloat<T>(unit.h));
    const unsigned next_bits = __shfl_down_sync(0xffffffffu, bits, kMaxBatch);
    if (unit.owner && u % 2 == 0)
      storeRelaxed(exchangeBuffer(a.exchange, k + 1, lanes, lane_of_h, pairs) + unit.b * pairs + unit.j / 2,
                   tagged(bits, next_bits, k + 1));
    trace.lap(6);
    // The warps without cells wait for them here rather than start polling for the next h at once:
    // their polling slowed every step (H100, fp16 1 x 10 s: biGRU 5.50 -> 5.18 ms, biLSTM 5.31 -> 5.19).
    stepWarpsSync();
    // In a stack without emit warps, while the other blocks' h is on its way: the next layer's
    // projection of the previous step's h (summed now, multiplied in the step before), then this
    // step's products.
    if (!Emit && emits) {
      storeProjection(unit, mine, k - 2, 1 - parity);
      if (k >= 1) emitProducts(parity);
    }
  }
  // The emit warps' arrival of their last round.
  if (Emit && rounds > 0) barrierOf(kEmittedBarrier, kMmaThreads);
}

template <typename T, typename Out, int Utterances, bool Registers, bool Straight, int Gates = 0>
__global__ void __launch_bounds__(kMmaThreads, 1) mmaKernelImpl(PersistentArgs a, MmaGeometry geo) {
  mmaSteps<T, Out, Utterances, Registers, Straight, -1, Gates>(a, geo, a.r, StackArgs{});
}

// Two layers of a stack: the first half of the grid runs a.r, the second stack.second.
template <typename T, typename Out, bool Straight, int Gates = 0, bool Emit = false>
__global__ void __launch_bounds__(kMmaThreads, 1) stackedKernelImpl(PersistentArgs a, MmaGeometry geo, StackArgs stack) {
  if (blockIdx.x < a.blocks_per_direction)
    mmaSteps<T, Out, kFewUtterances, true, Straight, 0, Gates, Emit>(a, geo, a.r, stack);
  else
    mmaSteps<T, Out, kFewUtterances, true, Straight, 1, Gates, Emit>(a, geo, stack.second, stack);
}

// The straight-line instantiations come per cell (LSTM, GRU, others through r.gates).
template <typename T, typename Out>
void* straightMmaKernel(int gates) {
  if (gates == 4) return reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kFewUtterances, true, true, 4>);
  if (gates == 3) return reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kFewUtterances, true, true, 3>);
  return reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kFewUtterances, true, true>);
}

template <typename T, typename Out>
void* mmaKernelFor(const MmaGeometry& g, int64_t batch) {
  const bool few = batch <= kFewUtterances, registers = g.weights_in_registers;
  if (few && g.straight_products) return straightMmaKernel<T, Out>(g.gates);
  if (few)
    return registers ? reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kFewUtterances, true, false>)
                     : reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kFewUtterances, false, false>);
  // (3-8 utterances run here only where the wide-batch kernel cannot: the bound-checked loop.)
  return registers ? reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kMaxBatch, true, false>)
                   : reinterpret_cast<void*>(&mmaKernelImpl<T, Out, kMaxBatch, false, false>);
}

template <typename T, typename Out, bool Emit>
void* straightStackedKernel(int gates) {
  return kernelForGates(gates, [](auto g) {
    return reinterpret_cast<void*>(&stackedKernelImpl<T, Out, true, decltype(g)::value, Emit>);
  });
}

// Emit warps come only with straight-line products (stackedGeometry).
template <typename T, typename Out>
void* stackedKernelFor(const MmaGeometry& g) {
  if (!g.straight_products) return reinterpret_cast<void*>(&stackedKernelImpl<T, Out, false>);
  return g.emit_warps ? straightStackedKernel<T, Out, true>(g.gates) : straightStackedKernel<T, Out, false>(g.gates);
}

}  // namespace

void* stackedKernel(DataType type, DataType output, const MmaGeometry& g) {
  check(type != DataType::kFloat32 && productsSupported(output, type),
        "internal: no stacked recurrent kernel for ", toString(type), " products with ", toString(output), " output");
  return kernelForTypes(type, output, [&](auto t, auto out) { return stackedKernelFor<decltype(t), decltype(out)>(g); });
}

void* mmaKernel(DataType type, DataType output, const MmaGeometry& g, int64_t batch) {
  check(type != DataType::kFloat32 && productsSupported(output, type),
        "internal: no tensor-core recurrent kernel for ", toString(type), " products with ", toString(output), " output");
  return kernelForTypes(type, output, [&](auto t, auto out) { return mmaKernelFor<decltype(t), decltype(out)>(g, batch); });
}

}  // namespace ds2rt::detail::cuda::persistent
