// fp32 convolutions with large filters through FFTs. DeepSpeech2's second convolution (32 -> 32
// channels, 21 x 11, stride 2 x 1) is ~4.9 GMAC a 10 s utterance, and oneDNN's direct form already
// runs it at ~90% of the FMA peak; through FFTs it takes ~25x fewer FLOPs. Each utterance is cut into
// time tiles of kTile frames that overlap by the filter's width less one; each tile of every input
// channel goes through a 2-D real FFT (FFTW), every frequency bin multiplies its 32 channels by the
// 32 x 32 filters' spectra (a complex matrix product, 8 bins to an AVX-512 vector), and inverse FFTs
// give the cross-correlation, of which the rows at the frequency stride and the frames that wrap
// around no tile edge are kept. bench/cpu_probes/fft_conv.cpp measured the method against oneDNN.
// GCC 12 warns about _mm512_undefined_ps() inside its own intrinsics headers (as in rnn_cell_avx512.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <complex>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "core/fftw.h"
#include "cpu/kernels.h"
#include "cpu/rnn_cell_avx512.h"
#include "ds2rt/error.h"

namespace ds2rt::detail::cpu {

namespace {

// Frames per transform: 54 outputs a tile with an 11-frame filter. 32 was 20% slower, 128 no faster
// and twice the spectra's memory (bench/cpu_probes/fft_conv.cpp, 8 x 10 s).
constexpr int kTile = 64;
// Tiles transformed and multiplied together: four share each load of the filters' spectra; more
// would only grow the scratch memory (~2.6 MB a tile for 32 channels).
constexpr int kTileGroup = 4;

// The smallest n' >= n of the form 2^a 3^b 5^c 7^d, which FFTW transforms fastest.
int fastFftSize(int n) {
  for (;; ++n) {
    int m = n;
    for (int p : {2, 3, 5, 7})
      while (m % p == 0) m /= p;
    if (m == 1) return n;
  }
}

// The transforms for one input height: sizes, FFTW plans (one tile's channels each), and the
// filters' spectra, conjugated (a cross-correlation) and scaled by the inverse's 1 / (NF NT), laid
// out [bins / 8][O][C][8 complex]: one AVX-512 vector of 8 bins per filter.
struct Transforms {
  int nf = 0, nt = kTile, valid = 0, bins = 0, bins8 = 0;
  int64_t plane = 0;  // nf x nt
  FftwBuffer<float> spectra;
  fftwf_plan forward = nullptr, inverse = nullptr;

