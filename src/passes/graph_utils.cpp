#include <algorithm>

#include "passes/passes.h"

namespace ds2rt::detail {

void replaceUses(Graph& graph, int from, int to) {
  for (auto& layer : graph.layers) std::replace(layer.inputs.begin(), layer.inputs.end(), from, to);
}

int soleConsumer(const Graph& graph, int tensor) {
  if (graph.tensors[tensor].is_output) return -1;
  const auto readers = graph.consumers(tensor);
  return readers.size() == 1 ? readers[0] : -1;
}

void removeDeadLayers(Graph& graph, BuildLog& log) {
  for (bool changed = true; changed;) {
    changed = false;
    for (int i = static_cast<int>(graph.layers.size()) - 1; i >= 0; --i) {
      const int out = graph.layers[i].output;
      if (graph.tensors[out].is_output || !graph.consumers(out).empty()) continue;
      log.push_back("removed " + graph.layers[i].name + ": its output is never used");
      graph.layers.erase(graph.layers.begin() + i);
      changed = true;
    }
  }
}

void compactTensors(Graph& graph) {
  std::vector<int> remap(graph.tensors.size(), -1);
  std::vector<TensorInfo> kept;
  const auto keep = [&](int id) {
    if (remap[id] < 0) {
      remap[id] = static_cast<int>(kept.size());
      kept.push_back(graph.tensors[id]);
    }
    return remap[id];
  };
  for (int& id : graph.inputs) id = keep(id);
  for (auto& layer : graph.layers) {
    for (int& id : layer.inputs) id = keep(id);
    layer.output = keep(layer.output);
  }
  for (int& id : graph.outputs) id = keep(id);
  graph.tensors = std::move(kept);
}

void runAllPasses(Graph& graph, BuildLog& log) {
  removeDeadLayers(graph, log);
  removeRedundantMasks(graph, log);
  foldBatchNormIntoConvolution(graph, log);
  foldBatchNormIntoProjection(graph, log);
  stackRecurrentLayers(graph, log);
  fuseActivations(graph, log);
  compactTensors(graph);
}

}  // namespace ds2rt::detail
