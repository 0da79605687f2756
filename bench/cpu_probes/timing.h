// For the GEMM probes (matmul_vs_sgemm.cpp, bf16x3_gemm.cpp): the time of a call.
#pragma once

#include <chrono>

// The best of four timed calls after one warm-up, in seconds.
template <class F>
double best(F f) {
  double b = 1e9;
  for (int it = 0; it < 5; ++it) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (it && t < b) b = t;
  }
  return b;
}
