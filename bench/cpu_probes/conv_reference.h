// For the convolution probes (direct_conv.cpp, fft_conv.cpp): DeepSpeech2's second convolution's
// shape and a double-precision direct reference with its clip to [0, 20].
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstddef>

struct Shape {
  int C, F, T, O, KF, KT, SF, PF, PT, FO;
};

inline void reference(const Shape& s, const float* x, const float* w, const float* bias, float* y) {
#pragma omp parallel for
  for (int o = 0; o < s.O; ++o)
    for (int fo = 0; fo < s.FO; ++fo)
      for (int t = 0; t < s.T; ++t) {
        double a = bias[o];
        for (int c = 0; c < s.C; ++c)
          for (int kf = 0; kf < s.KF; ++kf) {
            const int f = fo * s.SF - s.PF + kf;
            if (f < 0 || f >= s.F) continue;
            for (int kt = 0; kt < s.KT; ++kt) {
              const int ti = t - s.PT + kt;
              if (ti < 0 || ti >= s.T) continue;
              a += static_cast<double>(w[((static_cast<size_t>(o) * s.C + c) * s.KF + kf) * s.KT + kt]) *
                   x[(static_cast<size_t>(c) * s.F + f) * s.T + ti];
            }
          }
        y[(static_cast<size_t>(o) * s.FO + fo) * s.T + t] = std::min(std::max(static_cast<float>(a), 0.f), 20.f);
      }
}
