// Zeroes the frames at and past each utterance's length, on whichever axis holds time.
#include <algorithm>

#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class SequenceMaskKernel final : public Kernel {
 public:
  explicit SequenceMaskKernel(TensorLayout layout) : layout_(layout) {}

  void run(const KernelIO& io, KernelState*) const override {
    const Shape& s = io.input_shape;
    const int64_t total = numElements(s);
    if (io.out<float>() != io.in<float>()) std::copy(io.in<float>(), io.in<float>() + total, io.out<float>());
    const int64_t time = layout_ == TensorLayout::kSequence ? s[0] : layout_ == TensorLayout::kImage ? s[3] : s[1];
    const int64_t batch = layout_ == TensorLayout::kSequence ? s[1] : s[0];
    if (std::all_of(io.lengths, io.lengths + batch, [&](int32_t l) { return l >= time; })) return;  // nothing padded
    if (layout_ == TensorLayout::kImage) {  // N x C x F x T
      const int64_t n = s[0], rows = s[1] * s[2], t = s[3];
#pragma omp parallel for collapse(2) if (total > kParallelMinElements)
      for (int64_t b = 0; b < n; ++b)
        for (int64_t r = 0; r < rows; ++r) {
          float* row = io.out<float>() + (b * rows + r) * t;
          std::fill(row + std::min<int64_t>(io.lengths[b], t), row + t, 0.0f);
        }
    } else if (layout_ == TensorLayout::kSequence) {  // T x N x H
      const int64_t t = s[0], n = s[1], h = s[2];
      for (int64_t step = 0; step < t; ++step)
        for (int64_t b = 0; b < n; ++b)
          if (step >= io.lengths[b]) std::fill_n(io.out<float>() + (step * n + b) * h, h, 0.0f);
    } else {  // N x T x H
      const int64_t n = s[0], t = s[1], h = s[2];
      for (int64_t b = 0; b < n; ++b) {
        const int64_t valid = std::min<int64_t>(io.lengths[b], t);
        std::fill(io.out<float>() + (b * t + valid) * h, io.out<float>() + (b + 1) * t * h, 0.0f);
      }
    }
  }

  bool inPlace() const override { return true; }
  std::string implementation() const override { return "zero padded frames"; }

 private:
  TensorLayout layout_;
};

}  // namespace

std::unique_ptr<Kernel> makeSequenceMask(TensorLayout layout) { return std::make_unique<SequenceMaskKernel>(layout); }

}  // namespace ds2rt::detail::cpu
