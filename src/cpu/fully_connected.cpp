#include <optional>

#include "cpu/bf16.h"
#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

struct FullyConnectedState final : KernelState {
  BF16Matmul::State bf16;
};

class FullyConnectedKernel final : public Kernel {
 public:
  FullyConnectedKernel(const FullyConnectedDesc& d, Precision precision) : desc_(d) {
    if (precision == Precision::kBF16) bf16_.emplace(std::vector{desc_.weight.data<float>()}, d.out_features, d.weight.dim(1));
  }

  std::unique_ptr<KernelState> createState(DeviceContext&) const override {
    return bf16_ ? std::make_unique<FullyConnectedState>() : nullptr;
  }

  void run(const KernelIO& io, KernelState* state) const override {
    const int64_t in = io.input_shape.back(), out = desc_.out_features;
    const int64_t rows = numElements(io.input_shape) / in;
    if (bf16_)
      bf16_->run(static_cast<FullyConnectedState*>(state)->bf16, io.in<float>(), rows, io.out<float>());
    else
      gemmABt(rows, out, in, io.in<float>(), in, desc_.weight.data<float>(), in, io.out<float>(), out);
    const float* bias = desc_.bias.empty() ? nullptr : desc_.bias.data<float>();
    if (!bias && desc_.activation.type == ActivationType::kNone) return;
#pragma omp parallel for if (rows * out > kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < out; ++o) {
        float& y = io.out<float>()[r * out + o];
        y = desc_.activation.apply(bias ? y + bias[o] : y);
      }
  }

  std::string implementation() const override { return bf16_ ? "bf16: oneDNN bf16 matmul, fp32 sums" : "oneDNN sgemm"; }

 private:
  FullyConnectedDesc desc_;
  std::optional<BF16Matmul> bf16_;
};

}  // namespace

std::unique_ptr<Kernel> makeFullyConnected(const FullyConnectedDesc& desc, Precision precision) {
  return std::make_unique<FullyConnectedKernel>(desc, precision);
}

}  // namespace ds2rt::detail::cpu
