// AVX-512 recurrent step (see rnn_cell.h). Compiled for AVX-512F through target attributes, so the
// library still runs on older CPUs (haveAvx512() says false there).
// GCC 12 warns about _mm512_undefined_ps() inside its own intrinsics headers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/rnn_cell.h"
#include "cpu/rnn_cell_avx512.h"
#include "ds2rt/error.h"
#include "ds2rt/weights.h"

#define DS2RT_VNNI __attribute__((target("avx512f,avx512dq,avx512bw,avx512vnni,fma")))

namespace ds2rt::detail::cpu {

PackedRecurrent packRecurrent(const float* weight, int gates, int64_t hidden) {
  PackedRecurrent p;
  p.gates = gates;
  p.hidden = hidden;
  p.blocks = (hidden + kUnitBlock - 1) / kUnitBlock;
  p.data = alignedArray<float>(p.blocks * hidden * gates * kUnitBlock);
  float* out = p.data.get();
  for (int64_t b = 0; b < p.blocks; ++b)
    for (int64_t k = 0; k < hidden; ++k)
      for (int g = 0; g < gates; ++g)
        for (int l = 0; l < kUnitBlock; ++l) {
          const int64_t unit = b * kUnitBlock + l;
          *out++ = unit < hidden ? weight[(g * hidden + unit) * hidden + k] : 0.0f;
        }
  return p;
}

// Symmetric int8 scale of one row: its largest magnitude maps to 127 (1 for an all-zero row).
static float rowScale(const float* row, int64_t cols) {
  float peak = 0;
  for (int64_t c = 0; c < cols; ++c) peak = std::max(peak, std::abs(row[c]));
  return peak > 0 ? peak / 127.0f : 1.0f;
}

// Symmetric int8 quantisation per row with the scale that minimises the row's squared error, looked
// for between the largest magnitude's (max / 127) and 3/4 of it (clipping a few large weights can
// cost less than coarser steps for all the others): 0.05 apart, then 0.0125 around the best. Against
// max / 127 alone this took a 5 x 256 biGRU's int8 output error (the worst of four seeds, without
// AMX) from 2.07e-2 to 1.69e-2; the search costs ~0.2 s of loading a 1024 x 5 biLSTM's int8 engine.
void quantizeRows(const float* w, int64_t rows, int64_t cols, int8_t* q, float* scale) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: (x + kRound) - kRound rounds to nearest even, |x| < 2^22
#pragma omp parallel for if (rows * cols > (int64_t{1} << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    const float full = rowScale(row, cols);
    const auto squared_error = [&](float fraction) {
      const float s = full * fraction, inverse = 1.0f / s;
      float lanes[8] = {};  // independent sums, so that the loop vectorises
      const auto at = [&](int64_t c) {
        const float d = std::clamp((row[c] * inverse + kRound) - kRound, -127.0f, 127.0f) * s - row[c];
        return d * d;
      };
      int64_t c = 0;
      for (; c + 8 <= cols; c += 8)
        for (int j = 0; j < 8; ++j) lanes[j] += at(c + j);
      float error = 0;
      for (; c < cols; ++c) error += at(c);
      for (const float lane : lanes) error += lane;
      return error;
    };
    float best = 1.0f, best_error = squared_error(1.0f);
    const auto consider = [&](float fraction) {
      if (fraction > 1.0f || fraction < 0.75f) return;
      const float error = squared_error(fraction);
      if (error < best_error) best_error = error, best = fraction;
    };
    for (const float fraction : {0.95f, 0.9f, 0.85f, 0.8f, 0.75f}) consider(fraction);
    const float coarse = best;
    for (const float offset : {-0.025f, -0.0125f, 0.0125f, 0.025f}) consider(coarse + offset);
    scale[r] = full * best;
    const float inverse = 1.0f / scale[r];
    for (int64_t c = 0; c < cols; ++c)
      q[r * cols + c] = static_cast<int8_t>(std::clamp(std::nearbyint(row[c] * inverse), -127.0f, 127.0f));
  }
}

