// Lookahead (row) convolution: y[t] = sum_k w[k] * x[t + k] per feature, frames past the
// utterance's end read as zero (deepspeech.pytorch pads the right side with zeros).
#include <algorithm>
#include <vector>

#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class LookaheadKernel final : public Kernel {
 public:
  // The weights go tap-major ([k][feature]) so that each tap is one contiguous multiply-add over the
  // features (the feature-major loop read x `n * h` floats apart per tap: uni-GRU 8 x 10 s 30-63 ms,
  // now 18).
  explicit LookaheadKernel(const LookaheadDesc& d)
      : activation_(d.activation), context_(d.weight.dim(1)), taps_(d.weight.size()) {
    const int64_t features = d.weight.dim(0);  // the input's (shape inference checked)
    const float* w = d.weight.data<float>();
    for (int64_t f = 0; f < features; ++f)
      for (int64_t k = 0; k < context_; ++k) taps_[k * features + f] = w[f * context_ + k];
  }

  void run(const KernelIO& io, KernelState*) const override {
    const int64_t t = io.input_shape[0], n = io.input_shape[1], h = io.input_shape[2];
#pragma omp parallel for collapse(2) if (t * n * h * context_ > kParallelMinElements)
    for (int64_t step = 0; step < t; ++step)
      for (int64_t b = 0; b < n; ++b) {
        float* y = io.out<float>() + (step * n + b) * h;
        std::fill_n(y, h, 0.0f);
        const int64_t valid = io.lengths[b];
        if (step >= valid) continue;
        const int64_t taps = std::min(context_, valid - step);
        for (int64_t k = 0; k < taps; ++k) {
          const float* x = io.in<float>() + ((step + k) * n + b) * h;
          const float* w = taps_.data() + k * h;
          for (int64_t f = 0; f < h; ++f) y[f] += w[f] * x[f];
        }
        for (int64_t f = 0; f < h; ++f) y[f] = activation_.apply(y[f]);
      }
  }

  std::string implementation() const override { return "depthwise row convolution"; }

 private:
  ActivationDesc activation_;
  int64_t context_;
  std::vector<float> taps_;  // [k][feature]
};

}  // namespace

std::unique_ptr<Kernel> makeLookahead(const LookaheadDesc& desc) { return std::make_unique<LookaheadKernel>(desc); }

}  // namespace ds2rt::detail::cpu