  Transforms(const ConvolutionDesc& d, int64_t in_channels, int64_t height, int64_t out_height) {
    const int kf = d.kernel[0], kt = d.kernel[1], channels = static_cast<int>(in_channels), outs = d.out_channels;
    // Rows of the padded input the kept outputs read: up to (FO - 1) SF + KF.
    nf = fastFftSize(static_cast<int>(std::max<int64_t>(d.padding[0] + height, (out_height - 1) * d.stride[0] + kf)));
    valid = nt - kt + 1;
    plane = static_cast<int64_t>(nf) * nt;
    bins = nf * (nt / 2 + 1);
    bins8 = (bins + 7) / 8 * 8;
    const auto real = fftwAllocate<float>(static_cast<size_t>(plane) * std::max(channels, outs));
    const auto spectrum = fftwAllocate<std::complex<float>>(static_cast<size_t>(bins8) * std::max(channels, outs));
    auto* complex = reinterpret_cast<fftwf_complex*>(spectrum.get());
    const int n[2] = {nf, nt};
    const int plane_int = static_cast<int>(plane);
    {
      std::lock_guard lock(fftwPlannerMutex());
      // FFTW_ESTIMATE: no timing runs, so the same plan (and the same results) every time.
      forward = fftwf_plan_many_dft_r2c(2, n, channels, real.get(), nullptr, 1, plane_int, complex, nullptr, 1, bins8,
                                        FFTW_ESTIMATE);
      inverse = fftwf_plan_many_dft_c2r(2, n, outs, complex, nullptr, 1, bins8, real.get(), nullptr, 1, plane_int,
                                        FFTW_ESTIMATE);
      if (forward == nullptr || inverse == nullptr) {  // no destructor runs after a throw here
        fftwf_destroy_plan(forward);
        fftwf_destroy_plan(inverse);
        fail("FFTW: cannot plan ", nf, " x ", nt, " transforms");
      }
    }
    // The filters: every (o, c) pair's kf x kt taps at the origin of a zero plane, transformed in
    // batches of `channels` by the forward plan itself.
    spectra = fftwAllocate<float>(static_cast<size_t>(bins8 / 8) * outs * channels * 16);
    std::fill_n(spectra.get(), static_cast<size_t>(bins8 / 8) * outs * channels * 16, 0.0f);
    const float scale = 1.0f / static_cast<float>(plane);
    const float* w = d.weight.data<float>();
    for (int o = 0; o < outs; ++o) {
      std::fill_n(real.get(), static_cast<size_t>(plane) * channels, 0.0f);
      for (int c = 0; c < channels; ++c)
        for (int a = 0; a < kf; ++a)
          for (int b = 0; b < kt; ++b)
            real[c * plane + a * nt + b] = w[((static_cast<int64_t>(o) * channels + c) * kf + a) * kt + b];
      fftwf_execute(forward);
      for (int c = 0; c < channels; ++c)
        for (int bin = 0; bin < bins; ++bin) {
          const std::complex<float> k = std::conj(spectrum[static_cast<size_t>(c) * bins8 + bin]) * scale;
          float* v = spectra.get() + ((static_cast<int64_t>(bin / 8) * outs + o) * channels + c) * 16 + (bin % 8) * 2;
          v[0] = k.real(), v[1] = k.imag();
        }
    }
  }

  ~Transforms() {
    std::lock_guard lock(fftwPlannerMutex());
    fftwf_destroy_plan(forward);
    fftwf_destroy_plan(inverse);
  }
  Transforms(const Transforms&) = delete;
  Transforms& operator=(const Transforms&) = delete;
};

// y[n][o] = sum over c of K[o][c] x[n][c] for the 8 bins of `chunk`: NB tiles x OB outputs at a time
// (up to 16 accumulators). A complex product in two FMAs: y += x (kr, kr) + (-xi, xr) (ki, ki), the
// pairs of k duplicated by moveldup / movehdup, x's swapped and half negated once for every output.
template <int NB, int OB>
DS2RT_AVX512 void binProducts(const Transforms& t, int channels, int outs, const float* x, float* y, int chunk, int n0,
                              int o0) {
  __m512 acc[NB][OB];
  for (int i = 0; i < NB; ++i)
    for (int j = 0; j < OB; ++j) acc[i][j] = _mm512_setzero_ps();
  const int64_t stride = 2 * static_cast<int64_t>(t.bins8);  // floats from one channel's spectrum to the next
  const float* k = t.spectra.get() + (static_cast<int64_t>(chunk) * outs + o0) * channels * 16;
  const __m512 negate_real = _mm512_castsi512_ps(_mm512_set1_epi64(static_cast<int64_t>(0x80000000u)));
  for (int c = 0; c < channels; ++c) {
    __m512 xv[NB], xs[NB];
    for (int i = 0; i < NB; ++i) {
      xv[i] = _mm512_loadu_ps(x + ((n0 + i) * static_cast<int64_t>(channels) + c) * stride + chunk * 16);
      xs[i] = _mm512_xor_ps(_mm512_permute_ps(xv[i], 0xB1), negate_real);  // (-xi, xr)
    }
    for (int j = 0; j < OB; ++j) {
      const __m512 kv = _mm512_loadu_ps(k + (static_cast<int64_t>(j) * channels + c) * 16);
      const __m512 rr = _mm512_moveldup_ps(kv), ii = _mm512_movehdup_ps(kv);
      for (int i = 0; i < NB; ++i) acc[i][j] = _mm512_fmadd_ps(xs[i], ii, _mm512_fmadd_ps(xv[i], rr, acc[i][j]));
    }
  }
  for (int i = 0; i < NB; ++i)
    for (int j = 0; j < OB; ++j)
      _mm512_storeu_ps(y + ((n0 + i) * static_cast<int64_t>(outs) + o0 + j) * stride + chunk * 16, acc[i][j]);
}

template <int OB>
DS2RT_AVX512 void tileProducts(const Transforms& t, int channels, int outs, int tiles, const float* x, float* y,
                               int chunk, int o0) {
  int n0 = 0;
  for (; n0 + 4 <= tiles; n0 += 4) binProducts<4, OB>(t, channels, outs, x, y, chunk, n0, o0);
  for (; n0 + 2 <= tiles; n0 += 2) binProducts<2, OB>(t, channels, outs, x, y, chunk, n0, o0);
  for (; n0 < tiles; ++n0) binProducts<1, OB>(t, channels, outs, x, y, chunk, n0, o0);
}

DS2RT_AVX512 void products(const Transforms& t, int channels, int outs, int tiles, const float* x, float* y) {
#pragma omp parallel for schedule(static)
  for (int chunk = 0; chunk < t.bins8 / 8; ++chunk) {
    int o0 = 0;
    for (; o0 + 4 <= outs; o0 += 4) tileProducts<4>(t, channels, outs, tiles, x, y, chunk, o0);
    for (; o0 < outs; ++o0) tileProducts<1>(t, channels, outs, tiles, x, y, chunk, o0);
  }
}

class FftConvolutionKernel final : public Kernel {
 public:
  // Where the input's channels and height are known at build (a spectrogram's bins are), the
  // transforms and filter spectra are made here, not at the first run (~45 ms of it for the bundled
  // model: bench/RESULTS.md, "Filter spectra at build").
  FftConvolutionKernel(const ConvolutionDesc& d, const Shape& input, const Shape& output) : desc_(d) {
    if (desc_.bias.empty()) desc_.bias = HostTensor(DataType::kFloat32, {desc_.out_channels});
    if (input.size() == 4 && output.size() == 4 && input[1] != kDynamic && input[2] != kDynamic && output[2] != kDynamic)
      transformsFor(input[1], input[2], output[2]);
  }

