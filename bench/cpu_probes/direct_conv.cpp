// Probe, not part of ds2rt: DeepSpeech2's second convolution (32 -> 32 channels, 21 x 11, stride 2 x 1) as a
// plain AVX-512 direct convolution against oneDNN's (brgconv) on one 10 s utterance, 2 threads. It lost
// (184 vs 254 GFLOP/s on the AMX Xeon VM, 2026-12-07), so ds2rt keeps oneDNN; see bench/RESULTS.md.
//   g++ -O3 -march=native -fopenmp bench/cpu_probes/direct_conv.cpp -ldnnl -o /tmp/direct_conv && OMP_NUM_THREADS=2 /tmp/direct_conv
#include <immintrin.h>
#include <omp.h>
#include <dnnl.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>
#include <algorithm>

#include "conv_reference.h"

constexpr int CB = 8, TB = 3, TW = 16 * TB;

// Weights re-laid out: [O/CB][C][KF][KT][CB]
std::vector<float> packWeights(const Shape& s, const float* w) {
  int ob = (s.O + CB - 1) / CB;
  std::vector<float> p((size_t)ob * s.C * s.KF * s.KT * CB, 0.f);
  for (int o = 0; o < s.O; ++o)
    for (int c = 0; c < s.C; ++c)
      for (int kf = 0; kf < s.KF; ++kf)
        for (int kt = 0; kt < s.KT; ++kt)
          p[((((size_t)(o / CB) * s.C + c) * s.KF + kf) * s.KT + kt) * CB + o % CB] =
              w[(((size_t)o * s.C + c) * s.KF + kf) * s.KT + kt];
  return p;
}

void direct(const Shape& s, const float* x, const float* wp, const float* bias, float* y, std::vector<float>& pad) {
  const int tblocks = (s.T + TW - 1) / TW;
  const int TP = tblocks * TW + s.KT;  // padded row length
  pad.assign((size_t)s.C * s.F * TP, 0.f);
  #pragma omp parallel for
  for (int r = 0; r < s.C * s.F; ++r) std::memcpy(&pad[(size_t)r * TP + s.PT], x + (size_t)r * s.T, s.T * 4);
  const int oblocks = (s.O + CB - 1) / CB;
  #pragma omp parallel for collapse(3) schedule(static)
  for (int fo = 0; fo < s.FO; ++fo)
    for (int ob = 0; ob < oblocks; ++ob)
      for (int tb = 0; tb < tblocks; ++tb) {
        __m512 acc[CB][TB];
        for (int i = 0; i < CB; ++i) {
          const float b = ob * CB + i < s.O ? bias[ob * CB + i] : 0.f;
          for (int j = 0; j < TB; ++j) acc[i][j] = _mm512_set1_ps(b);
        }
        const int f0 = fo * s.SF - s.PF;
        const int kf_lo = std::max(0, -f0), kf_hi = std::min(s.KF, s.F - f0);
        for (int c = 0; c < s.C; ++c) {
          for (int kf = kf_lo; kf < kf_hi; ++kf) {
            const float* row = &pad[((size_t)c * s.F + f0 + kf) * TP + tb * TW];
            const float* wk = wp + ((((size_t)ob * s.C + c) * s.KF + kf) * s.KT) * CB;
            for (int kt = 0; kt < s.KT; ++kt) {
              __m512 xv[TB];
              for (int j = 0; j < TB; ++j) xv[j] = _mm512_loadu_ps(row + kt + 16 * j);
              for (int i = 0; i < CB; ++i) {
                const __m512 wv = _mm512_set1_ps(wk[kt * CB + i]);
                for (int j = 0; j < TB; ++j) acc[i][j] = _mm512_fmadd_ps(wv, xv[j], acc[i][j]);
              }
            }
          }
        }
        for (int i = 0; i < CB; ++i) {
          const int o = ob * CB + i;
          if (o >= s.O) break;
          float* out = y + ((size_t)o * s.FO + fo) * s.T + tb * TW;
          for (int j = 0; j < TB; ++j) {
            const int t = tb * TW + 16 * j;
            if (t >= s.T) break;
            const int n = std::min(16, s.T - t);
            __m512 v = _mm512_min_ps(_mm512_max_ps(acc[i][j], _mm512_set1_ps(0.f)), _mm512_set1_ps(20.f));
            _mm512_mask_storeu_ps(out + 16 * j, (__mmask16)((1u << n) - 1), v);
          }
        }
      }
}


