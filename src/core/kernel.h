// The seam between the engine and a device backend. A backend compiles each layer of an
// optimised graph into a Kernel (immutable, shared by every context of the engine); per-context
// mutable state (primitive caches, scratch) lives in a KernelState the context owns.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/graph.h"
#include "ds2rt/builder_config.h"

namespace ds2rt::detail {

struct KernelIO {
  const float* input = nullptr;
  Shape input_shape;
  const int32_t* lengths = nullptr;  // valid frames per utterance, for layers that take lengths
  float* output = nullptr;
  Shape output_shape;
};

struct KernelState {
  virtual ~KernelState() = default;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual std::unique_ptr<KernelState> createState() const { return nullptr; }
  virtual void run(const KernelIO& io, KernelState* state) const = 0;
  // Whether output may alias input (element-wise kernels).
  virtual bool inPlace() const { return false; }
  // The implementation chosen, for reports ("oneDNN convolution", "own recurrent loop, sgemm").
  virtual std::string implementation() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::unique_ptr<Kernel> compile(const Layer& layer, const Graph& graph) const = 0;
  // Makes the calling thread use `threads` threads for the kernels it runs (0: all cores).
  virtual void setThreads(int threads) const = 0;
};

std::unique_ptr<Backend> createCpuBackend();
std::unique_ptr<Backend> createBackend(Device device);

}  // namespace ds2rt::detail