PackedRecurrentInt8 packRecurrentInt8(const int8_t* q, const float* row_scale, int gates, int64_t hidden) {
  PackedRecurrentInt8 p;
  p.gates = gates;
  p.hidden = hidden;
  p.blocks = (hidden + kUnitBlock - 1) / kUnitBlock;
  p.depth = (hidden + 3) / 4 * 4;
  p.data = alignedArray<int8_t>(p.blocks * p.depth * gates * kUnitBlock);
  p.scale = alignedArray<float>(p.blocks * gates * kUnitBlock);
  p.offset = alignedArray<int32_t>(p.blocks * gates * kUnitBlock);
  int8_t* out = p.data.get();
  for (int64_t b = 0; b < p.blocks; ++b) {
    for (int64_t k4 = 0; k4 < p.depth; k4 += 4)
      for (int g = 0; g < gates; ++g)
        for (int l = 0; l < kUnitBlock; ++l)
          for (int i = 0; i < 4; ++i) {
            const int64_t unit = b * kUnitBlock + l, k = k4 + i;
            *out++ = unit < hidden && k < hidden ? q[(g * hidden + unit) * hidden + k] : 0;
          }
    for (int g = 0; g < gates; ++g)
      for (int l = 0; l < kUnitBlock; ++l) {
        const int64_t unit = b * kUnitBlock + l, at = (b * gates + g) * kUnitBlock + l;
        int32_t sum = 0;
        if (unit < hidden)
          for (int64_t k = 0; k < hidden; ++k) sum += q[(g * hidden + unit) * hidden + k];
        p.scale[at] = unit < hidden ? row_scale[g * hidden + unit] : 0.0f;
        p.offset[at] = 128 * sum;
      }
  }
  return p;
}

bool haveVnni() {
  static const bool have = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
  return have;
}

bool haveAvx512() {
  static const bool have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return have;
}

namespace {

using namespace avx512;

// acc[r][g] += sum over k in [k0, k1) of h(r, k) * w[k][g][0..15], h(r, k) = h[r * row_stride + k *
// k_stride] (the step's rows, or R rows interleaved per k: one cache line, where rows `hidden` floats
// apart would share L1 sets); each k also asks for `per_k` lines of weights from `ahead` on.
template <int G, int R>
DS2RT_AVX512 inline void accumulate(const float* w, const float* h, int64_t row_stride, int64_t k_stride, int64_t k0,
                                    int64_t k1, const char* ahead, int per_k, __m512 (&acc)[R][G]) {
  for (int64_t k = k0; k < k1; ++k) {
    for (int j = 0; j < per_k; ++j) _mm_prefetch(ahead + ((k - k0) * per_k + j) * 64, _MM_HINT_T0);
    const float* wk = w + k * G * kUnitBlock;
    __m512 wv[G];
    for (int g = 0; g < G; ++g) wv[g] = _mm512_load_ps(wk + g * kUnitBlock);
    for (int r = 0; r < R; ++r) {
      const __m512 hb = _mm512_set1_ps(h[r * row_stride + k * k_stride]);
      for (int g = 0; g < G; ++g) acc[r][g] = _mm512_fmadd_ps(hb, wv[g], acc[r][g]);
    }
  }
}

// acc[r][g] = sum_k h[r][k] * w[k][g][0..15] for R rows. One row runs two interleaved chains so
// that the FMAs of a gate do not wait on each other (latency 4, two ports).
template <int G, int R>
DS2RT_AVX512 inline void products(const float* w, const float* h, int64_t hidden, __m512 (&acc)[R][G]) {
  for (int r = 0; r < R; ++r)
    for (int g = 0; g < G; ++g) acc[r][g] = _mm512_setzero_ps();
  int64_t k = 0;
  if constexpr (R == 1) {
    __m512 odd[G];
    for (int g = 0; g < G; ++g) odd[g] = _mm512_setzero_ps();
    for (; k + 1 < hidden; k += 2) {
      const float* wk = w + k * G * kUnitBlock;
      const __m512 h0 = _mm512_set1_ps(h[k]), h1 = _mm512_set1_ps(h[k + 1]);
      for (int g = 0; g < G; ++g) {
        acc[0][g] = _mm512_fmadd_ps(h0, _mm512_loadu_ps(wk + g * kUnitBlock), acc[0][g]);
        odd[g] = _mm512_fmadd_ps(h1, _mm512_loadu_ps(wk + (G + g) * kUnitBlock), odd[g]);
      }
    }
    for (int g = 0; g < G; ++g) acc[0][g] = _mm512_add_ps(acc[0][g], odd[g]);
  }
  accumulate<G, R>(w, h, hidden, 1, k, hidden, nullptr, 0, acc);
}

template <RNNCell C, int G, int R>
DS2RT_AVX512 void rowsOfBlock(const PackedRecurrent& w, const StepArgs& a, int64_t block, int64_t row0) {
  __m512 acc[R][G];
  products<G, R>(w.data.get() + block * a.hidden * G * kUnitBlock, a.h_prev + row0 * a.hidden, a.hidden, acc);
  finishRows<C, G, R>(a, block, row0, acc);
}

// acc += u8 x s8, four products a lane (VNNI's vpdpbusd). Written as assembly so that the int8
// products compile for AVX-512F like the fp32 ones and inline into the groupsOfBlock they share (a
// VNNI function would not inline there, and its sums then stayed in memory); only ever run where
// haveVnni() said yes.
DS2RT_AVX512 inline __m512i dotAccumulate(__m512i acc, __m512i u8, __m512i s8) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "vm"(s8));
  return acc;
}

