// Probe, not part of ds2rt: the cores' fp32 FMA peak, from a loop of 16 independent AVX-512 FMA
// chains in registers (no memory traffic), one thread per core. On the AMX Xeon VM (2026-12-07):
// 181-184 GFLOP/s per core (2 FMA ports at ~2.85 GHz), 366 for both; the ceiling that
// bench/RESULTS.md compares whole models with.
//   g++ -O2 -march=native -fopenmp bench/cpu_probes/fma_peak.cpp -o /tmp/fma_peak && /tmp/fma_peak
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <initializer_list>

int main() {
  const long iterations = 100000000;
  for (int threads : {1, 2, 1, 2}) {
    double seconds = 0;
#pragma omp parallel num_threads(threads)
    {
      const auto t0 = std::chrono::steady_clock::now();
      asm volatile(
          "vxorps %%zmm30, %%zmm30, %%zmm30\n"
          "vxorps %%zmm31, %%zmm31, %%zmm31\n"
          "mov %0, %%rcx\n"
          "1:\n"
          "vfmadd231ps %%zmm30, %%zmm31, %%zmm0\n vfmadd231ps %%zmm30, %%zmm31, %%zmm1\n"
          "vfmadd231ps %%zmm30, %%zmm31, %%zmm2\n vfmadd231ps %%zmm30, %%zmm31, %%zmm3\n"
          "vfmadd231ps %%zmm30, %%zmm31, %%zmm4\n vfmadd231ps %%zmm30, %%zmm31, %%zmm5\n"
          "vfmadd231ps %%zmm30, %%zmm31, %%zmm6\n vfmadd231ps %%zmm30, %%zmm31, %%zmm7\n"
          "vfmadd231ps %%zmm30, %%zmm31, %%zmm8\n vfmadd231ps %%zmm30, %%zmm31, %%zmm9\n"
          "vfmadd231ps %%zmm30, %%zmm31, %%zmm10\n vfmadd231ps %%zmm30, %%zmm31, %%zmm11\n"
          "vfmadd231ps %%zmm30, %%zmm31, %%zmm12\n vfmadd231ps %%zmm30, %%zmm31, %%zmm13\n"
          "vfmadd231ps %%zmm30, %%zmm31, %%zmm14\n vfmadd231ps %%zmm30, %%zmm31, %%zmm15\n"
          "dec %%rcx\n"
          "jnz 1b\n"
          :
          : "r"(iterations)
          : "rcx", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
            "xmm12", "xmm13", "xmm14", "xmm15", "xmm30", "xmm31", "cc");
      const auto t1 = std::chrono::steady_clock::now();
#pragma omp master
      seconds = std::chrono::duration<double>(t1 - t0).count();
    }
    const double per_thread = iterations * 16.0 * 32 / seconds / 1e9;  // 16 FMAs x 16 lanes x 2 FLOP
    std::printf("%d thread(s): %.1f GFLOP/s per thread, %.1f in all\n", threads, per_thread, per_thread * threads);
  }
}
