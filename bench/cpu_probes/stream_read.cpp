// Probe, not part of ds2rt: how fast can each core read a weight matrix it cannot keep in L2? At batch
// 1 to 8 a recurrent step reads all of W_h (a 1024-unit LSTM direction: 16 MiB fp32) once and does
// little arithmetic per byte, so this read rate, not the FMA peak, bounds the step. Each thread reads
// its own buffer over and over (as each direction's thread reads its own W_h), summing with AVX-512.
//   g++ -O3 -march=native -fopenmp bench/cpu_probes/stream_read.cpp -o /tmp/stream_read && /tmp/stream_read
#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

static float readAll(const float* p, size_t n, bool prefetch) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < n; i += 64) {
    if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(p + i + 1024), _MM_HINT_T0);
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

int main() {
  const size_t mib[] = {1, 8, 16, 32, 256};
  std::printf("| MiB per thread | threads | prefetch | GB/s per thread | GB/s total |\n|---|---|---|---|---|\n");
  for (size_t m : mib)
    for (int threads : {1, 2})
      for (bool prefetch : {false, true}) {
        const size_t n = m << 18;  // floats
        double seconds = 0, bytes = 0;
        float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        {
          float* p = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
          for (size_t i = 0; i < n; ++i) p[i] = 1e-9f * static_cast<float>(i & 1023);
          const int reps = static_cast<int>(std::max<size_t>(4, 2048 / m));
          sink += readAll(p, n, prefetch);
#pragma omp barrier
          const auto t0 = std::chrono::steady_clock::now();
          for (int r = 0; r < reps; ++r) {
            asm volatile("" : : "r"(p) : "memory");  // each pass reads memory again
            sink += readAll(p, n, prefetch);
          }
#pragma omp barrier
#pragma omp master
          {
            seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            bytes = static_cast<double>(reps) * n * sizeof(float);
          }
          std::free(p);
        }
        std::printf("| %zu | %d | %s | %.1f | %.1f |%s\n", m, threads, prefetch ? "yes" : "no", bytes / seconds / 1e9,
                    threads * bytes / seconds / 1e9, sink == 12345.f ? " " : "");
      }
}
