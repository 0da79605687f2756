#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class ActivationKernel final : public Kernel {
 public:
  explicit ActivationKernel(const ActivationDesc& d) : desc_(d) {}

  void run(const KernelIO& io, KernelState*) const override {
    const int64_t total = numElements(io.input_shape);
#pragma omp parallel for if (total > kParallelMinElements)
    for (int64_t i = 0; i < total; ++i) io.out<float>()[i] = desc_.apply(io.in<float>()[i]);
  }

  bool inPlace() const override { return true; }
  std::string implementation() const override { return std::string(toString(desc_.type)) + " element-wise"; }

 private:
  ActivationDesc desc_;
};

}  // namespace

std::unique_ptr<Kernel> makeActivation(const ActivationDesc& desc) { return std::make_unique<ActivationKernel>(desc); }

}  // namespace ds2rt::detail::cpu
