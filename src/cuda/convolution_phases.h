// A convolution as a stride-1 one on its input's phases (space to depth), computing q consecutive
// outputs per axis as q x more output channels. cuDNN's tensor-core convolutions want many input and
// output channels; DeepSpeech2's have 1 -> 32 and 32 -> 32. Per axis, with stride s, output phases q
// and P = s q input phases, X_r[i] = x[P i + r - p] (p the padding; zero outside x):
//   Y_v[u] = y[q u + v] = sum_a w[a] x[s (q u + v) + a - p] = sum_{r, m} W'_v[r][m] X_r[u + m],
// where W'_v[r][m] = w[a] for P m + r = s v + a, else 0 (m from 0 to taps - 1). So the first
// convolution (1 channel, 41 x 11, stride 2 x 2) becomes 8 phase channels, a 21 x 4 filter and 64
// output channels with q = (1, 2); the second (32 channels, 21 x 11, stride 2 x 1) 128 phase channels,
// an 11 x 6 filter and 64 output channels. The CUDA layer times each plan it can use against plain
// cuDNN and keeps the fastest.
// Host code (the filter's rearrangement and the index map, which the device kernels share).
#pragma once

#include <array>
#include <cstdint>

#include "ds2rt/network.h"

#ifdef __CUDACC__
#define DS2RT_HOST_DEVICE __host__ __device__
#else
#define DS2RT_HOST_DEVICE
#endif

namespace ds2rt::detail::cuda {

constexpr int kPhaseChannelMultiple = 8;  // the fewest channels cuDNN's fp16 tensor-core convolutions take
constexpr int kMaxPhaseChannels = 128;     // more phase channels than this are not tried
constexpr int kMaxPhaseOutputChannels = 256;  // out_channels x output phases (the output kernel's tile)

struct PhasePlan {
  bool usable = false;
  int in_channels = 0, out_channels = 0;  // the original convolution's
  std::array<int, 2> stride{1, 1};        // the original convolution's
  std::array<int, 2> out_phases{1, 1};    // q per axis
  std::array<int, 2> phases{1, 1};        // P = stride x q per axis
  std::array<int, 2> shift{};             // the original padding p: X_r[i] = x[P i + r - p]
  std::array<int, 2> kernel{};            // taps of the stride-1 filter
  int channels = 0;                       // in_channels x P0 x P1, rounded up to kPhaseChannelMultiple
  DS2RT_HOST_DEVICE int phaseOutChannels() const { return out_channels * out_phases[0] * out_phases[1]; }
};

// Usable where the convolution has no dilation, a stride or q above 1 on some axis, and the phase
// channels and output channels stay within the limits above.
PhasePlan planPhases(const ConvolutionDesc& d, int64_t in_channels, std::array<int, 2> out_phases = {1, 1});

// One input shape's stride-1 convolution: cuDNN's (symmetric) padding, the gathered phases' lengths
// (gathered index i holds phase index i + padding, so cuDNN's zeros stand for phases that are all
// outside x), and its output lengths u (q u >= the original output's length).
struct PhaseGeometry {
  std::array<int64_t, 2> lengths{}, outputs{};
  std::array<int, 2> padding{};
};
PhaseGeometry phaseGeometry(const PhasePlan& p, std::array<int64_t, 2> in_lengths, std::array<int64_t, 2> out_lengths);

// Where phase channel `channel` at gathered (i, j) reads x: its channel, row and column; false where
// it is a zero (a padding channel, or outside x).
DS2RT_HOST_DEVICE inline bool phaseSource(const PhasePlan& p, const PhaseGeometry& g, int channel, int64_t i,
                                          int64_t j, int64_t rows, int64_t cols, int& source_channel, int64_t& row,
                                          int64_t& col) {
  const int phases = p.phases[0] * p.phases[1];
  if (channel >= p.in_channels * phases) return false;
  source_channel = channel / phases;
  const int phase = channel % phases;
  row = (i + g.padding[0]) * p.phases[0] + phase / p.phases[1] - p.shift[0];
  col = (j + g.padding[1]) * p.phases[1] + phase % p.phases[1] - p.shift[1];
  return row >= 0 && col >= 0 && row < rows && col < cols;
}

// The stride-1 filter, (out_channels x q0 x q1) x channels x kernel[0] x kernel[1] (float32; output
// channel (k q0 + v0) q1 + v1 gives y[k][q0 u0 + v0][q1 u1 + v1]), from the original K x C x kF x kT.
HostTensor phaseFilter(const PhasePlan& p, const ConvolutionDesc& d);

}  // namespace ds2rt::detail::cuda
