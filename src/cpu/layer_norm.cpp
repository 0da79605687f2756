// Layer normalisation over the last axis, one frame at a time (statistics in double).
#include <algorithm>
#include <cmath>

#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class LayerNormKernel final : public Kernel {
 public:
  LayerNormKernel(const LayerNormDesc& d, TensorLayout layout, bool masked)
      : epsilon_(d.epsilon), batch_major_(layout == TensorLayout::kBatchMajor), masked_(masked) {
    if (!d.scale.empty()) scale_.assign(d.scale.floats().begin(), d.scale.floats().end());
    if (!d.bias.empty()) bias_.assign(d.bias.floats().begin(), d.bias.floats().end());
  }

  void run(const KernelIO& io, KernelState*) const override {
    const Shape& s = io.input_shape;  // T x N x H or N x T x H
    const int64_t h = s[2], frames = s[0] * s[1];
    const int64_t batch = batch_major_ ? s[0] : s[1];
#pragma omp parallel for
    for (int64_t f = 0; f < frames; ++f) {
      const float* x = io.in<float>() + f * h;
      float* y = io.out<float>() + f * h;
      const int64_t b = batch_major_ ? f / s[1] : f % batch, step = batch_major_ ? f % s[1] : f / batch;
      if (masked_ && step >= io.lengths[b]) {
        std::fill_n(y, h, 0.0f);
        continue;
      }
      double sum = 0, squares = 0;
      for (int64_t c = 0; c < h; ++c) sum += x[c];
      const double mean = sum / static_cast<double>(h);
      for (int64_t c = 0; c < h; ++c) squares += (x[c] - mean) * (x[c] - mean);
      const double inv_std = 1.0 / std::sqrt(squares / static_cast<double>(h) + epsilon_);
      for (int64_t c = 0; c < h; ++c) {
        const float normed = static_cast<float>((x[c] - mean) * inv_std);
        y[c] = normed * (scale_.empty() ? 1.0f : scale_[c]) + (bias_.empty() ? 0.0f : bias_[c]);
      }
    }
  }

  bool inPlace() const override { return true; }
  std::string implementation() const override { return "layer norm (frame per thread)"; }

 private:
  double epsilon_;
  bool batch_major_, masked_;
  std::vector<float> scale_, bias_;
};

}  // namespace

std::unique_ptr<Kernel> makeLayerNorm(const LayerNormDesc& desc, TensorLayout layout, bool masked) {
  return std::make_unique<LayerNormKernel>(desc, layout, masked);
}

}  // namespace ds2rt::detail::cpu
