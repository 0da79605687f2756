// Unfolded batch norm (the builder folds it into a neighbouring linear layer when it can).
#include <cmath>

#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class BatchNormKernel final : public Kernel {
 public:
  BatchNormKernel(const BatchNormDesc& d, TensorLayout layout) : image_(layout == TensorLayout::kImage) {
    const auto scale = d.scale.floats(), bias = d.bias.floats(), mean = d.mean.floats(), var = d.variance.floats();
    for (size_t c = 0; c < scale.size(); ++c) {
      scale_.push_back(scale[c] / std::sqrt(var[c] + d.epsilon));
      shift_.push_back(bias[c] - mean[c] * scale_.back());
    }
  }

  void run(const KernelIO& io, KernelState*) const override {
    const int64_t channels = static_cast<int64_t>(scale_.size());
    const int64_t total = numElements(io.input_shape);
    // image: [N][C][F*T]; sequence: [T*N][C]
    const int64_t inner = image_ ? io.input_shape[2] * io.input_shape[3] : 1;
#pragma omp parallel for if (total > kParallelMinElements)
    for (int64_t i = 0; i < total; ++i) {
      const int64_t c = image_ ? (i / inner) % channels : i % channels;
      io.out<float>()[i] = io.in<float>()[i] * scale_[c] + shift_[c];
    }
  }

  bool inPlace() const override { return true; }
  std::string implementation() const override { return "per-channel scale and shift"; }

 private:
  bool image_;
  std::vector<float> scale_, shift_;
};

}  // namespace

std::unique_ptr<Kernel> makeBatchNorm(const BatchNormDesc& desc, TensorLayout layout) {
  return std::make_unique<BatchNormKernel>(desc, layout);
}

}  // namespace ds2rt::detail::cpu
