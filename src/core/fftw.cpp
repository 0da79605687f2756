#include "core/fftw.h"

#include <complex>

#include "ds2rt/error.h"

namespace ds2rt::detail {

std::mutex& fftwPlannerMutex() {
  static std::mutex mutex;
  return mutex;
}

template <typename T>
FftwBuffer<T> fftwAllocate(size_t count) {
  auto* p = static_cast<T*>(fftwf_malloc(sizeof(T) * count));
  check(p != nullptr, "FFTW: cannot allocate ", sizeof(T) * count, " bytes");
  return FftwBuffer<T>(p);
}

template FftwBuffer<float> fftwAllocate<float>(size_t);
template FftwBuffer<std::complex<float>> fftwAllocate<std::complex<float>>(size_t);

}  // namespace ds2rt::detail
