#include "cuda/convolution_phases.h"

#include <algorithm>
#include <vector>

namespace ds2rt::detail::cuda {

namespace {

int floorDiv(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace

PhasePlan planPhases(const ConvolutionDesc& d, int64_t in_channels) {
  PhasePlan p;
  if (d.stride[0] * d.stride[1] == 1 || d.dilation[0] != 1 || d.dilation[1] != 1 || !d.symmetric()) return p;
  if (in_channels * d.stride[0] * d.stride[1] > kPhaseChannelMultiple) return p;
  for (int axis = 0; axis < 2; ++axis) {
    const int k = d.kernel[axis], pad = d.padding[axis], s = d.stride[axis];
    if (2 * pad != k - 1) return p;  // the output is then exactly as long as each phase
    // Taps m from floor(-p / s) to floor((k - 1 - p) / s); padded to a symmetric range.
    const int half = std::max(-floorDiv(-pad, s), floorDiv(k - 1 - pad, s));
    p.kernel[axis] = 2 * half + 1;
    p.padding[axis] = half;
    p.first_tap[axis] = -half;
  }
  p.usable = true;
  p.in_channels = static_cast<int>(in_channels);
  p.stride = d.stride;
  const int channels = p.in_channels * d.stride[0] * d.stride[1];
  p.channels = (channels + kPhaseChannelMultiple - 1) / kPhaseChannelMultiple * kPhaseChannelMultiple;
  return p;
}

HostTensor phaseFilter(const PhasePlan& p, const ConvolutionDesc& d) {
  const HostTensor w = d.weight.toFloat32();
  const int64_t out = w.dim(0), in = w.dim(1), kf = w.dim(2), kt = w.dim(3);
  const auto src = w.floats();
  const int64_t nf = p.kernel[0], nt = p.kernel[1];
  std::vector<float> filter(static_cast<size_t>(out * p.channels * nf * nt), 0.0f);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t c = 0; c < in; ++c)
      for (int64_t a = 0; a < kf; ++a)
        for (int64_t b = 0; b < kt; ++b) {
          // Tap a reads x[s o + a - p]: phase r, offset m with a - p = s m + r.
          const int df = static_cast<int>(a) - d.padding[0], dt = static_cast<int>(b) - d.padding[1];
          const int mf = floorDiv(df, p.stride[0]), rf = df - mf * p.stride[0];
          const int mt = floorDiv(dt, p.stride[1]), rt = dt - mt * p.stride[1];
          const int64_t channel = c * p.stride[0] * p.stride[1] + rf * p.stride[1] + rt;
          filter[((o * p.channels + channel) * nf + (mf - p.first_tap[0])) * nt + (mt - p.first_tap[1])] =
              src[((o * in + c) * kf + a) * kt + b];
        }
  return HostTensor::fromFloats({out, p.channels, nf, nt}, std::move(filter));
}

}  // namespace ds2rt::detail::cuda
