// Probe, not part of ds2rt: DeepSpeech2's second convolution (32 -> 32 channels, 21 x 11, stride 2 x 1,
// ~4.9 GMAC per 10 s utterance, where oneDNN already runs at ~90% of the FMA peak) through FFTs: 2-D
// real FFTs of overlapping time tiles (FFTW), per frequency bin a 32 x 32 complex product with the
// filters' spectra (AVX-512, 8 bins a vector), inverse FFTs, the strided rows kept. ~25x fewer FLOPs
// than the direct form. Checked against a double-precision direct reference, timed against oneDNN on a
// batch of utterances (FFT: one utterance per thread; oneDNN: its own threads, one utterance at a time).
// On the 2-core AVX-512 VM (2026-12-07): rel L2 1.8e-7; 8 x 10 s 86-89 ms against oneDNN's 200 ms
// (tiles of 32 / 48 / 96 / 128 frames: 103 / 92 / 90 / 105 ms); FFTW_ESTIMATE plans as fast as
// FFTW_MEASURE. ds2rt's kernel (src/cpu/convolution_fft.cpp) grew out of this probe.
//   g++ -O3 -march=native -fopenmp bench/cpu_probes/fft_conv.cpp -lfftw3f -ldnnl -o /tmp/fft_conv && \
//     OMP_NUM_THREADS=2 /tmp/fft_conv [T] [batch] [tile]
#include <fftw3.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <vector>

#include "conv_reference.h"

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The transform sizes and the filters' spectra, built once.
struct FftConv {
  Shape s;
  int NF, NT, VT, tiles, half, bins, bins8;  // bins8: bins rounded up to 8 (one zmm of complex)
  std::vector<float> spectra;                // [bins8 / 8][O][C][2 forms][16]: (kr, kr) and (-ki, ki)
  fftwf_plan forward = nullptr, inverse = nullptr;

  static int fastSize(int n) {  // 2^a 3^b 5^c 7^d >= n
    for (;; ++n) {
      int m = n;
      for (int p : {2, 3, 5, 7})
        while (m % p == 0) m /= p;
      if (m == 1) return n;
    }
  }

  FftConv(const Shape& shape, const float* w, int tile) : s(shape) {
    NF = fastSize(s.F + 2 * s.PF);
    NT = tile;
    VT = NT - s.KT + 1;
    tiles = (s.T + VT - 1) / VT;
    half = NT / 2 + 1;
    bins = NF * half;
    bins8 = (bins + 7) / 8 * 8;
    // Plans for `tiles * C` transforms in, `tiles * O` out (the same shape; new-array execute per thread).
    float* real = fftwf_alloc_real(static_cast<size_t>(NF) * NT * tiles * std::max(s.C, s.O));
    fftwf_complex* cpx = fftwf_alloc_complex(static_cast<size_t>(bins8) * tiles * std::max(s.C, s.O));
    const int n[2] = {NF, NT};
    forward = fftwf_plan_many_dft_r2c(2, n, tiles * s.C, real, nullptr, 1, NF * NT, cpx, nullptr, 1, bins8, FFTW_MEASURE);
    inverse = fftwf_plan_many_dft_c2r(2, n, tiles * s.O, cpx, nullptr, 1, bins8, real, nullptr, 1, NF * NT, FFTW_MEASURE);
    // The filters' spectra, conjugated (a cross-correlation), scaled by the inverse's 1 / (NF NT).
    std::vector<float> one(static_cast<size_t>(NF) * NT);
    std::vector<fftwf_complex> spec(static_cast<size_t>(bins));
    fftwf_plan p = fftwf_plan_dft_r2c_2d(NF, NT, one.data(), spec.data(), FFTW_ESTIMATE);
    spectra.assign(static_cast<size_t>(bins8 / 8) * s.O * s.C * 32, 0.0f);
    const float scale = 1.0f / (static_cast<float>(NF) * NT);
    for (int o = 0; o < s.O; ++o)
      for (int c = 0; c < s.C; ++c) {
        std::fill(one.begin(), one.end(), 0.0f);
        for (int a = 0; a < s.KF; ++a)
          for (int b = 0; b < s.KT; ++b) one[a * NT + b] = w[((static_cast<size_t>(o) * s.C + c) * s.KF + a) * s.KT + b];
        fftwf_execute(p);
        for (int bin = 0; bin < bins; ++bin) {
          const float kr = spec[bin][0] * scale, ki = -spec[bin][1] * scale;  // conj
          float* v = &spectra[((static_cast<size_t>(bin / 8) * s.O + o) * s.C + c) * 32];
          const int lane = (bin % 8) * 2;
          v[lane] = kr, v[lane + 1] = kr;            // (kr, kr)
          v[16 + lane] = -ki, v[16 + lane + 1] = ki;  // (-ki, ki): times (xi, xr)
        }
      }
    fftwf_destroy_plan(p);
    fftwf_free(real);
    fftwf_free(cpx);
  }

