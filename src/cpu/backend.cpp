#include <omp.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include <dnnl.h>

#include "cpu/bf16.h"
#include "cpu/kernels.h"
#include "ds2rt/error.h"
#include "core/overloaded.h"

namespace ds2rt::detail {

namespace cpu {

void gemmABt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc, bool accumulate) {
  if (m == 0 || n == 0) return;
  const dnnl_status_t status = dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f, c, ldc);
  check(status == dnnl_success, "oneDNN sgemm failed with status ", static_cast<int>(status), " (", m, " x ", n, " x ",
        k, ")");
}

void prepareGemm() {
  static std::once_flag once;
  std::call_once(once, [] {
    constexpr int64_t n = 64;  // large enough for oneDNN's JIT kernels (smaller sizes take another path)
    std::vector<float> a(n * n, 0.0f), c(n * n);
    gemmABt(n, n, n, a.data(), n, a.data(), n, c.data(), n);
    gemmABt(n, n, n, a.data(), n, a.data(), n, c.data(), n, true);
  });
}

namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BuilderConfig& config) : precision_(config.precision) {
    check(precision_ != Precision::kBF16 || haveBF16(),
          "bf16 on the CPU needs AVX512_BF16, which this CPU lacks (use fp32, or int8 where it has AVX512_VNNI)");
    check(precision_ != Precision::kInt8 || haveInt8(),
          "int8 on the CPU needs AVX512_VNNI, which this CPU lacks (use fp32)");
    check(precision_ != Precision::kFP16, "fp16 on the CPU is not implemented (use fp32, bf16 or int8)");
  }

  std::unique_ptr<Kernel> compile(const Layer& layer, const Graph& graph) const override {
    const TensorLayout layout = graph.tensors[layer.inputs[0]].layout;
    return std::visit(
        Overloaded{
            [&](const ConvolutionDesc& d) {
              return makeConvolution(d, precision_, graph.tensors[layer.inputs[0]].shape,
                                     graph.tensors[layer.output].shape);
            },
            [&](const BatchNormDesc& d) { return makeBatchNorm(d, layout); },
            [&](const ActivationDesc& d) { return makeActivation(d); },
            [&](const SequenceMaskDesc&) { return makeSequenceMask(layout); },
            [&](const LengthsTransformDesc&) -> std::unique_ptr<Kernel> { return nullptr; },  // host-side, in the engine
            [&](const ReshapeToSequenceDesc&) { return makeReshapeToSequence(); },
            [&](const RNNDesc& d) { return makeRNN(d, precision_, layer.inputs.size() > 2); },
            [&](const LookaheadDesc& d) { return makeLookahead(d); },
            [&](const FullyConnectedDesc& d) { return makeFullyConnected(d, precision_); },
            [&](const SoftmaxDesc& d) { return makeSoftmax(d.log); },
            [&](const BatchMajorDesc&) { return makeBatchMajor(); },
            [&](const LayerNormDesc& d) { return makeLayerNorm(d, layout, layer.inputs.size() > 1); },
            [&](const RNNFinalStateDesc& d) { return makeRNNFinalState(d); },
            [&](const SamePaddingShiftDesc& d) { return makeSamePaddingShift(d); },
        },
        layer.desc);
  }

  std::unique_ptr<DeviceContext> createContext(const ContextOptions& options) const override;
  DataType activationType() const override { return DataType::kFloat32; }
  DataType tensorType(const Graph&, int) const override { return DataType::kFloat32; }

 private:
  Precision precision_;
};

// Host memory; the caller's inputs and the outputs are used in place, without copies.
class CpuDeviceContext final : public DeviceContext {
 public:
  explicit CpuDeviceContext(const ContextOptions& options) : threads_(options.num_threads) {}

  void* buffer(int slot, size_t bytes) override {
    if (static_cast<size_t>(slot) >= buffers_.size()) buffers_.resize(slot + 1);
    return grow(buffers_[slot], bytes);
  }

  const void* input(int, const HostTensor& tensor) override { return tensor.data(); }
  const int32_t* lengths(int, const std::vector<int32_t>& values) override { return values.data(); }

  void execute(const std::string&, const std::function<void()>& launch) override {
    // OpenMP's thread count is per calling thread, so contexts on different threads don't interfere.
    static const int default_threads = omp_get_max_threads();  // OMP_NUM_THREADS, else every core
    omp_set_num_threads(threads_ > 0 ? threads_ : default_threads);
    launch();
  }

  const float* download(int, const void* data, size_t, DataType) override { return static_cast<const float*>(data); }

  void* scratch(size_t bytes) { return grow(scratch_, bytes); }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  struct Buffer {
    std::unique_ptr<void, Free> data;
    size_t capacity = 0;
  };
  static void* grow(Buffer& b, size_t bytes) {
    if (bytes > b.capacity) {
      const size_t rounded = (bytes + 63) / 64 * 64;
      b.data.reset();  // before allocating the larger one: the two never coexist
      b.capacity = 0;
      b.data.reset(std::aligned_alloc(64, rounded));
      check(b.data != nullptr, "out of memory allocating ", rounded, " bytes of activations");
      b.capacity = rounded;
    }
    return b.data.get();
  }

  int threads_;
  std::vector<Buffer> buffers_;
  Buffer scratch_;  // contextScratch(): shared by the kernels
};

std::unique_ptr<DeviceContext> CpuBackend::createContext(const ContextOptions& options) const {
  return std::make_unique<CpuDeviceContext>(options);
}

}  // namespace

void* contextScratch(DeviceContext& device, size_t bytes) {
  return static_cast<CpuDeviceContext&>(device).scratch(bytes);
}
}  // namespace cpu

std::unique_ptr<Backend> createCpuBackend(const BuilderConfig& config) { return std::make_unique<cpu::CpuBackend>(config); }

}  // namespace ds2rt::detail