// acc[r][g] += u8 h (zero point 128) times s8 weights over 4-k iterations [i0, i1), into int32;
// each iteration also asks for `per_k` lines of weights from `ahead` on.
template <int G, int R>
DS2RT_AVX512 inline void accumulateInt8(const int8_t* wb, const uint8_t* hq, int64_t depth, int64_t i0, int64_t i1,
                                        const char* ahead, int per_k, __m512i (&acc)[R][G]) {
  for (int64_t i = i0; i < i1; ++i) {
    for (int j = 0; j < per_k; ++j) _mm_prefetch(ahead + ((i - i0) * per_k + j) * 64, _MM_HINT_T0);
    const int8_t* wk = wb + i * G * kUnitBlock * 4;
    __m512i wv[G];
    for (int g = 0; g < G; ++g) wv[g] = _mm512_loadu_si512(wk + g * kUnitBlock * 4);
    for (int r = 0; r < R; ++r) {
      int32_t four;
      std::memcpy(&four, hq + r * depth + i * 4, 4);
      const __m512i hb = _mm512_set1_epi32(four);
      for (int g = 0; g < G; ++g) acc[r][g] = dotAccumulate(acc[r][g], hb, wv[g]);
    }
  }
}

// The int32 sums back to float (weight and h scales, zero-point offsets), then the cell update.
template <RNNCell C, int G, int R>
DS2RT_AVX512 inline void finishRowsInt8(const PackedRecurrentInt8& w, const StepArgs& a, int64_t block, int64_t row0,
                                        __m512i (&acc)[R][G]) {
  __m512 out[R][G];
  for (int g = 0; g < G; ++g) {
    const __m512 scale = _mm512_loadu_ps(w.scale.get() + (block * G + g) * kUnitBlock);
    const __m512i offset = _mm512_loadu_si512(w.offset.get() + (block * G + g) * kUnitBlock);
    for (int r = 0; r < R; ++r)
      out[r][g] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][g], offset)),
                                _mm512_mul_ps(scale, _mm512_set1_ps(a.h_scale[row0 + r])));
  }
  finishRows<C, G, R>(a, block, row0, out);
}

template <RNNCell C, int G, int R>
DS2RT_VNNI void rowsOfBlockInt8(const PackedRecurrentInt8& w, const StepArgs& a, int64_t block, int64_t row0) {
  __m512i acc[R][G];
  for (int r = 0; r < R; ++r)
    for (int g = 0; g < G; ++g) acc[r][g] = _mm512_setzero_si512();
  accumulateInt8<G, R>(w.data.get() + block * w.depth * G * kUnitBlock, a.h_quantized + row0 * w.depth, w.depth, 0,
                       w.depth / 4, nullptr, 0, acc);
  finishRowsInt8<C, G, R>(w, a, block, row0, acc);
}

// The fused steps' products for fp32 and int8 weights, as groupsOfBlock uses them. An iteration is
// one k (fp32) or four (int8); either way it reads G lines of 64 bytes of the block's weights.
struct Fp32Products {
  using Sum = __m512;
  const PackedRecurrent& w;
  static DS2RT_AVX512 Sum zero() { return _mm512_setzero_ps(); }
  int64_t iterations(const StepArgs& a) const { return a.hidden; }
  const char* block(const StepArgs& a, int64_t b) const {
    return reinterpret_cast<const char*>(w.data.get() + b * a.hidden * w.gates * kUnitBlock);
  }
  template <int G, int R>
  DS2RT_AVX512 void add(const StepArgs& a, const char* wb, int64_t row0, int64_t i0, int64_t i1, const char* ahead,
                        int per_k, Sum (&acc)[R][G]) const {
    accumulate<G, R>(reinterpret_cast<const float*>(wb), a.h_interleaved + row0 * a.hidden, 1, R, i0, i1, ahead, per_k,
                     acc);
  }
  template <RNNCell C, int G, int R>
  DS2RT_AVX512 void finish(const StepArgs& a, int64_t b, int64_t row0, Sum (&acc)[R][G]) const {
    finishRows<C, G, R>(a, b, row0, acc);
  }
};

