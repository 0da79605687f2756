// Build-time memory planning: tensors whose lifetimes do not overlap share a buffer slot, and
// element-wise layers write in place over an input that nobody reads afterwards. Slot sizes
// depend on the batch and time extents, so contexts size them at run time.
#pragma once

#include <string>
#include <vector>

#include "core/graph.h"
#include "core/kernel.h"

namespace ds2rt::detail {

struct MemoryPlan {
  std::vector<int> slot_of;  // per tensor; -1: bound by the caller or host-side lengths
  int slot_count = 0;
  std::string describe(const Graph& graph) const;
};

MemoryPlan planMemory(const Graph& graph, const std::vector<std::unique_ptr<Kernel>>& kernels);

}  // namespace ds2rt::detail
