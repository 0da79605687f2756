// Per-ExecutionContext state of the CUDA backend: one stream, library handles, activation and
// scratch memory, and the CUDA graphs recorded per input shape (the most recently used few dozen: a
// server meets a new utterance length with nearly every request).
#pragma once

#include <cudnn.h>

#include <map>
#include <string>
#include <vector>

#include "core/kernel.h"
#include "cuda/common.cuh"

namespace ds2rt::detail::cuda {

class CudaDeviceContext final : public DeviceContext {
 public:
  CudaDeviceContext(const ContextOptions& options, DataType activation_type);
  ~CudaDeviceContext() override;

  void* buffer(int slot, size_t bytes) override;
  const void* input(int index, const HostTensor& tensor) override;
  const int32_t* lengths(int tensor, const std::vector<int32_t>& values) override;
  void execute(const std::string& shape_key, const std::function<void()>& launch) override;
  const float* download(int output_index, const void* data, size_t elements, DataType type) override;
  void synchronize() override { DS2RT_CUDA(cudaStreamSynchronize(stream_)); }

  cudaStream_t stream() const { return stream_; }
  cublasLtHandle_t cublas() const { return cublas_; }
  cudnnHandle_t cudnn();
  // Scratch memory for the duration of one kernel's run: the kernels of a context run one after
  // another on its stream, so they all share it (`index` tells a kernel's simultaneous buffers
  // apart), and the scratch of a whole network is that of its hungriest kernel, not the sum.
  // Grown on demand; growing moves memory that recorded graphs point to, so it drops them.
  void* scratch(int index, size_t bytes);
  // cuBLASLt's workspace, shared by the GEMMs of the stream (used alongside a kernel's scratch).
  void* gemmWorkspace(size_t bytes) { return grow(gemm_workspace_, bytes); }
  DataType activationType() const { return type_; }
  // Graphs held now, shapes counted now (tests).
  size_t recordedGraphs() const { return graphs_.size(); }
  size_t countedShapes() const { return seen_.size(); }

  static constexpr size_t kMaxGraphs = 32;        // recorded graphs kept (least recently used dropped)
  static constexpr size_t kMaxCountedShapes = 1024;  // shapes whose runs are counted

 private:
  struct Growable {
    DeviceMemory memory;
    size_t capacity = 0;
  };
  void* grow(Growable& g, size_t bytes);
  void dropGraphs();

  DataType type_;
  bool use_graphs_;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t cublas_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  std::vector<Growable> buffers_, inputs_, staging_;
  std::map<int, Growable> lengths_;
  std::vector<Growable> scratch_, converted_;
  Growable gemm_workspace_;
  struct Pinned {
    float* data = nullptr;
    size_t capacity = 0;
  };
  std::vector<Pinned> outputs_;
  struct Recorded {
    cudaGraphExec_t exec = nullptr;
    uint64_t last_use = 0;
  };
  std::map<std::string, Recorded> graphs_;
  std::map<std::string, int> seen_;
  uint64_t runs_ = 0;  // the use clock of graphs_
};

// Each subclass launches one kernel on the context's stream, for its activation type.
class TypedKernel : public Kernel {
 public:
  explicit TypedKernel(DataType type) : type_(type) {}

 protected:
  static CudaDeviceContext& device(const KernelIO& io) { return *static_cast<CudaDeviceContext*>(io.device); }
  static cudaStream_t stream(const KernelIO& io) { return device(io).stream(); }
  DataType type_;
};

}  // namespace ds2rt::detail::cuda
