// The bf16 recurrent step (see rnn_cell.h): weights in bf16 pairs, h converted to bf16 at each
// step, products summed in fp32 by vdpbf16ps, then the fp32 cell math of rnn_cell_avx512.h.
// Compiled for AVX512_BF16 through target attributes; callers check haveBF16() first.
// GCC 12 warns about _mm512_undefined_ps() inside its own intrinsics headers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "cpu/bf16.h"
#include "cpu/rnn_cell.h"
#include "cpu/rnn_cell_avx512.h"
#include "ds2rt/error.h"

#define DS2RT_BF16 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,fma")))

namespace ds2rt::detail::cpu {

PackedRecurrentBF16 packRecurrentBF16(const float* weight, int gates, int64_t hidden) {
  PackedRecurrentBF16 p;
  p.gates = gates;
  p.hidden = hidden;
  p.blocks = (hidden + kUnitBlock - 1) / kUnitBlock;
  p.depth = (hidden + 1) / 2 * 2;
  p.data = alignedArray<uint16_t>(p.blocks * p.depth * gates * kUnitBlock);
  uint16_t* out = p.data.get();
  for (int64_t b = 0; b < p.blocks; ++b)
    for (int64_t k2 = 0; k2 < p.depth; k2 += 2)
      for (int g = 0; g < gates; ++g)
        for (int l = 0; l < kUnitBlock; ++l)
          for (int i = 0; i < 2; ++i) {
            const int64_t unit = b * kUnitBlock + l, k = k2 + i;
            *out++ = unit < hidden && k < hidden ? toBF16(weight[(g * hidden + unit) * hidden + k]) : 0;
          }
  return p;
}

namespace {

using namespace avx512;

DS2RT_BF16 inline __m512 dot(__m512 acc, __m512i h_pair, __m512i w) {
  return _mm512_dpbf16_ps(acc, reinterpret_cast<const __m512bh&>(h_pair), reinterpret_cast<const __m512bh&>(w));
}

// h[k], h[k+1] in every 32-bit lane.
DS2RT_BF16 inline __m512i broadcastPair(const uint16_t* h) {
  int32_t two;
  std::memcpy(&two, h, 4);
  return _mm512_set1_epi32(two);
}

// acc[r][g] = sum_k h[r][k] * w[k][g][0..15], two k at a time. One row runs two interleaved
// chains (vdpbf16ps has a latency of several cycles), as the fp32 step does.
template <RNNCell C, int G, int R>
DS2RT_BF16 void rowsOfBlockBF16(const PackedRecurrentBF16& w, const StepArgs& a, int64_t block, int64_t row0) {
  __m512 acc[R][G];
  for (int r = 0; r < R; ++r)
    for (int g = 0; g < G; ++g) acc[r][g] = _mm512_setzero_ps();
  const uint16_t* wb = w.data.get() + block * w.depth * G * kUnitBlock;
  const uint16_t* hb = a.h_bf16 + row0 * w.depth;
  int64_t k = 0;
  if constexpr (R == 1) {
    __m512 odd[G];
    for (int g = 0; g < G; ++g) odd[g] = _mm512_setzero_ps();
    for (; k + 4 <= w.depth; k += 4) {
      const uint16_t* wk = wb + k * G * kUnitBlock;
      const __m512i h0 = broadcastPair(hb + k), h1 = broadcastPair(hb + k + 2);
      for (int g = 0; g < G; ++g) {
        acc[0][g] = dot(acc[0][g], h0, _mm512_loadu_si512(wk + g * 2 * kUnitBlock));
        odd[g] = dot(odd[g], h1, _mm512_loadu_si512(wk + (G + g) * 2 * kUnitBlock));
      }
    }
    for (int g = 0; g < G; ++g) acc[0][g] = _mm512_add_ps(acc[0][g], odd[g]);
  }
  for (; k < w.depth; k += 2) {
    const uint16_t* wk = wb + k * G * kUnitBlock;
    __m512i wv[G];
    for (int g = 0; g < G; ++g) wv[g] = _mm512_loadu_si512(wk + g * 2 * kUnitBlock);
    for (int r = 0; r < R; ++r) {
      const __m512i h = broadcastPair(hb + r * w.depth + k);
      for (int g = 0; g < G; ++g) acc[r][g] = dot(acc[r][g], h, wv[g]);
    }
  }
  finishRows<C, G, R>(a, block, row0, acc);
}

template <RNNCell C>
DS2RT_BF16 void stepBF16(const PackedRecurrentBF16& w, const StepArgs& a) {
  constexpr int G = kGates<C>;
  constexpr int R = G == 1 ? 8 : 4;
  convertToBF16(a.h_prev, a.rows, a.hidden, a.hidden, a.h_bf16, w.depth);
  for (int64_t block = a.block_begin; block < a.block_end; ++block) {
    int64_t row = 0;
    for (; row + R <= a.rows; row += R) rowsOfBlockBF16<C, G, R>(w, a, block, row);
    for (; row + 2 <= a.rows; row += 2) rowsOfBlockBF16<C, G, 2>(w, a, block, row);
    for (; row < a.rows; ++row) rowsOfBlockBF16<C, G, 1>(w, a, block, row);
  }
}

}  // namespace

void recurrentStepBF16(const PackedRecurrentBF16& w, const StepArgs& a) {
  dispatchCell(a.cell, [&]<RNNCell C>() { stepBF16<C>(w, a); });
}

}  // namespace ds2rt::detail::cpu
