#include <optional>

#include "core/file.h"
#include "cpu/bf16.h"
#include "cpu/amx_gemm.h"
#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

struct FullyConnectedState final : KernelState {
  BF16Matmul::State bf16;
};

class FullyConnectedKernel final : public Kernel {
 public:
  // bf16 engines use the bf16 matmul only where it beats fp32's sgemm (bf16MatmulFaster()).
  FullyConnectedKernel(const FullyConnectedDesc& d, Precision precision) : desc_(d), precision_(precision) {
    if (precision == Precision::kBF16 && bf16MatmulFaster()) {
      bf16_.emplace(desc_.weight.data<float>(), d.out_features, d.weight.dim(1));
      releaseMappedPages(desc_.weight.data(), desc_.weight.bytes());  // a plan's original: only the copy is read
    } else if (precision == Precision::kFP32 && d.weight.dim(1) >= kTileMinDepth && useBF16x3Gemm()) {
      x3_.emplace(desc_.weight.data<float>(), d.out_features, d.weight.dim(1));
      releaseMappedPages(desc_.weight.data(), desc_.weight.bytes());
    } else {
      prepareGemm();
    }
  }

  std::unique_ptr<KernelState> createState(DeviceContext&) const override {
    return bf16_ ? std::make_unique<FullyConnectedState>() : nullptr;
  }

  void run(const KernelIO& io, KernelState* state) const override {
    const int64_t in = io.input_shape.back(), out = desc_.out_features;
    const int64_t rows = numElements(io.input_shape) / in;
    if (bf16_) {
      auto& bf16_state = static_cast<FullyConnectedState*>(state)->bf16;
      void* workspace = contextScratch(*io.device, bf16_->workspaceBytes(bf16_state, rows));
      bf16_->run(bf16_state, io.in<float>(), rows, io.out<float>(), workspace);
    } else if (x3_) {
      x3_->run(io.in<float>(), in, rows, io.out<float>(), out, contextScratch(*io.device, x3_->workspaceBytes(rows)));
    } else {
      gemmABt(rows, out, in, io.in<float>(), in, desc_.weight.data<float>(), in, io.out<float>(), out);
    }
    const float* bias = desc_.bias.empty() ? nullptr : desc_.bias.data<float>();
    if (!bias && desc_.activation.type == ActivationType::kNone) return;
#pragma omp parallel for if (rows * out > kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < out; ++o) {
        float& y = io.out<float>()[r * out + o];
        y = desc_.activation.apply(bias ? y + bias[o] : y);
      }
  }

  std::string implementation() const override {
    if (bf16_) return "bf16: oneDNN bf16 matmul, fp32 sums";
    if (x3_) return "fp32 as three bf16 products on AMX tiles, fp32 sums";
    return precision_ == Precision::kBF16 ? "oneDNN sgemm (bf16 engine: fp32 GEMMs measured faster on this CPU)"
                                          : "oneDNN sgemm";
  }

 private:
  FullyConnectedDesc desc_;
  Precision precision_;
  std::optional<BF16Matmul> bf16_;
  std::optional<BF16x3Gemm> x3_;  // fp32 on AMX (amx_gemm.h)
};

}  // namespace

std::unique_ptr<Kernel> makeFullyConnected(const FullyConnectedDesc& desc, Precision precision) {
  return std::make_unique<FullyConnectedKernel>(desc, precision);
}

}  // namespace ds2rt::detail::cpu
