// The final state of a recurrent layer per direction (ONNX's Y_h): forward directions end at
// frame length - 1, reverse ones at frame 0.
#include <algorithm>

#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class RNNFinalStateKernel final : public Kernel {
 public:
  explicit RNNFinalStateKernel(const RNNFinalStateDesc& desc) : desc_(desc) {}

  void run(const KernelIO& io, KernelState*) const override {
    const int64_t t = io.input_shape[0], n = io.input_shape[1], width = io.input_shape[2], h = desc_.hidden_size;
    const int dirs = desc_.directions();
    for (int d = 0; d < dirs; ++d) {
      const bool reverse = desc_.direction == RNNDirection::kReverse || d == 1;
      for (int64_t b = 0; b < n; ++b) {
        const int64_t frame = reverse ? 0 : std::min<int64_t>(io.lengths[b], t) - 1;
        float* dst = io.out<float>() + (d * n + b) * h;
        if (frame < 0) {
          std::fill_n(dst, h, 0.0f);
          continue;
        }
        const float* src = io.in<float>() + (frame * n + b) * width + d * h;
        std::copy_n(src, h, dst);
      }
    }
  }

  std::string implementation() const override { return "gather of the last frame"; }

 private:
  RNNFinalStateDesc desc_;
};

}  // namespace

std::unique_ptr<Kernel> makeRNNFinalState(const RNNFinalStateDesc& desc) {
  return std::make_unique<RNNFinalStateKernel>(desc);
}

}  // namespace ds2rt::detail::cpu