  // y[n][o] = sum_c K[o][c] x[n][c] per bin, NB tiles x 4 outputs at a time (16 accumulators).
  template <int NB>
  void products(const fftwf_complex* x, fftwf_complex* y, int chunk, int n0, int o0) const {
    __m512 acc[NB][4];
    for (int i = 0; i < NB; ++i)
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
    const float* k = &spectra[(static_cast<size_t>(chunk) * s.O + o0) * s.C * 32];
    for (int c = 0; c < s.C; ++c) {
      __m512 xv[NB], xs[NB];
      for (int i = 0; i < NB; ++i) {
        xv[i] = _mm512_loadu_ps(reinterpret_cast<const float*>(x + (static_cast<size_t>(n0 + i) * s.C + c) * bins8 + chunk * 8));
        xs[i] = _mm512_permute_ps(xv[i], 0xB1);  // (xi, xr)
      }
      for (int j = 0; j < 4; ++j) {
        const __m512 rr = _mm512_loadu_ps(k + (static_cast<size_t>(j) * s.C + c) * 32);
        const __m512 is = _mm512_loadu_ps(k + (static_cast<size_t>(j) * s.C + c) * 32 + 16);
        for (int i = 0; i < NB; ++i) acc[i][j] = _mm512_fmadd_ps(xs[i], is, _mm512_fmadd_ps(xv[i], rr, acc[i][j]));
      }
    }
    for (int i = 0; i < NB; ++i)
      for (int j = 0; j < 4; ++j)
        _mm512_storeu_ps(reinterpret_cast<float*>(y + (static_cast<size_t>(n0 + i) * s.O + o0 + j) * bins8 + chunk * 8),
                        acc[i][j]);
  }

  // One utterance x [C][F][T] -> y [O][FO][T] (bias, clip to [0, 20]); `real`, `x_hat`, `y_hat`: this thread's.
  void run(const float* x, const float* bias, float* y, float* real, fftwf_complex* x_hat, fftwf_complex* y_hat) const {
    const size_t plane = static_cast<size_t>(NF) * NT;
    for (int n = 0; n < tiles; ++n)
      for (int c = 0; c < s.C; ++c) {
        float* t = real + (static_cast<size_t>(n) * s.C + c) * plane;
        std::memset(t, 0, plane * sizeof(float));
        const int t0 = n * VT - s.PT;
        const int first = std::max(0, -t0), last = std::min(NT, s.T - t0);
        for (int f = 0; f < s.F; ++f)
          if (last > first)
            std::memcpy(t + (f + s.PF) * NT + first, x + (static_cast<size_t>(c) * s.F + f) * s.T + t0 + first,
                        (last - first) * sizeof(float));
      }
    fftwf_execute_dft_r2c(forward, real, x_hat);
    for (int chunk = 0; chunk < bins8 / 8; ++chunk)
      for (int o0 = 0; o0 < s.O; o0 += 4) {
        int n0 = 0;
        for (; n0 + 4 <= tiles; n0 += 4) products<4>(x_hat, y_hat, chunk, n0, o0);
        for (; n0 + 2 <= tiles; n0 += 2) products<2>(x_hat, y_hat, chunk, n0, o0);
        for (; n0 < tiles; ++n0) products<1>(x_hat, y_hat, chunk, n0, o0);
      }
    fftwf_execute_dft_c2r(inverse, y_hat, real);
    for (int n = 0; n < tiles; ++n)
      for (int o = 0; o < s.O; ++o) {
        const float* t = real + (static_cast<size_t>(n) * s.O + o) * plane;
        const int count = std::min(VT, s.T - n * VT);
        for (int fo = 0; fo < s.FO; ++fo) {
          const float* row = t + fo * s.SF * NT;
          float* out = y + (static_cast<size_t>(o) * s.FO + fo) * s.T + n * VT;
          for (int i = 0; i < count; ++i) out[i] = std::min(std::max(row[i] + bias[o], 0.0f), 20.0f);
        }
      }
  }
};


