#include <omp.h>

#include <dnnl.h>

#include "cpu/kernels.h"
#include "ds2rt/error.h"

namespace ds2rt::detail {

namespace cpu {

void gemmABt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc, bool accumulate) {
  if (m == 0 || n == 0) return;
  const dnnl_status_t status = dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f, c, ldc);
  check(status == dnnl_success, "oneDNN sgemm failed with status ", static_cast<int>(status), " (", m, " x ", n, " x ",
        k, ")");
}

namespace {

template <class... Ts>
struct Overloaded : Ts... { using Ts::operator()...; };

class CpuBackend final : public Backend {
 public:
  std::unique_ptr<Kernel> compile(const Layer& layer, const Graph& graph) const override {
    const TensorLayout layout = graph.tensors[layer.inputs[0]].layout;
    return std::visit(
        Overloaded{
            [&](const ConvolutionDesc& d) { return makeConvolution(d); },
            [&](const BatchNormDesc& d) { return makeBatchNorm(d, layout); },
            [&](const ActivationDesc& d) { return makeActivation(d); },
            [&](const SequenceMaskDesc&) { return makeSequenceMask(layout); },
            [&](const LengthsTransformDesc&) -> std::unique_ptr<Kernel> { return nullptr; },  // host-side, in the engine
            [&](const ReshapeToSequenceDesc&) { return makeReshapeToSequence(); },
            [&](const RNNDesc& d) { return makeRNN(d); },
            [&](const LookaheadDesc& d) { return makeLookahead(d); },
            [&](const FullyConnectedDesc& d) { return makeFullyConnected(d); },
            [&](const SoftmaxDesc& d) { return makeSoftmax(d.log); },
            [&](const BatchMajorDesc&) { return makeBatchMajor(); },
        },
        layer.desc);
  }

  void setThreads(int threads) const override { omp_set_num_threads(threads > 0 ? threads : omp_get_num_procs()); }
};

}  // namespace
}  // namespace cpu

std::unique_ptr<Backend> createCpuBackend() { return std::make_unique<cpu::CpuBackend>(); }

std::unique_ptr<Backend> createBackend(Device device) {
  if (device == Device::kCPU) return createCpuBackend();
  fail("this build of ds2rt has no ", toString(device), " backend (configure with -DDS2RT_WITH_CUDA=ON)");
}

}  // namespace ds2rt::detail
