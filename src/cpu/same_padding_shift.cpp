// Moves each utterance of an N x C x F x T image later in time by SamePaddingShiftDesc::shift(length),
// zero elsewhere, so that the strided convolution after it pads every utterance as TensorFlow does.
#include <algorithm>

#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class SamePaddingShiftKernel final : public Kernel {
 public:
  explicit SamePaddingShiftKernel(const SamePaddingShiftDesc& desc) : desc_(desc) {}

  void run(const KernelIO& io, KernelState*) const override {
    const int64_t n = io.input_shape[0], rows = io.input_shape[1] * io.input_shape[2];
    const int64_t t_in = io.input_shape[3], t_out = io.output_shape[3];
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t length = std::clamp<int64_t>(io.lengths[b], 0, t_in);
        const int64_t shift = desc_.shift(length);
        const float* src = io.in<float>() + (b * rows + r) * t_in;
        float* dst = io.out<float>() + (b * rows + r) * t_out;
        std::fill_n(dst, shift, 0.0f);
        std::copy_n(src, length, dst + shift);
        std::fill(dst + shift + length, dst + t_out, 0.0f);
      }
  }

  std::string implementation() const override { return "per-utterance shift in time"; }

 private:
  SamePaddingShiftDesc desc_;
};

}  // namespace

std::unique_ptr<Kernel> makeSamePaddingShift(const SamePaddingShiftDesc& desc) {
  return std::make_unique<SamePaddingShiftKernel>(desc);
}

}  // namespace ds2rt::detail::cpu
