// The AVX-512 cell math shared by the fp32, int8 and bf16 recurrent steps (rnn_cell_avx512.cpp,
// rnn_cell_bf16.cpp). Only for files whose callers check the CPU first: every function here is
// compiled for AVX-512F through target attributes.
#pragma once

#include <immintrin.h>

#include "cpu/rnn_cell.h"

#define DS2RT_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,fma")))

namespace ds2rt::detail::cpu::avx512 {

// expf to ~1 ulp over the clamped range (Cephes' polynomial), 2^n applied with scalef.
DS2RT_AVX512 inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

DS2RT_AVX512 inline __m512 sigmoid16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

// tanh(x) = 2 sigmoid(2x) - 1: absolute error ~1e-7, saturates cleanly at both ends.
DS2RT_AVX512 inline __m512 tanh16(__m512 x) {
  const __m512 s = sigmoid16(_mm512_add_ps(x, x));
  return _mm512_sub_ps(_mm512_add_ps(s, s), _mm512_set1_ps(1.0f));
}

// The cell update of R rows of one block, from the recurrent products acc.
template <RNNCell C, int G, int R>
DS2RT_AVX512 inline void finishRows(const StepArgs& a, int64_t block, int64_t row0, __m512 (&acc)[R][G]) {
  const int64_t hidden = a.hidden, unit = block * kUnitBlock;
  const __mmask16 mask = unit + kUnitBlock <= hidden ? __mmask16(0xFFFF) : __mmask16((1u << (hidden - unit)) - 1);
  for (int r = 0; r < R; ++r) {
    const int64_t row = row0 + r;
    const float* x = a.x[row] + unit;
    const float* b = a.bias + unit;
    __m512 pre[G];
    for (int g = 0; g < G; ++g) {
      const __m512 xb = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, x + g * hidden), _mm512_maskz_loadu_ps(mask, b + g * hidden));
      pre[g] = (C == RNNCell::kGRU && g == 2) ? xb : _mm512_add_ps(xb, acc[r][g]);
    }
    __m512 h;
    if constexpr (C == RNNCell::kLSTM) {
      float* c = a.c + row * hidden + unit;
      const __m512 in = sigmoid16(pre[0]), forget = sigmoid16(pre[1]), cell = tanh16(pre[2]), out = sigmoid16(pre[3]);
      const __m512 cn = _mm512_fmadd_ps(forget, _mm512_maskz_loadu_ps(mask, c), _mm512_mul_ps(in, cell));
      _mm512_mask_storeu_ps(c, mask, cn);
      h = _mm512_mul_ps(out, tanh16(cn));
    } else if constexpr (C == RNNCell::kGRU) {
      const __m512 reset = sigmoid16(pre[0]), update = sigmoid16(pre[1]);
      const __m512 recurrent_n = _mm512_add_ps(acc[r][2], _mm512_maskz_loadu_ps(mask, a.hidden_bias + unit));
      const __m512 n = tanh16(_mm512_fmadd_ps(reset, recurrent_n, pre[2]));
      const __m512 prev = _mm512_maskz_loadu_ps(mask, a.h_prev + row * hidden + unit);
      h = _mm512_fmadd_ps(update, _mm512_sub_ps(prev, n), n);  // (1 - z) n + z h
    } else if constexpr (C == RNNCell::kRNNTanh) {
      h = tanh16(pre[0]);
    } else {
      h = _mm512_max_ps(pre[0], _mm512_setzero_ps());
    }
    _mm512_mask_storeu_ps(a.h_next + row * hidden + unit, mask, h);
    _mm512_mask_storeu_ps(a.y[row] + unit, mask, h);
  }
}

}  // namespace ds2rt::detail::cpu::avx512
