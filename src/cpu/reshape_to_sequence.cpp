// N x C x F x T -> T x N x (C*F): the transpose deepspeech.pytorch does with view + transpose.
#include <algorithm>

#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class ReshapeToSequenceKernel final : public Kernel {
 public:
  // In tiles of kTile steps x kTile features, so that the reads (a feature's steps) and the writes (a
  // step's features) both stay in L1: one frame at a time, each read a line of its own, took 8 ms for
  // 8 x 10 s of the conv front end's output (32 x 41 features), ~2.6 GB/s.
  void run(const KernelIO& io, KernelState*) const override {
    constexpr int64_t kTile = 32;
    const int64_t n = io.input_shape[0], features = io.input_shape[1] * io.input_shape[2], t = io.input_shape[3];
    const int64_t step_tiles = (t + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) if (n * features * t > kParallelMinElements)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t tile = 0; tile < step_tiles; ++tile) {
        const int64_t s0 = tile * kTile, s1 = std::min(t, s0 + kTile);
        const float* src = io.in<float>() + b * features * t;
        for (int64_t f0 = 0; f0 < features; f0 += kTile) {
          const int64_t f1 = std::min(features, f0 + kTile);
          for (int64_t step = s0; step < s1; ++step) {
            float* dst = io.out<float>() + (step * n + b) * features;
            for (int64_t f = f0; f < f1; ++f) dst[f] = src[f * t + step];
          }
        }
      }
  }
  std::string implementation() const override { return "transpose"; }
};

class BatchMajorKernel final : public Kernel {
 public:
  void run(const KernelIO& io, KernelState*) const override {
    const int64_t t = io.input_shape[0], n = io.input_shape[1], h = io.input_shape[2];
    for (int64_t step = 0; step < t; ++step)
      for (int64_t b = 0; b < n; ++b) {
        const float* src = io.in<float>() + (step * n + b) * h;
        std::copy(src, src + h, io.out<float>() + (b * t + step) * h);
      }
  }
  std::string implementation() const override { return "transpose"; }
};

}  // namespace

std::unique_ptr<Kernel> makeReshapeToSequence() { return std::make_unique<ReshapeToSequenceKernel>(); }
std::unique_ptr<Kernel> makeBatchMajor() { return std::make_unique<BatchMajorKernel>(); }

}  // namespace ds2rt::detail::cpu