int main(int argc, char** argv) {
  Shape s{32, 81, argc > 1 ? atoi(argv[1]) : 500, 32, 21, 11, 2, 10, 5, 0};
  const int batch = argc > 2 ? atoi(argv[2]) : 8, tile = argc > 3 ? atoi(argv[3]) : 64;
  s.FO = (s.F + 2 * s.PF - s.KF) / s.SF + 1;
  const size_t in_size = (size_t)s.C * s.F * s.T, out_size = (size_t)s.O * s.FO * s.T;
  std::vector<float> x(in_size * batch), w((size_t)s.O * s.C * s.KF * s.KT), b(s.O), y(out_size * batch), r(out_size);
  unsigned seed = 1;
  auto rnd = [&] { seed = seed * 1664525u + 1013904223u; return (seed >> 8) / 16777216.0f - 0.5f; };
  for (auto& v : x) v = rnd();
  for (auto& v : w) v = rnd() * 0.05f;
  for (auto& v : b) v = rnd();
  double t0 = now();
  const FftConv conv(s, w.data(), tile);
  printf("FFT %d x %d, %d tiles of %d frames, spectra %.1f MB, set-up %.0f ms\n", conv.NF, conv.NT, conv.tiles, conv.VT,
         conv.spectra.size() * 4 / 1e6, (now() - t0) * 1e3);
  const int threads = omp_get_max_threads();
  const size_t plane = (size_t)conv.NF * conv.NT, most = std::max(s.C, s.O);
  std::vector<float*> real(threads);
  std::vector<fftwf_complex*> xh(threads), yh(threads);
  for (int i = 0; i < threads; ++i) {
    real[i] = fftwf_alloc_real(plane * conv.tiles * most);
    xh[i] = fftwf_alloc_complex((size_t)conv.bins8 * conv.tiles * s.C);
    yh[i] = fftwf_alloc_complex((size_t)conv.bins8 * conv.tiles * s.O);
  }
  const auto fft_all = [&] {
#pragma omp parallel for schedule(dynamic)
    for (int u = 0; u < batch; ++u) {
      const int me = omp_get_thread_num();
      conv.run(x.data() + u * in_size, b.data(), y.data() + u * out_size, real[me], xh[me], yh[me]);
    }
  };
  fft_all();
  reference(s, x.data(), w.data(), b.data(), r.data());
  double num = 0, den = 0;
  for (size_t i = 0; i < out_size; ++i) num += (y[i] - r[i]) * (y[i] - r[i]), den += r[i] * r[i];
  printf("rel L2 against the double direct reference: %.2e\n", std::sqrt(num / den));
  const double gflop = 2.0 * s.O * s.FO * s.T * s.C * s.KF * s.KT / 1e9 * batch;
  double best = 1e9;
  for (int it = 0; it < 5; ++it) {
    const double a = now();
    fft_all();
    best = std::min(best, now() - a);
  }
  printf("FFT:    %.2f ms for %d utterances (%.0f direct-GFLOP/s equivalent, %d threads)\n", best * 1e3, batch,
         gflop / best, threads);
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  engine eng(engine::kind::cpu, 0);
  stream st(eng);
  memory::dims src{1, s.C, s.F, s.T}, dst{1, s.O, s.FO, s.T}, wd{s.O, s.C, s.KF, s.KT};
  auto conv_d = convolution_forward::desc(prop_kind::forward_inference, algorithm::convolution_direct,
                                          memory::desc(src, dt::f32, tag::any), memory::desc(wd, dt::f32, tag::any),
                                          memory::desc({s.O}, dt::f32, tag::x), memory::desc(dst, dt::f32, tag::any),
                                          {s.SF, 1}, {s.PF, s.PT}, {s.PF, s.PT});
  post_ops po;
  po.append_eltwise(1.f, algorithm::eltwise_clip, 0.f, 20.f);
  primitive_attr attr;
  attr.set_post_ops(po);
  convolution_forward::primitive_desc pd(conv_d, attr, eng);
  memory ws({wd, dt::f32, tag::oihw}, eng, w.data()), bs({{s.O}, dt::f32, tag::x}, eng, b.data());
  memory xb(pd.src_desc(), eng), yb(pd.dst_desc(), eng), wb(pd.weights_desc(), eng);
  reorder(ws, wb).execute(st, ws, wb);
  convolution_forward direct(pd);
  best = 1e9;
  for (int it = 0; it < 5; ++it) {
    const double a = now();
    for (int u = 0; u < batch; ++u) {
      memory xs({src, dt::f32, tag::nchw}, eng, x.data() + u * in_size), ys({dst, dt::f32, tag::nchw}, eng, y.data() + u * out_size);
      reorder(xs, xb).execute(st, xs, xb);
      direct.execute(st, {{DNNL_ARG_SRC, xb}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_BIAS, bs}, {DNNL_ARG_DST, yb}});
      reorder(yb, ys).execute(st, yb, ys);
    }
    st.wait();
    best = std::min(best, now() - a);
  }
  printf("oneDNN: %.2f ms for %d utterances (%.0f GFLOP/s, %s)\n", best * 1e3, batch, gflop / best, pd.impl_info_str());
}
