// Analysis windows, defined as scipy.signal.windows defines them.
#include <cmath>
#include <numbers>

#include "ds2rt/audio.h"
#include "ds2rt/error.h"

namespace ds2rt {
namespace {

// scipy's general_cosine: sum_k (-1)^k a_k cos(2 pi k n / (M - 1)), written as scipy does
// (cosines of a linspace from -pi to pi).
std::vector<double> generalCosine(int m, std::initializer_list<double> a) {
  std::vector<double> w(static_cast<size_t>(m), 0.0);
  for (int n = 0; n < m; ++n) {
    const double fac = -std::numbers::pi + 2.0 * std::numbers::pi * n / (m - 1);
    int k = 0;
    for (double ak : a) w[n] += ak * std::cos(k++ * fac);
  }
  return w;
}

std::vector<double> bartlett(int m) {
  std::vector<double> w(static_cast<size_t>(m));
  for (int n = 0; n < m; ++n) w[n] = n <= (m - 1) / 2.0 ? 2.0 * n / (m - 1) : 2.0 - 2.0 * n / (m - 1);
  return w;
}

}  // namespace

WindowType windowTypeFromString(const std::string& name) {
  for (WindowType type : {WindowType::kHamming, WindowType::kHann, WindowType::kBlackman, WindowType::kBartlett})
    if (name == toString(type)) return type;
  fail("unknown window '", name, "' (known: hamming, hann, blackman, bartlett)");
}

const char* toString(WindowType type) {
  switch (type) {
    case WindowType::kHamming: return "hamming";
    case WindowType::kHann: return "hann";
    case WindowType::kBlackman: return "blackman";
    case WindowType::kBartlett: return "bartlett";
  }
  return "?";
}

std::vector<double> makeWindow(WindowType type, int length, bool symmetric) {
  check(length > 0, "window length must be positive, got ", length);
  if (length == 1) return {1.0};
  // A periodic window (scipy's fftbins=True / sym=False) is the symmetric one of length + 1
  // without its last point.
  const int m = symmetric ? length : length + 1;
  std::vector<double> w;
  switch (type) {
    case WindowType::kHamming: w = generalCosine(m, {0.54, 0.46}); break;
    case WindowType::kHann: w = generalCosine(m, {0.5, 0.5}); break;
    case WindowType::kBlackman: w = generalCosine(m, {0.42, 0.50, 0.08}); break;
    case WindowType::kBartlett: w = bartlett(m); break;
  }
  w.resize(static_cast<size_t>(length));
  return w;
}

}  // namespace ds2rt
