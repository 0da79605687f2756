#include <algorithm>
#include <cmath>

#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

class SoftmaxKernel final : public Kernel {
 public:
  explicit SoftmaxKernel(bool log) : log_(log) {}

  void run(const KernelIO& io, KernelState*) const override {
    const int64_t classes = io.input_shape.back();
    const int64_t rows = numElements(io.input_shape) / classes;
#pragma omp parallel for if (rows * classes > kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r) {
      const float* x = io.in<float>() + r * classes;
      float* y = io.out<float>() + r * classes;
      const float peak = *std::max_element(x, x + classes);
      double sum = 0;
      for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(x[c] - peak));
      if (log_) {
        const float offset = peak + static_cast<float>(std::log(sum));
        for (int64_t c = 0; c < classes; ++c) y[c] = x[c] - offset;
      } else {
        const double inverse = 1.0 / sum;
        for (int64_t c = 0; c < classes; ++c) y[c] = static_cast<float>(std::exp(static_cast<double>(x[c] - peak)) * inverse);
      }
    }
  }

  bool inPlace() const override { return true; }
  std::string implementation() const override { return log_ ? "log-softmax" : "softmax"; }

 private:
  bool log_;
};

}  // namespace

std::unique_ptr<Kernel> makeSoftmax(bool log) { return std::make_unique<SoftmaxKernel>(log); }

}  // namespace ds2rt::detail::cpu
