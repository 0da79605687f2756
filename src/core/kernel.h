// The seam between the engine and a device backend. A backend compiles each layer of an
// optimised graph into a Kernel (immutable, shared by every context of the engine). Each
// ExecutionContext owns a DeviceContext (activation memory, streams, library handles) and one
// KernelState per kernel (primitive caches, scratch).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/graph.h"
#include "ds2rt/builder_config.h"
#include "ds2rt/engine.h"

namespace ds2rt::detail {

class DeviceContext;

// Activations are stored in the engine's activation type (float32 on CPU; float32, float16
// or bfloat16 on CUDA); pointers are device pointers for device backends.
struct KernelIO {
  const void* input = nullptr;
  Shape input_shape;
  const int32_t* lengths = nullptr;       // valid frames per utterance, readable by the kernel's device
  const int32_t* host_lengths = nullptr;  // the same on the host
  // Data inputs after the lengths (a recurrent layer's initial states given at run time).
  std::vector<const void*> extra_inputs;
  std::vector<Shape> extra_shapes;
  void* output = nullptr;
  Shape output_shape;
  DeviceContext* device = nullptr;

  template <typename T> const T* in() const { return static_cast<const T*>(input); }
  template <typename T> T* out() const { return static_cast<T*>(output); }
};

struct KernelState {
  virtual ~KernelState() = default;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual std::unique_ptr<KernelState> createState(DeviceContext& device) const {
    (void)device;
    return nullptr;
  }
  virtual void run(const KernelIO& io, KernelState* state) const = 0;
  // Whether output may alias input (element-wise kernels).
  virtual bool inPlace() const { return false; }
  // The implementation chosen, for reports ("oneDNN convolution", "persistent recurrent kernel").
  virtual std::string implementation() const = 0;
};

// Per-context memory and execution of one backend.
class DeviceContext {
 public:
  virtual ~DeviceContext() = default;
  // Activation buffer `slot` with room for `bytes`; grows, keeps its address otherwise.
  virtual void* buffer(int slot, size_t bytes) = 0;
  // The caller's float32 input made readable by kernels (copied and converted where needed).
  virtual const void* input(int index, const HostTensor& tensor) = 0;
  virtual const int32_t* lengths(int tensor, const std::vector<int32_t>& values) = 0;
  // Runs `launch` (every kernel of the network in order). Device backends may record it once
  // per `shape_key` and replay it (CUDA graphs).
  virtual void execute(const std::string& shape_key, const std::function<void()>& launch) = 0;
  // Waits for everything issued so far (profiling).
  virtual void synchronize() {}
  // A float32 host copy (or view) of an activation after execute(); valid until the next run.
  virtual const float* download(int output_index, const void* data, size_t elements, DataType type) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::unique_ptr<Kernel> compile(const Layer& layer, const Graph& graph) const = 0;
  virtual std::unique_ptr<DeviceContext> createContext(const ContextOptions& options) const = 0;
  // The element type of a float tensor of `graph` on this backend (activations may be stored in
  // reduced precision; the inputs are always in activationType()).
  virtual DataType tensorType(const Graph& graph, int tensor) const = 0;
  virtual DataType activationType() const = 0;
};

std::unique_ptr<Backend> createCpuBackend(const BuilderConfig& config);
std::unique_ptr<Backend> createCudaBackend(const BuilderConfig& config);  // only in CUDA builds
std::unique_ptr<Backend> createBackend(const BuilderConfig& config);
// Compute capability of the current CUDA device (90 for sm_90); 0 without CUDA or a device.
int currentCudaArchitecture();

}  // namespace ds2rt::detail
