// Probe, not part of ds2rt: can the input projection of the next time chunk hide inside the recurrent
// step's memory stalls? At 8 rows a 1024-unit LSTM direction's step reads 16 MiB of W_h and is bound by
// that read (~0.64 ms), its FMA units half idle; the projection of the same rows is compute-bound
// (~0.37 ms a step). Three ways per step, one thread per direction on both cores:
//   0: the recurrent step alone (src/cpu/rnn_cell_avx512.cpp's chunked groups);
//   1: two 4-row projection tasks per block interleaved per 64-k chunk, all groups sharing the
//      prefetch of the recurrent stream (PFR=1) or only the recurrent ones (PFR=0); D: chunks ahead;
//   2: the same projection work after each block.
// Measured on the AMX Xeon VM (2026-12-07), D=1 PFR=1: 0.78-0.88 ms against 0.92-1.14 for 2, i.e. the
// projection mostly hidden; with PFR=0 nothing is gained (0.98-1.35). Not in ds2rt yet: it needs the
// input weights packed like W_h (a second copy, or ds2rt's own GEMM in place of oneDNN's): see RESULTS.
//   g++ -O3 -march=native -fopenmp -DD=1 -DPFR=1 bench/cpu_probes/interleaved_projection.cpp -o /tmp/ilv && /tmp/ilv
#include <immintrin.h>
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
constexpr int G = 4, R = 4, U = 16;
constexpr int64_t H = 1024, IN = 1024, KC = 64;
template <bool PF>
__attribute__((always_inline)) inline void acc4(const float* w, const float* h, int64_t k0, int64_t k1, const char* ahead, int per_k, __m512 (&acc)[R][G]) {
  for (int64_t k = k0; k < k1; ++k) {
    if (PF) for (int j = 0; j < per_k; ++j) _mm_prefetch(ahead + ((k - k0) * per_k + j) * 64, _MM_HINT_T0);
    const float* wk = w + k * G * U;
    __m512 wv[G];
    for (int g = 0; g < G; ++g) wv[g] = _mm512_load_ps(wk + g * U);
    for (int r = 0; r < R; ++r) {
      const __m512 hb = _mm512_set1_ps(h[k * R + r]);
      for (int g = 0; g < G; ++g) acc[r][g] = _mm512_fmadd_ps(hb, wv[g], acc[r][g]);
    }
  }
}
// One step: blocks 0..63; groups recurrent = 2 (8 rows); ptasks projection tasks per block.
void step(const float* W, const float* Wx, const float* h, const float* X, float* out, float* P, int ptasks, int mode) {
  const int blocks = H / U, groups = 2;
  const int per_k = PFR ? (KC * G * U * 4 / 64 + (groups + ptasks) * KC - 1) / ((groups + ptasks) * KC) : (KC * G * U * 4 / 64 + groups * KC - 1) / (groups * KC);
  const int per_k2 = PFR ? per_k : 0;
  for (int b = 0; b < blocks; ++b) {
    const float* wb = W + b * H * G * U;
    const float* xb = Wx + (b % 2) * IN * G * U;  // panel (two panels in use)
    __m512 parked[2][R][G], pparked[4][R][G];
    for (int64_t k0 = 0; k0 < H; k0 += KC) {
      const char* next = reinterpret_cast<const char*>(wb + (k0 + D * KC) * G * U);
      for (int i = 0; i < groups; ++i) {
        __m512 acc[R][G];
        for (int r = 0; r < R; ++r) for (int g = 0; g < G; ++g) acc[r][g] = k0 == 0 ? _mm512_setzero_ps() : parked[i][r][g];
        acc4<true>(wb, h + i * R * H, k0, k0 + KC, next + i * KC * per_k * 64, per_k, acc);
        for (int r = 0; r < R; ++r) for (int g = 0; g < G; ++g) parked[i][r][g] = acc[r][g];
      }
      if (mode == 1)
        for (int i = 0; i < ptasks; ++i) {
          __m512 acc[R][G];
          for (int r = 0; r < R; ++r) for (int g = 0; g < G; ++g) acc[r][g] = k0 == 0 ? _mm512_setzero_ps() : pparked[i][r][g];
          acc4<true>(xb, X + ((b * ptasks + i) % 64) * R * IN, k0, k0 + KC, next + (groups + i) * KC * per_k2 * 64, per_k2, acc);
          for (int r = 0; r < R; ++r) for (int g = 0; g < G; ++g) pparked[i][r][g] = acc[r][g];
        }
    }
    for (int i = 0; i < groups; ++i) for (int r = 0; r < R; ++r) for (int g = 0; g < G; ++g) _mm512_store_ps(out + ((i * R + r) * G + g) * U, parked[i][r][g]);
    if (mode == 1) for (int i = 0; i < ptasks; ++i) for (int r = 0; r < R; ++r) for (int g = 0; g < G; ++g) _mm512_store_ps(P + ((i * R + r) * G + g) * U, pparked[i][r][g]);
    if (mode == 2)  // the same projection work after the block, not interleaved
      for (int i = 0; i < ptasks; ++i) {
        __m512 acc[R][G];
        for (int r = 0; r < R; ++r) for (int g = 0; g < G; ++g) acc[r][g] = _mm512_setzero_ps();
        acc4<false>(xb, X + ((b * ptasks + i) % 64) * R * IN, 0, IN, nullptr, 0, acc);
        for (int r = 0; r < R; ++r) for (int g = 0; g < G; ++g) _mm512_store_ps(P + ((i * R + r) * G + g) * U, acc[r][g]);
      }
  }
}
int main() {
  for (int mode : {0, 1, 2, 0, 1, 2}) for (int threads : {2}) {
    double secs = 0;
#pragma omp parallel num_threads(threads)
    {
      auto alloc = [](size_t n) { float* p = (float*)std::aligned_alloc(64, n * 4); for (size_t i = 0; i < n; ++i) p[i] = 1e-3f * (i % 97); return p; };
      float* W = alloc(H * H * G); float* Wx = alloc(2 * IN * G * U); float* h = alloc(8 * H); float* X = alloc(256 * IN);
      float* out = alloc(8 * G * U); float* P = alloc(4 * R * G * U);
      for (int s = 0; s < 5; ++s) step(W, Wx, h, X, out, P, 2, mode);
#pragma omp barrier
      auto t0 = std::chrono::steady_clock::now();
      for (int s = 0; s < 100; ++s) step(W, Wx, h, X, out, P, 2, mode);
#pragma omp barrier
#pragma omp master
      secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 100;
    }
    std::printf("mode %d (%s): %.3f ms per step\n", mode, mode == 0 ? "recurrent only" : mode == 1 ? "projection interleaved" : "projection after each block", secs * 1e3);
  }
}
