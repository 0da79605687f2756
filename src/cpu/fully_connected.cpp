#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class FullyConnectedKernel final : public Kernel {
 public:
  explicit FullyConnectedKernel(const FullyConnectedDesc& d) : desc_(d) {}

  void run(const KernelIO& io, KernelState*) const override {
    const int64_t in = io.input_shape.back(), out = desc_.out_features;
    const int64_t rows = numElements(io.input_shape) / in;
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

  std::string implementation() const override { return "oneDNN sgemm"; }

 private:
  FullyConnectedDesc desc_;
};

}  // namespace

std::unique_ptr<Kernel> makeFullyConnected(const FullyConnectedDesc& desc) {
  return std::make_unique<FullyConnectedKernel>(desc);
}

}  // namespace ds2rt::detail::cpu
