#include "passes/passes.h"

namespace ds2rt::detail {

namespace {

ActivationDesc* fusedActivationSlot(LayerDesc& desc) {
  if (auto* d = std::get_if<ConvolutionDesc>(&desc)) return &d->activation;
  if (auto* d = std::get_if<FullyConnectedDesc>(&desc)) return &d->activation;
  if (auto* d = std::get_if<LookaheadDesc>(&desc)) return &d->activation;
  return nullptr;
}

bool isPerFrame(const LayerDesc& desc) {
  return std::holds_alternative<BatchNormDesc>(desc) || std::holds_alternative<ActivationDesc>(desc);
}

}  // namespace

void fuseActivations(Graph& graph, BuildLog& log) {
  for (size_t i = 0; i < graph.layers.size(); ++i) {
    ActivationDesc* slot = fusedActivationSlot(graph.layers[i].desc);
    if (!slot || slot->type != ActivationType::kNone) continue;
    const int next = soleConsumer(graph, graph.layers[i].output);
    if (next < 0) continue;
    const auto* act = std::get_if<ActivationDesc>(&graph.layers[next].desc);
    if (!act) continue;
    // Lookahead writes zeros past each length, the activation layer act(0) there: equal only if act(0) == 0.
    if (std::holds_alternative<LookaheadDesc>(graph.layers[i].desc) && act->apply(0.0f) != 0.0f) continue;
    *slot = *act;
    graph.layers[i].fused.push_back(std::string(toString(act->type)) + " activation " + graph.layers[next].name);
    log.push_back("fused activation " + graph.layers[next].name + " into " + graph.layers[i].name);
    // A network output keeps its tensor: the fused layer now produces it.
    if (graph.tensors[graph.layers[next].output].is_output) graph.layers[i].output = graph.layers[next].output;
    else replaceUses(graph, graph.layers[next].output, graph.layers[i].output);
    graph.layers.erase(graph.layers.begin() + next);
  }
}

void removeRedundantMasks(Graph& graph, BuildLog& log) {
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < graph.layers.size() && !changed; ++i) {
      const Layer& mask = graph.layers[i];
      if (!std::holds_alternative<SequenceMaskDesc>(mask.desc)) continue;
      const int op = soleConsumer(graph, mask.output);
      if (op < 0 || !isPerFrame(graph.layers[op].desc)) continue;
      const int second = soleConsumer(graph, graph.layers[op].output);
      if (second < 0 || !std::holds_alternative<SequenceMaskDesc>(graph.layers[second].desc) ||
          graph.layers[second].inputs[1] != mask.inputs[1])
        continue;
      log.push_back("removed mask " + mask.name + ": " + graph.layers[second].name + " masks the same frames after " +
                    graph.layers[op].name);
      replaceUses(graph, mask.output, mask.inputs[0]);
      graph.layers.erase(graph.layers.begin() + static_cast<std::ptrdiff_t>(i));
      changed = true;
    }
  }
}

}  // namespace ds2rt::detail
