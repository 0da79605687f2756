// Graph passes run by the Builder. Each is a function from graph to graph that records what it
// did in the build report; each is tested on its own (tests/unit/passes_test.cpp).
#pragma once

#include <string>
#include <vector>

#include "core/graph.h"

namespace ds2rt::detail {

using BuildLog = std::vector<std::string>;

// mask -> per-frame op -> mask (same lengths): the first mask cannot change the result.
void removeRedundantMasks(Graph& graph, BuildLog& log);
// Convolution -> BatchNorm: scale the filters, shift the bias.
void foldBatchNormIntoConvolution(Graph& graph, BuildLog& log);
// BatchNorm -> RNN (input projection of its first layer) or -> FullyConnected.
void foldBatchNormIntoProjection(Graph& graph, BuildLog& log);
// RNN -> RNN (one direction, plain cells, the second reading only the first): one multi-layer RNN.
void stackRecurrentLayers(Graph& graph, BuildLog& log);
// Convolution / FullyConnected / Lookahead -> Activation: one kernel applies both.
void fuseActivations(Graph& graph, BuildLog& log);
// Layers whose output nobody reads.
void removeDeadLayers(Graph& graph, BuildLog& log);
// Drops tensors no layer or output refers to and renumbers the rest.
void compactTensors(Graph& graph);

void runAllPasses(Graph& graph, BuildLog& log);

// Helpers shared by the passes.
// Makes every reader of `from` read `to` instead.
void replaceUses(Graph& graph, int from, int to);
// The single layer reading `tensor`, or -1 when it has none, several, or is a network output.
int soleConsumer(const Graph& graph, int tensor);

}  // namespace ds2rt::detail
