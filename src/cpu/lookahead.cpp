// Lookahead (row) convolution: y[t] = sum_k w[k] * x[t + k] per feature, frames past the
// utterance's end read as zero (deepspeech.pytorch pads the right side with zeros).
#include <algorithm>

#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class LookaheadKernel final : public Kernel {
 public:
  explicit LookaheadKernel(const LookaheadDesc& d) : desc_(d) {}

  void run(const KernelIO& io, KernelState*) const override {
    const int64_t t = io.input_shape[0], n = io.input_shape[1], h = io.input_shape[2];
    const int64_t context = desc_.weight.dim(1);
    const float* w = desc_.weight.data<float>();
#pragma omp parallel for collapse(2) if (t * n * h * context > kParallelMinElements)
    for (int64_t step = 0; step < t; ++step)
      for (int64_t b = 0; b < n; ++b) {
        float* y = io.out<float>() + (step * n + b) * h;
        const int64_t valid = io.lengths[b];
        if (step >= valid) {
          std::fill_n(y, h, 0.0f);
          continue;
        }
        const int64_t taps = std::min(context, valid - step);
        for (int64_t f = 0; f < h; ++f) {
          float sum = 0;
          for (int64_t k = 0; k < taps; ++k) sum += w[f * context + k] * io.in<float>()[((step + k) * n + b) * h + f];
          y[f] = desc_.activation.apply(sum);
        }
      }
  }

  std::string implementation() const override { return "depthwise row convolution"; }

 private:
  LookaheadDesc desc_;
};

}  // namespace

std::unique_ptr<Kernel> makeLookahead(const LookaheadDesc& desc) { return std::make_unique<LookaheadKernel>(desc); }

}  // namespace ds2rt::detail::cpu