struct Int8Products {
  using Sum = __m512i;
  const PackedRecurrentInt8& w;
  static DS2RT_AVX512 Sum zero() { return _mm512_setzero_si512(); }
  int64_t iterations(const StepArgs&) const { return w.depth / 4; }
  const char* block(const StepArgs&, int64_t b) const {
    return reinterpret_cast<const char*>(w.data.get() + b * w.depth * w.gates * kUnitBlock);
  }
  template <int G, int R>
  DS2RT_AVX512 void add(const StepArgs& a, const char* wb, int64_t row0, int64_t i0, int64_t i1, const char* ahead,
                        int per_k, Sum (&acc)[R][G]) const {
    accumulateInt8<G, R>(reinterpret_cast<const int8_t*>(wb), a.h_quantized + row0 * w.depth, w.depth, i0, i1, ahead,
                         per_k, acc);
  }
  template <RNNCell C, int G, int R>
  DS2RT_AVX512 void finish(const StepArgs& a, int64_t b, int64_t row0, Sum (&acc)[R][G]) const {
    finishRowsInt8<C, G, R>(w, a, b, row0, acc);
  }
};

// Up to kMaxGroups groups of R rows of one block, in chunks of 64 iterations: a chunk of the block's
// weights is read once and serves every group while it sits in L1 (the groups' sums parked in
// between), and the groups share asking for the next chunk, so the read from L3 runs all the time
// (groupedRowsOfBlock takes rows [0, grouped) that many groups at a time). Groups one after another
// over the whole block left the read idle while the later groups worked from L2: fp32 LSTM 8 rows
// took 1.4x as long as 4, now 1.05x; 16 and 32 rows 1.2-1.4x faster (bench/cpu_probes/recurrent_step.cpp).
constexpr int kMaxGroups = 8;
constexpr int64_t kStaysInL2 = int64_t{1} << 20;
template <RNNCell C, int G, int R, typename Products>
DS2RT_AVX512 void groupsOfBlock(const Products& products, const StepArgs& a, int64_t block, int64_t row0, int groups) {
  using Sum = typename Products::Sum;
  constexpr int64_t kChunk = 64;
  const int per_k = (kChunk * G + groups * kChunk - 1) / (groups * kChunk);  // a chunk is kChunk * G lines
  const int64_t iterations = products.iterations(a);
  const char* wb = products.block(a, block);
  Sum parked[kMaxGroups][R][G];
  for (int64_t i0 = 0; i0 < iterations; i0 += kChunk) {
    const int64_t i1 = std::min(i0 + kChunk, iterations);
    // Past the block's end this is the next block's start (blocks are contiguous): asking early is right.
    const char* next_chunk = wb + (i0 + kChunk) * G * 64;
    for (int i = 0; i < groups; ++i) {
      Sum acc[R][G];
      for (int r = 0; r < R; ++r)
        for (int g = 0; g < G; ++g) acc[r][g] = i0 == 0 ? Products::zero() : parked[i][r][g];
      products.template add<G, R>(a, wb, row0 + i * R, i0, i1, next_chunk + i * kChunk * per_k * 64, per_k, acc);
      if (i1 == iterations) products.template finish<C, G, R>(a, block, row0 + i * R, acc);
      else
        for (int r = 0; r < R; ++r)
          for (int g = 0; g < G; ++g) parked[i][r][g] = acc[r][g];
    }
  }
}

template <RNNCell C, int G, int R, typename Products>
DS2RT_AVX512 void groupedRowsOfBlock(const Products& products, const StepArgs& a, int64_t block, int64_t grouped) {
  for (int64_t row0 = 0; row0 < grouped; row0 += R * kMaxGroups)
    groupsOfBlock<C, G, R>(products, a, block, row0, static_cast<int>(std::min<int64_t>(kMaxGroups, (grouped - row0) / R)));
}

// How many rows (a multiple of R) take groupsOfBlock: none where the thread's weights stay in L2 from
// step to step (a 256-unit direction: nothing to gain, and fp32 pays for regrouping h; 5-10% measured).
template <int R>
int64_t groupedRows(const StepArgs& a, int64_t bytes_per_block) {
  return (a.block_end - a.block_begin) * bytes_per_block > kStaysInL2 ? a.rows / R * R : 0;
}

