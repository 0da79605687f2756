// Builder -> Engine -> ExecutionContext, as in TensorRT: the builder optimises a network once
// into an immutable Engine (serialisable as a plan file); each thread or stream runs it
// through its own cheap ExecutionContext holding the scratch memory.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ds2rt/builder_config.h"
#include "ds2rt/network.h"
#include "ds2rt/tensor.h"

namespace ds2rt {

namespace detail { struct EngineImpl; struct ContextImpl; }

struct ContextOptions {
  int num_threads = 0;      // CPU: threads (0: every core)
  bool cuda_graphs = true;  // CUDA: record the kernels once per input shape, replay them after
  bool profile = false;     // time every layer (waits for each; no CUDA graphs): see layerTimings()
};

// Where the time of the last run() went.
struct RunStats {
  double input_ms = 0;    // checking and uploading the inputs
  double compute_ms = 0;  // the network itself (device work included)
};

struct LayerTiming {
  std::string layer;
  std::string kind;
  double milliseconds = 0;
};

class ExecutionContext;

class Engine {
 public:
  static Engine load(const std::string& plan_path);
  static Engine deserialize(const std::vector<uint8_t>& plan, const std::string& source = "plan");
  void save(const std::string& plan_path) const;
  std::vector<uint8_t> serialize() const;

  ExecutionContext createContext(const ContextOptions& options = {}) const;

  const BuilderConfig& config() const;
  std::vector<std::string> inputNames() const;
  std::vector<std::string> outputNames() const;
  // An input's or output's shape, kDynamic for the batch and time axes. Throws for an unknown name.
  Shape tensorShape(const std::string& name) const;
  // The network's metadata (NetworkDefinition::setMetadata), saved in plans.
  const std::map<std::string, std::string>& metadata() const;
  // What the builder folded, fused, removed and chose, one line per decision.
  const std::vector<std::string>& buildReport() const;
  // Layers with their shapes, parameter counts and fused operations, plus the memory plan.
  std::string describe() const;

 private:
  explicit Engine(std::shared_ptr<const detail::EngineImpl> impl);
  std::shared_ptr<const detail::EngineImpl> impl_;
  friend class ExecutionContext;
  friend class Builder;
};

class ExecutionContext {
 public:
  ~ExecutionContext();
  ExecutionContext(ExecutionContext&&) noexcept;
  ExecutionContext& operator=(ExecutionContext&&) noexcept;

  // Binds an input by name; the data is read during run() and must stay alive until then.
  void setInput(const std::string& name, const HostTensor& tensor);
  void run();
  // A view of an output, valid until the next run() of this context (clone() to keep it).
  HostTensor output(const std::string& name) const;

  // Per-layer times of the last run() when ContextOptions::profile is on.
  const std::vector<LayerTiming>& layerTimings() const;
  const RunStats& lastRunStats() const;

  // Convenience: binds, runs and returns copies of every output.
  std::map<std::string, HostTensor> run(const std::map<std::string, HostTensor>& inputs);

 private:
  explicit ExecutionContext(std::unique_ptr<detail::ContextImpl> impl);
  std::unique_ptr<detail::ContextImpl> impl_;
  friend class Engine;
};

}  // namespace ds2rt
