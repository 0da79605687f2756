// Probe, not part of ds2rt: fp32 C = A W^T three ways on an AMX CPU (bench/RESULTS.md, "fp32 GEMMs as
// three bf16 products on AMX tiles"): oneDNN's sgemm; oneDNN's own AMX bf16 matmul given the three
// products as one GEMM of depth 3K ([A_hi A_lo A_hi] x [W_hi; W_hi; W_lo]); and ds2rt's BF16x3Gemm.
// Time (best of four after a warm-up) and relative L2 against double precision on the first 64 rows.
//   BUILD_DIR=build-cpu DS2RT_WITH_CUDA=OFF scripts/build.sh
//   g++ -O2 -fopenmp -std=c++20 -Isrc -Iinclude bench/cpu_probes/bf16x3_gemm.cpp build-cpu/libds2rt.a \
//       -ldnnl -lfftw3f -lz -o /tmp/bf16x3_gemm && OMP_NUM_THREADS=2 /tmp/bf16x3_gemm [M K N]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include <dnnl.h>
#include <dnnl.hpp>

#include "cpu/amx_gemm.h"
#include "cpu/bf16.h"
#include "timing.h"

using namespace ds2rt::detail::cpu;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

float fromBF16(uint16_t h) {
  const uint32_t bits = uint32_t{h} << 16;
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

int main(int argc, char** argv) {
  int64_t m = 2048, k = 1024, n = 3072;
  if (argc > 3) m = std::atoll(argv[1]), k = std::atoll(argv[2]), n = std::atoll(argv[3]);
  if (!amxTilesUsable()) {
    std::printf("this CPU has no AMX tiles\n");
    return 0;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> a(m * k), w(n * k), c(m * n);
  for (float& v : a) v = normal(rng);
  for (float& v : w) v = normal(rng) * 0.03f;
  const int64_t checked = std::min<int64_t>(m, 64);
  std::vector<double> exact(checked * n);
  for (int64_t r = 0; r < checked; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t i = 0; i < k; ++i) sum += double{a[r * k + i]} * w[j * k + i];
      exact[r * n + j] = sum;
    }
  const auto report = [&](const char* what, double seconds) {
    double error = 0, norm = 0;
    for (int64_t i = 0; i < checked * n; ++i) error += (c[i] - exact[i]) * (c[i] - exact[i]), norm += exact[i] * exact[i];
    std::printf("| %s | %.1f | %.0f | %.2e |\n", what, seconds * 1e3, 2.0 * m * n * k / seconds / 1e9,
                std::sqrt(error / norm));
  };
  std::printf("%lld x %lld x %lld (M x N x K)\n| GEMM | ms | fp32 GFLOP/s | rel L2 vs double |\n|---|---|---|---|\n",
              static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k));
  report("oneDNN sgemm", best([&] {
           dnnl_sgemm('N', 'T', m, n, k, 1.0f, a.data(), k, w.data(), k, 0.0f, c.data(), n);
         }));

  // oneDNN's AMX bf16 matmul over the three products, its weights in the layout it picks.
  const int64_t k3 = 3 * k;
  std::vector<uint16_t> a3(m * k3), w3(n * k3);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t i = 0; i < k; ++i) {
      const float x = a[r * k + i];
      const uint16_t hi = toBF16(x), lo = toBF16(x - fromBF16(hi));
      a3[r * k3 + i] = hi, a3[r * k3 + k + i] = lo, a3[r * k3 + 2 * k + i] = hi;
    }
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < k; ++i) {
      const float x = w[j * k + i];
      const uint16_t hi = toBF16(x), lo = toBF16(x - fromBF16(hi));
      w3[j * k3 + i] = hi, w3[j * k3 + k + i] = hi, w3[j * k3 + 2 * k + i] = lo;
    }
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc a_md({m, k3}, dt::bf16, tag::ab), c_md({m, n}, dt::f32, tag::ab),
      w_plain({k3, n}, dt::bf16, tag::ba);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, dnnl::memory::desc({k3, n}, dt::bf16, tag::any), c_md),
                                        engine);
  dnnl::memory w_user(w_plain, engine, w3.data()), w_packed(pd.weights_desc(), engine);
  dnnl::reorder(w_user, w_packed).execute(stream, w_user, w_packed);
  stream.wait();
  dnnl::memory a_mem(a_md, engine, a3.data()), c_mem(c_md, engine, c.data());
  const dnnl::matmul matmul(pd);
  const double onednn = best([&] {
    matmul.execute(stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, w_packed}, {DNNL_ARG_DST, c_mem}});
    stream.wait();
  });
  report(pd.impl_info_str(), onednn);

  const BF16x3Gemm gemm(w.data(), n, k);
  std::vector<uint8_t> workspace(gemm.workspaceBytes(m) + 64);
  void* aligned = workspace.data() + (64 - reinterpret_cast<uintptr_t>(workspace.data()) % 64) % 64;
  report("ds2rt BF16x3Gemm", best([&] { gemm.run(a.data(), k, m, c.data(), n, aligned); }));
}
