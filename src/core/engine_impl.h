// What an Engine holds: the optimised graph, its compiled kernels and its memory plan.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/kernel.h"
#include "core/memory_plan.h"
#include "ds2rt/builder_config.h"

namespace ds2rt::detail {

struct EngineImpl {
  Graph graph;
  BuilderConfig config;
  std::vector<std::string> report;
  std::unique_ptr<Backend> backend;
  std::vector<std::unique_ptr<Kernel>> kernels;  // per layer; null for host-side lengths layers
  MemoryPlan memory;
  std::vector<DataType> tensor_types;  // element type of each tensor on the backend
  int cuda_arch = 0;  // compute capability the engine was built for (CUDA engines)

  // Compiles the kernels and plans memory; the graph must already be optimised.
  static std::shared_ptr<EngineImpl> create(Graph graph, BuilderConfig config, std::vector<std::string> report);
};

constexpr size_t kPlanHeaderBytes = 48;
// Streams a plan: `append` gets every byte after the header in order; returns the header (it
// holds the checksum of all the rest, so it can only come last).
std::array<uint8_t, kPlanHeaderBytes> writePlan(const EngineImpl& engine,
                                                const std::function<void(std::span<const uint8_t>)>& append);
std::vector<uint8_t> serializePlan(const EngineImpl& engine);
// Writes the plan to `path` without holding it whole in memory (atomically: see writeFileAtomically).
void savePlan(const EngineImpl& engine, const std::string& path);
// Parses and verifies a plan; `keep_alive` owns `bytes` (weights stay views into it).
std::shared_ptr<EngineImpl> deserializePlan(std::span<const uint8_t> bytes, std::shared_ptr<const void> keep_alive,
                                            const std::string& source);

}  // namespace ds2rt::detail
