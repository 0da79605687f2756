#include "cuda/convolution_phases.h"

#include <algorithm>
#include <vector>

namespace ds2rt::detail::cuda {

PhasePlan planPhases(const ConvolutionDesc& d, int64_t in_channels, std::array<int, 2> out_phases) {
  PhasePlan p;
  if (d.dilation[0] != 1 || d.dilation[1] != 1 || out_phases[0] < 1 || out_phases[1] < 1) return p;
  if (d.stride[0] * d.stride[1] * out_phases[0] * out_phases[1] == 1) return p;  // nothing to rearrange
  for (int axis = 0; axis < 2; ++axis) {
    const int s = d.stride[axis], q = out_phases[axis];
    p.phases[axis] = s * q;
    p.shift[axis] = d.padding[axis];
    // Offsets s v + a run from 0 to s (q - 1) + k - 1: m = offset / P.
    p.kernel[axis] = (s * (q - 1) + d.kernel[axis] - 1) / p.phases[axis] + 1;
  }
  const int64_t channels = in_channels * p.phases[0] * p.phases[1];
  if (channels > kMaxPhaseChannels) return p;
  if (int64_t{d.out_channels} * out_phases[0] * out_phases[1] > kMaxPhaseOutputChannels) return p;
  p.usable = true;
  p.in_channels = static_cast<int>(in_channels);
  p.out_channels = d.out_channels;
  p.stride = d.stride;
  p.out_phases = out_phases;
  p.channels = static_cast<int>((channels + kPhaseChannelMultiple - 1) / kPhaseChannelMultiple * kPhaseChannelMultiple);
  return p;
}

PhaseGeometry phaseGeometry(const PhasePlan& p, std::array<int64_t, 2> in_lengths, std::array<int64_t, 2> out_lengths) {
  PhaseGeometry g;
  for (int axis = 0; axis < 2; ++axis) {
    const int64_t phases = p.phases[axis], taps = p.kernel[axis];
    const int64_t outputs = (out_lengths[axis] + p.out_phases[axis] - 1) / p.out_phases[axis];
    // cuDNN's zeros must stand for phase indices whose every phase lies outside x: those below
    // p / P (P j + P - 1 - p < 0) and those from (L + p) / P up.
    const int64_t first_inside = p.shift[axis] / phases;
    const int64_t past_inside = (in_lengths[axis] + p.shift[axis] + phases - 1) / phases;
    const int64_t padding = std::max<int64_t>(0, std::min(first_inside, outputs + taps - 1 - past_inside));
    g.outputs[axis] = outputs;
    g.padding[axis] = static_cast<int>(padding);
    g.lengths[axis] = outputs + taps - 1 - 2 * padding;
  }
  return g;
}

HostTensor phaseFilter(const PhasePlan& p, const ConvolutionDesc& d) {
  const HostTensor w = d.weight.toFloat32();
  const int64_t out = w.dim(0), in = w.dim(1), kf = w.dim(2), kt = w.dim(3);
  const auto src = w.floats();
  const int q0 = p.out_phases[0], q1 = p.out_phases[1];
  const int64_t nf = p.kernel[0], nt = p.kernel[1], phase_out = out * q0 * q1;
  std::vector<float> filter(static_cast<size_t>(phase_out * p.channels * nf * nt), 0.0f);
  for (int64_t o = 0; o < out; ++o)
    for (int v0 = 0; v0 < q0; ++v0)
      for (int v1 = 0; v1 < q1; ++v1) {
        const int64_t o2 = (o * q0 + v0) * q1 + v1;
        for (int64_t c = 0; c < in; ++c)
          for (int64_t a = 0; a < kf; ++a)
            for (int64_t b = 0; b < kt; ++b) {
              // Output phase v's tap a reads X_r[u + m] with P m + r = s v + a.
              const int64_t df = p.stride[0] * v0 + a, dt = p.stride[1] * v1 + b;
              const int64_t mf = df / p.phases[0], rf = df % p.phases[0];
              const int64_t mt = dt / p.phases[1], rt = dt % p.phases[1];
              const int64_t channel = (c * p.phases[0] + rf) * p.phases[1] + rt;
              filter[((o2 * p.channels + channel) * nf + mf) * nt + mt] = src[((o * in + c) * kf + a) * kt + b];
            }
      }
  return HostTensor::fromFloats({phase_out, p.channels, nf, nt}, std::move(filter));
}

}  // namespace ds2rt::detail::cuda