  void run(const KernelIO& io, KernelState*) const override {
    const auto& in = io.input_shape;    // N x C x F x T
    const auto& out = io.output_shape;  // N x O x FO x TO
    const int channels = static_cast<int>(in[1]), outs = desc_.out_channels;
    const Transforms& t = transformsFor(in[1], in[2], out[2]);
    const int tiles = static_cast<int>((out[3] + t.valid - 1) / t.valid), group = std::min(tiles, kTileGroup);
    const int most = std::max(channels, outs);
    ScratchLayout layout;
    const size_t real_at = layout.add<float>(t.plane * most * group);
    const size_t x_at = layout.add<float>(int64_t{2} * t.bins8 * channels * group);
    const size_t y_at = layout.add<float>(int64_t{2} * t.bins8 * outs * group);
    void* block = contextScratch(*io.device, layout.bytes());
    float* real = ScratchLayout::at<float>(block, real_at);
    float* x_hat = ScratchLayout::at<float>(block, x_at);
    float* y_hat = ScratchLayout::at<float>(block, y_at);
    const int64_t in_size = in[1] * in[2] * in[3], out_size = out[1] * out[2] * out[3];
    for (int64_t b = 0; b < in[0]; ++b) {
      const float* x = io.in<float>() + b * in_size;
      float* y = io.out<float>() + b * out_size;
      for (int first = 0; first < tiles; first += group) {
        const int count = std::min(group, tiles - first);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < count; ++i) {
          float* tile = real + static_cast<int64_t>(i) * most * t.plane;
          fillTile(x, in, (first + i) * static_cast<int64_t>(t.valid) - desc_.padding[1], t, tile);
          fftwf_execute_dft_r2c(t.forward, tile,
                                reinterpret_cast<fftwf_complex*>(x_hat + int64_t{2} * i * channels * t.bins8));
        }
        products(t, channels, outs, count, x_hat, y_hat);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < count; ++i) {
          float* tile = real + static_cast<int64_t>(i) * most * t.plane;
          fftwf_execute_dft_c2r(t.inverse, reinterpret_cast<fftwf_complex*>(y_hat + int64_t{2} * i * outs * t.bins8),
                                tile);
          keepOutputs(tile, out, first + i, t, y);
        }
      }
    }
  }

