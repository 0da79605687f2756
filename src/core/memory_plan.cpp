#include "core/memory_plan.h"

#include <algorithm>
#include <sstream>

namespace ds2rt::detail {

MemoryPlan planMemory(const Graph& graph, const std::vector<std::unique_ptr<Kernel>>& kernels) {
  const int tensors = static_cast<int>(graph.tensors.size());
  std::vector<int> last_use(tensors, -1);
  for (size_t i = 0; i < graph.layers.size(); ++i)
    for (int id : graph.layers[i].inputs) last_use[id] = static_cast<int>(i);

  MemoryPlan plan;
  plan.slot_of.assign(tensors, -1);
  std::vector<int> free_slots;
  for (size_t i = 0; i < graph.layers.size(); ++i) {
    const Layer& layer = graph.layers[i];
    const TensorInfo& out = graph.tensors[layer.output];
    if (out.layout == TensorLayout::kLengths) continue;
    const int in = layer.inputs[0];
    const bool input_dies_here = last_use[in] == static_cast<int>(i) && plan.slot_of[in] >= 0 &&
                                 !graph.tensors[in].is_output;
    if (kernels[i] && kernels[i]->inPlace() && input_dies_here && !out.is_output) {
      plan.slot_of[layer.output] = plan.slot_of[in];
    } else {
      if (!free_slots.empty() && !out.is_output) {
        plan.slot_of[layer.output] = free_slots.back();
        free_slots.pop_back();
      } else {
        plan.slot_of[layer.output] = plan.slot_count++;
      }
      // Inputs read for the last time by this layer give their slot back only now, after the
      // output got a different one (a non-in-place kernel must not overwrite its own input).
      for (int id : layer.inputs)
        if (last_use[id] == static_cast<int>(i) && plan.slot_of[id] >= 0 && !graph.tensors[id].is_output &&
            std::find(free_slots.begin(), free_slots.end(), plan.slot_of[id]) == free_slots.end())
          free_slots.push_back(plan.slot_of[id]);
    }
  }
  return plan;
}

std::string MemoryPlan::describe(const Graph& graph) const {
  std::ostringstream out;
  out << slot_count << " activation buffers for " << graph.layers.size() << " layers:";
  for (int s = 0; s < slot_count; ++s) {
    out << "\n  buffer " << s << ":";
    for (size_t t = 0; t < slot_of.size(); ++t)
      if (slot_of[t] == s) out << " " << graph.tensors[t].name;
  }
  return out.str();
}

}  // namespace ds2rt::detail
