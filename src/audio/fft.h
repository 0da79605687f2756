// Real-to-complex FFTs with FFTW (single precision). Plans are made once per size and shared.
#pragma once

#include <fftw3.h>

#include <complex>
#include <memory>

#include "core/fftw.h"

namespace ds2rt::detail {

class RealFft {
 public:
  // The shared transform of size n; thread-safe (FFTW's planner is not, so planning is locked).
  static std::shared_ptr<const RealFft> ofSize(int n);
  ~RealFft();
  RealFft(const RealFft&) = delete;
  RealFft& operator=(const RealFft&) = delete;

  int size() const { return n_; }
  FftwBuffer<float> makeInput() const;                // size() floats
  FftwBuffer<std::complex<float>> makeOutput() const;  // size() / 2 + 1 bins
  // out = rfft(in); buffers from makeInput/makeOutput. Safe to call from many threads at once.
  void forward(float* in, std::complex<float>* out) const;

 private:
  explicit RealFft(int n);
  int n_;
  fftwf_plan plan_;
};

}  // namespace ds2rt::detail
