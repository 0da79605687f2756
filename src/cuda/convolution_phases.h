// A strided convolution with few input channels as a stride-1 one on the input's phases (space to
// depth). DeepSpeech2's first convolution (one channel, 41 x 11, stride 2 x 2) gives cuDNN one input
// channel, which its tensor-core algorithms handle poorly; its four phases x[2i + a][2j + b] as four
// channels (padded to eight) with a 21 x 7 filter compute the same output on the tensor cores:
//   y[o] = sum_k w[k] x[s o + k - p] = sum_{r, m} W'[r][m] X_r[o + m],  k - p = s m + r, X_r[i] = x[s i + r],
// per axis, W' holding w's taps at (r, m) and zeros elsewhere (m from -P to P, P the new padding).
// Host code (the filter's rearrangement and the index map, which the device transform shares).
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

struct PhasePlan {
  bool usable = false;
  int in_channels = 0;
  std::array<int, 2> stride{1, 1};   // the original convolution's: phases per axis
  int channels = 0;                  // in_channels x phases, rounded up to kPhaseChannelMultiple
  std::array<int, 2> kernel{}, padding{};  // the stride-1 convolution's on the phases (symmetric)
  std::array<int, 2> first_tap{};    // m of the new filter's first tap per axis (-padding)
};

// Usable for a stride above 1 on some axis, no dilation, symmetric padding with an output as long as
// each phase (2 p = k - 1, as DeepSpeech2's "same"-style padding), and in_channels x phases <= 8.
PhasePlan planPhases(const ConvolutionDesc& d, int64_t in_channels);

// The phases' lengths per axis for an input of `length` (= the output's, where the plan is usable).
DS2RT_HOST_DEVICE inline int64_t phaseLength(int64_t length, int stride) { return (length + stride - 1) / stride; }

// Where phase channel `channel` at (i, j) reads the input: its channel, row and column; false where it
// is a zero (a padding channel, or past the input's end).
DS2RT_HOST_DEVICE inline bool phaseSource(const PhasePlan& p, int channel, int64_t i, int64_t j, int64_t rows,
                                          int64_t cols, int& source_channel, int64_t& row, int64_t& col) {
  const int phases = p.stride[0] * p.stride[1];
  if (channel >= p.in_channels * phases) return false;
  source_channel = channel / phases;
  const int phase = channel % phases;
  row = i * p.stride[0] + phase / p.stride[1];
  col = j * p.stride[1] + phase % p.stride[1];
  return row < rows && col < cols;
}

// The stride-1 filter, K x channels x kernel[0] x kernel[1] (float32), from the original K x C x kF x kT.
HostTensor phaseFilter(const PhasePlan& p, const ConvolutionDesc& d);

}  // namespace ds2rt::detail::cuda
