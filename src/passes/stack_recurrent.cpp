// RNN -> RNN, one direction each, the second reading only the first: one RNN layer of both
// layers' stack (ONNX's and PyTorch's num_layers semantics are exactly that). The CUDA backend
// runs the layers of a stack two at a time, the second a few steps behind the first (see
// rnn_persistent_mma.cu), which it can only do when it sees both.
#include "passes/passes.h"

namespace ds2rt::detail {

namespace {

// Both plain forward layers of one cell, size and lengths tensor.
bool stackable(const Layer& first, const Layer& second) {
  const auto* a = std::get_if<RNNDesc>(&first.desc);
  const auto* b = std::get_if<RNNDesc>(&second.desc);
  if (!a || !b || first.inputs.size() != 2 || second.inputs.size() != 2) return false;
  if (second.inputs[0] != first.output || second.inputs[1] != first.inputs[1]) return false;
  if (a->direction != RNNDirection::kForward || b->direction != RNNDirection::kForward) return false;
  if (a->cell != b->cell || a->hidden_size != b->hidden_size || a->linear_before_reset != b->linear_before_reset)
    return false;
  return !a->hasExtras() && !b->hasExtras() && rnnExtras(first).empty() && rnnExtras(second).empty();
}

}  // namespace

void stackRecurrentLayers(Graph& graph, BuildLog& log) {
  for (size_t i = 0; i < graph.layers.size(); ++i) {
    const int next = soleConsumer(graph, graph.layers[i].output);
    if (next < 0 || !stackable(graph.layers[i], graph.layers[next])) continue;
    Layer& first = graph.layers[i];
    auto& stack = std::get<RNNDesc>(first.desc);
    auto& top = std::get<RNNDesc>(graph.layers[next].desc);
    stack.num_layers += top.num_layers;
    for (auto& w : top.weights) stack.weights.push_back(std::move(w));
    first.output = graph.layers[next].output;
    first.fused.push_back("recurrent layer " + graph.layers[next].name + " (stacked)");
    for (auto& f : graph.layers[next].fused) first.fused.push_back(std::move(f));
    log.push_back("stacked recurrent layer " + graph.layers[next].name + " onto " + first.name);
    graph.layers.erase(graph.layers.begin() + next);
    --i;  // the stack may take the layer after too
  }
}

}  // namespace ds2rt::detail