// R: the rows sharing each weight load (R * G accumulators).
template <RNNCell C, int R>
DS2RT_AVX512 void stepRows(const PackedRecurrent& w, const StepArgs& a) {
  constexpr int G = kGates<C>;
  const int64_t grouped = groupedRows<R>(a, a.hidden * G * kUnitBlock * sizeof(float));
  if (grouped > 0) {
    check(a.h_interleaved != nullptr, "internal: the fused recurrent step needs room for h interleaved");
    for (int64_t row0 = 0; row0 < grouped; row0 += R)
      for (int64_t k = 0; k < a.hidden; ++k)
        for (int r = 0; r < R; ++r) a.h_interleaved[row0 * a.hidden + k * R + r] = a.h_prev[(row0 + r) * a.hidden + k];
  }
  const Fp32Products products{w};
  for (int64_t block = a.block_begin; block < a.block_end; ++block) {
    groupedRowsOfBlock<C, G, R>(products, a, block, grouped);
    int64_t row = grouped;
    for (; row + R <= a.rows; row += R) rowsOfBlock<C, G, R>(w, a, block, row);
    for (; row + 2 <= a.rows; row += 2) rowsOfBlock<C, G, 2>(w, a, block, row);
    for (; row < a.rows; ++row) rowsOfBlock<C, G, 1>(w, a, block, row);
  }
}

// Eight rows a weight load for one gate; four for LSTM (16 accumulators of the 32 registers); GRU
// takes eight (24 accumulators) where its step is bound by the arithmetic, not the reads: at 32 rows
// of a 1024-unit direction that step ran 10-16% faster, at 4 and 8 rows four were as fast or faster
// (bench/cpu_probes/recurrent_step.cpp).
template <RNNCell C>
DS2RT_AVX512 void step(const PackedRecurrent& w, const StepArgs& a) {
  constexpr int G = kGates<C>;
  if constexpr (G == 3)
    if (a.rows >= 32) return stepRows<C, 8>(w, a);
  stepRows<C, G == 1 ? 8 : 4>(w, a);
}

// One row to u8 (zero point 128), its largest magnitude mapping to 127; `scale` gets its scale.
DS2RT_AVX512 void quantizeRow(const float* row, int64_t cols, uint8_t* out, int64_t ld_q, float* scale) {
  __m512 peak = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) peak = _mm512_max_ps(peak, _mm512_abs_ps(_mm512_loadu_ps(row + c)));
  float m = _mm512_reduce_max_ps(peak);
  for (; c < cols; ++c) m = std::max(m, std::abs(row[c]));
  *scale = m > 0 ? m / 127.0f : 1.0f;
  const __m512 inverse = _mm512_set1_ps(1.0f / *scale);
  for (c = 0; c + 16 <= cols; c += 16) {
    const __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + c), inverse)),
                                       _mm512_set1_epi32(128));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c), _mm512_cvtusepi32_epi8(v));
  }
  for (; c < cols; ++c) out[c] = static_cast<uint8_t>(static_cast<int>(std::nearbyint(row[c] / *scale)) + 128);
  for (; c < ld_q; ++c) out[c] = 128;
}

template <RNNCell C>
DS2RT_VNNI void stepInt8(const PackedRecurrentInt8& w, const StepArgs& a) {
  constexpr int G = kGates<C>;
  constexpr int R = G == 1 ? 8 : 4;
  for (int64_t r = 0; r < a.rows; ++r)  // inside the step's thread: no team
    quantizeRow(a.h_prev + r * a.hidden, a.hidden, a.h_quantized + r * w.depth, w.depth, a.h_scale + r);
  const int64_t grouped = groupedRows<R>(a, w.depth * G * kUnitBlock);
  const Int8Products products{w};
  for (int64_t block = a.block_begin; block < a.block_end; ++block) {
    groupedRowsOfBlock<C, G, R>(products, a, block, grouped);
    int64_t row = grouped;
    for (; row + R <= a.rows; row += R) rowsOfBlockInt8<C, G, R>(w, a, block, row);
    for (; row + 2 <= a.rows; row += 2) rowsOfBlockInt8<C, G, 2>(w, a, block, row);
    for (; row < a.rows; ++row) rowsOfBlockInt8<C, G, 1>(w, a, block, row);
  }
}

}  // namespace

void quantizeActivations(const float* x, int64_t rows, int64_t cols, int64_t ld_x, uint8_t* q, int64_t ld_q,
                         float* scale) {
#pragma omp parallel for if (rows * cols > (int64_t{1} << 18))
  for (int64_t r = 0; r < rows; ++r) quantizeRow(x + r * ld_x, cols, q + r * ld_q, ld_q, scale + r);
}

void recurrentStepInt8(const PackedRecurrentInt8& w, const StepArgs& a) {
  dispatchCell(a.cell, [&]<RNNCell C>() { stepInt8<C>(w, a); });
}

void recurrentStep(const PackedRecurrent& w, const StepArgs& a) {
  dispatchCell(a.cell, [&]<RNNCell C>() { step<C>(w, a); });
}

}  // namespace ds2rt::detail::cpu