  std::string implementation() const override {
    std::string what = cat("FFT convolution (FFTW, tiles of ", kTile, " frames");
    {
      std::lock_guard lock(mutex_);
      for (const auto& [height, transforms] : transforms_) what += cat("; filter spectra ready for height ", height);
    }
    what += ")";
    if (desc_.activation.type == ActivationType::kNone) return what;
    return cat(what, " with ", toString(desc_.activation.type));
  }

 private:
  const Transforms& transformsFor(int64_t channels, int64_t height, int64_t out_height) const {
    std::lock_guard lock(mutex_);
    auto& t = transforms_[height];
    if (!t) t = std::make_unique<const Transforms>(desc_, channels, height, out_height);
    return *t;
  }

  // One tile's input: every channel's rows at the frequency padding's offset, frames [t0, t0 + NT)
  // of the utterance (zeros outside it).
  void fillTile(const float* x, const Shape& in, int64_t t0, const Transforms& t, float* tile) const {
    const int64_t height = in[2], frames = in[3];
    const int64_t first = std::max<int64_t>(0, -t0), last = std::min<int64_t>(t.nt, frames - t0);
    for (int64_t c = 0; c < in[1]; ++c) {
      float* plane = tile + c * t.plane;
      std::fill_n(plane, t.plane, 0.0f);
      if (last <= first) continue;
      for (int64_t f = 0; f < height; ++f)
        std::memcpy(plane + (f + desc_.padding[0]) * t.nt + first, x + (c * height + f) * frames + t0 + first,
                    (last - first) * sizeof(float));
    }
  }

  // The inverse of tile n: rows at the frequency stride, its valid frames, bias and activation.
  void keepOutputs(const float* tile, const Shape& out, int n, const Transforms& t, float* y) const {
    const int64_t first = static_cast<int64_t>(n) * t.valid, count = std::min<int64_t>(t.valid, out[3] - first);
    const float* bias = desc_.bias.data<float>();
    const InlineActivation activation(desc_.activation);
    for (int64_t o = 0; o < out[1]; ++o)
      for (int64_t fo = 0; fo < out[2]; ++fo) {
        const float* row = tile + o * t.plane + fo * desc_.stride[0] * t.nt;
        float* dst = y + (o * out[2] + fo) * out[3] + first;
        for (int64_t i = 0; i < count; ++i) dst[i] = activation(row[i] + bias[o]);
      }
  }

  ConvolutionDesc desc_;
  mutable std::mutex mutex_;
  mutable std::map<int64_t, std::unique_ptr<const Transforms>> transforms_;  // by input height
};

}  // namespace

bool fftConvolutionPays(const ConvolutionDesc& d) {
  // DS2RT_CPU_CONV=direct keeps oneDNN for every convolution (comparisons); unset or auto: FFTs where they pay.
  const char* choice = std::getenv("DS2RT_CPU_CONV");
  const std::string mode = choice ? choice : "auto";
  check(mode == "auto" || mode == "direct", "DS2RT_CPU_CONV is '", mode, "': auto or direct");
  return mode == "auto" && haveAvx512() && d.weight.rank() == 4 && d.weight.dim(1) >= 8 && d.kernel[0] * d.kernel[1] >= 64 &&
         d.dilation == std::array<int, 2>{1, 1} && d.stride[1] == 1 && d.kernel[1] <= kTile / 2;
}

std::unique_ptr<Kernel> makeFftConvolution(const ConvolutionDesc& desc, const Shape& input, const Shape& output) {
  return std::make_unique<FftConvolutionKernel>(desc, input, output);
}

}  // namespace ds2rt::detail::cpu