double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

int main(int argc, char** argv) {
  Shape s{32, 81, argc > 1 ? atoi(argv[1]) : 500, 32, 21, 11, 2, 10, 5, 0};
  s.FO = (s.F + 2 * s.PF - s.KF) / s.SF + 1;
  std::vector<float> x((size_t)s.C * s.F * s.T), w((size_t)s.O * s.C * s.KF * s.KT), b(s.O), y((size_t)s.O * s.FO * s.T), r(y.size());
  unsigned seed = 1; auto rnd = [&] { seed = seed * 1664525u + 1013904223u; return (seed >> 8) / 16777216.0f - 0.5f; };
  for (auto& v : x) v = rnd(); for (auto& v : w) v = rnd() * 0.05f; for (auto& v : b) v = rnd();
  auto wp = packWeights(s, w.data());
  std::vector<float> pad;
  direct(s, x.data(), wp.data(), b.data(), y.data(), pad);
  reference(s, x.data(), w.data(), b.data(), r.data());
  double num = 0, den = 0; for (size_t i = 0; i < y.size(); ++i) { num += (y[i] - r[i]) * (y[i] - r[i]); den += r[i] * r[i]; }
  printf("rel L2 %.2e\n", std::sqrt(num / den));
  const double gflop = 2.0 * s.O * s.FO * s.T * s.C * s.KF * s.KT / 1e9;
  double best = 1e9;
  for (int it = 0; it < 10; ++it) { double t0 = now(); direct(s, x.data(), wp.data(), b.data(), y.data(), pad); best = std::min(best, now() - t0); }
  printf("direct: %.2f ms, %.1f GFLOP/s (threads %d)\n", best * 1e3, gflop / best, omp_get_max_threads());
  // oneDNN, as ds2rt does it (any formats, reorders in/out counted)
  using namespace dnnl; using tag = memory::format_tag; using dt = memory::data_type;
  engine eng(engine::kind::cpu, 0); stream st(eng);
  memory::dims src{1, s.C, s.F, s.T}, dst{1, s.O, s.FO, s.T}, wd{s.O, s.C, s.KF, s.KT};
  auto conv_d = convolution_forward::desc(prop_kind::forward_inference, algorithm::convolution_direct,
      memory::desc(src, dt::f32, tag::any), memory::desc(wd, dt::f32, tag::any), memory::desc({s.O}, dt::f32, tag::x),
      memory::desc(dst, dt::f32, tag::any), {s.SF, 1}, {s.PF, s.PT}, {s.PF, s.PT});
  post_ops po; po.append_eltwise(1.f, algorithm::eltwise_clip, 0.f, 20.f); primitive_attr attr; attr.set_post_ops(po);
  convolution_forward::primitive_desc pd(conv_d, attr, eng);
  printf("oneDNN impl %s\n", pd.impl_info_str());
  memory xs({src, dt::f32, tag::nchw}, eng, x.data()), ys({dst, dt::f32, tag::nchw}, eng, y.data());
  memory ws({wd, dt::f32, tag::oihw}, eng, w.data()), bs({{s.O}, dt::f32, tag::x}, eng, b.data());
  memory xb(pd.src_desc(), eng), yb(pd.dst_desc(), eng), wb(pd.weights_desc(), eng);
  reorder(ws, wb).execute(st, ws, wb);
  convolution_forward conv(pd);
  reorder rin(xs, xb), rout(yb, ys);
  best = 1e9; double bconv = 1e9;
  for (int it = 0; it < 10; ++it) {
    double t0 = now(); rin.execute(st, xs, xb); double t1 = now();
    conv.execute(st, {{DNNL_ARG_SRC, xb}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_BIAS, bs}, {DNNL_ARG_DST, yb}}); st.wait(); double t2 = now();
    rout.execute(st, yb, ys); st.wait(); best = std::min(best, now() - t0); bconv = std::min(bconv, t2 - t1);
  }
  printf("oneDNN: %.2f ms total, conv %.2f ms, %.1f GFLOP/s\n", best * 1e3, bconv * 1e3, gflop / bconv);
}
