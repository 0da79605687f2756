// N x C x F x T -> T x N x (C*F): the transpose deepspeech.pytorch does with view + transpose.
#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class ReshapeToSequenceKernel final : public Kernel {
 public:
  void run(const KernelIO& io, KernelState*) const override {
    const int64_t n = io.input_shape[0], features = io.input_shape[1] * io.input_shape[2], t = io.input_shape[3];
#pragma omp parallel for if (n * features * t > kParallelMinElements)
    for (int64_t step = 0; step < t; ++step)
      for (int64_t b = 0; b < n; ++b) {
        const float* src = io.in<float>() + b * features * t + step;
        float* dst = io.out<float>() + (step * n + b) * features;
        for (int64_t f = 0; f < features; ++f) dst[f] = src[f * t];
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
