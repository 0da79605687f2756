// Probe, not part of ds2rt: oneDNN's fp32 sgemm (what the CPU backend's input projections and FC call)
// against its matmul primitive, with the weights in the layout it picks (brgemm's packed blocks) and
// with a run-time M, over the projection shapes of DeepSpeech2's 1024-unit models (bench/RESULTS.md).
//   g++ -O2 bench/cpu_probes/matmul_vs_sgemm.cpp -ldnnl -o /tmp/matmul_vs_sgemm && OMP_NUM_THREADS=1 /tmp/matmul_vs_sgemm
#include <cstdio>
#include <vector>

#include <dnnl.h>
#include <dnnl.hpp>

#include "timing.h"

using namespace dnnl;

int main() {
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  std::printf("| M | N | K | sgemm GFLOP/s | matmul, packed weights | matmul, run-time M |\n|---|---|---|---|---|---|\n");
  for (int k : {1024, 1312})
    for (int n : {3072, 4096})
      for (int m : {64, 500, 1000, 2000, 2048}) {
        std::vector<float> a(static_cast<size_t>(m) * k, 0.01f), w(static_cast<size_t>(n) * k, 0.02f),
            c(static_cast<size_t>(m) * n);
        const double sgemm = best([&] { dnnl_sgemm('N', 'T', m, n, k, 1.0f, a.data(), k, w.data(), k, 0.0f, c.data(), n); });

        const memory::desc src({m, k}, memory::data_type::f32, memory::format_tag::ab);
        const memory::desc dst({m, n}, memory::data_type::f32, memory::format_tag::ab);
        const memory::desc any_weights({k, n}, memory::data_type::f32, memory::format_tag::any);
        const matmul::primitive_desc packed_pd(matmul::desc(src, any_weights, dst), eng);
        memory src_m(src, eng, a.data()), packed_w(packed_pd.weights_desc(), eng), dst_m(dst, eng, c.data());
        const matmul packed(packed_pd);
        const double packed_s = best([&] {
          packed.execute(s, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, packed_w}, {DNNL_ARG_DST, dst_m}});
          s.wait();
        });

        const memory::desc runtime_src({DNNL_RUNTIME_DIM_VAL, k}, memory::data_type::f32, memory::format_tag::ab);
        const memory::desc runtime_dst({DNNL_RUNTIME_DIM_VAL, n}, memory::data_type::f32, memory::format_tag::ab);
        const memory::desc plain_weights({k, n}, memory::data_type::f32, memory::format_tag::ba);
        const matmul::primitive_desc runtime_pd(matmul::desc(runtime_src, plain_weights, runtime_dst), eng);
        memory plain_w(plain_weights, eng, w.data());
        const matmul runtime(runtime_pd);
        const double runtime_s = best([&] {
          runtime.execute(s, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, plain_w}, {DNNL_ARG_DST, dst_m}});
          s.wait();
        });

        const double gflop = 2.0 * m * n * k / 1e9;
        std::printf("| %d | %d | %d | %.0f | %.0f (%s) | %.0f (%s) |\n", m, n, k, gflop / sgemm, gflop / packed_s,
                    packed_pd.impl_info_str(), gflop / runtime_s, runtime_pd.impl_info_str());
      }
}
