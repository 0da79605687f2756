#include "audio/fft.h"

#include <map>
#include <mutex>

#include "ds2rt/error.h"

namespace ds2rt::detail {

RealFft::RealFft(int n) : n_(n) {
  auto in = makeInput();
  auto out = makeOutput();
  // FFTW_ESTIMATE: deterministic plans (no timing runs), so results never vary between runs.
  plan_ = fftwf_plan_dft_r2c_1d(n, in.get(), reinterpret_cast<fftwf_complex*>(out.get()), FFTW_ESTIMATE);
  check(plan_ != nullptr, "FFTW: cannot plan a real FFT of size ", n);
}

RealFft::~RealFft() { fftwf_destroy_plan(plan_); }  // at exit, with the cache

std::shared_ptr<const RealFft> RealFft::ofSize(int n) {
  check(n > 0, "FFT size must be positive, got ", n);
  std::lock_guard lock(fftwPlannerMutex());
  // Plans live until exit: a program uses a handful of sizes.
  static std::map<int, std::shared_ptr<const RealFft>> cache;
  auto& fft = cache[n];
  if (!fft) fft.reset(new RealFft(n));
  return fft;
}

FftwBuffer<float> RealFft::makeInput() const { return fftwAllocate<float>(static_cast<size_t>(n_)); }

FftwBuffer<std::complex<float>> RealFft::makeOutput() const {
  return fftwAllocate<std::complex<float>>(static_cast<size_t>(n_ / 2 + 1));
}

void RealFft::forward(float* in, std::complex<float>* out) const {
  fftwf_execute_dft_r2c(plan_, in, reinterpret_cast<fftwf_complex*>(out));
}

}  // namespace ds2rt::detail
