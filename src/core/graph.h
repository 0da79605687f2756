// The graph behind NetworkDefinition and Engine: tensors plus layers in topological order.
// Graph passes (src/passes) rewrite it; backends compile it; plan files store it.
#pragma once

#include <map>

#include <string>
#include <variant>
#include <vector>

#include "ds2rt/network.h"

namespace ds2rt::detail {

struct SequenceMaskDesc {};
struct ReshapeToSequenceDesc {};
struct SoftmaxDesc { bool log = false; };
struct BatchMajorDesc {};

using LayerDesc = std::variant<ConvolutionDesc, BatchNormDesc, ActivationDesc, SequenceMaskDesc,
                               LengthsTransformDesc, ReshapeToSequenceDesc, RNNDesc, LookaheadDesc,
                               FullyConnectedDesc, SoftmaxDesc, BatchMajorDesc, LayerNormDesc, RNNFinalStateDesc,
                               SamePaddingShiftDesc>;

// Stable names, used in reports and plan files.
const char* kindName(const LayerDesc& desc);

struct TensorInfo {
  std::string name;
  DataType dtype = DataType::kFloat32;
  TensorLayout layout = TensorLayout::kImage;
  Shape shape;  // kDynamic for N and T
  bool is_input = false;
  bool is_output = false;
};

struct Layer {
  std::string name;
  LayerDesc desc;
  std::vector<int> inputs;  // tensor ids; lengths tensors come after the data tensor
  int output = -1;
  std::vector<std::string> fused;  // what passes merged into this layer, for reports
};

struct Graph {
  std::vector<TensorInfo> tensors;
  std::vector<Layer> layers;  // topological order
  std::vector<int> inputs;
  std::vector<int> outputs;
  std::map<std::string, std::string> metadata;  // the model's, carried into engines and plans untouched

  int findTensor(const std::string& name) const;  // -1 when absent
  int producer(int tensor) const;                 // layer index, -1 for inputs
  std::vector<int> consumers(int tensor) const;   // layer indices
};

// Output shape of a layer from its input shapes (kDynamic propagates). The same function
// serves shape inference at build time and concrete shapes at run time.
Shape inferShape(const Layer& layer, const std::vector<Shape>& input_shapes);

// Checks a layer's weights and parameters against its input shapes; throws naming the layer.
void validateLayer(const Layer& layer, const std::vector<const TensorInfo*>& inputs);

// What a recurrent layer asks for beyond the plain cell ("clip 0.5", "peepholes", "initial_h input"...),
// for backends that refuse them; empty for a plain layer.
std::vector<std::string> rnnExtras(const Layer& layer);

// Number of weight parameters of a layer.
int64_t parameterCount(const LayerDesc& desc);

// Visits every weight tensor of a layer with a stable key ("weight", "l0.d1.recurrent_bias"...).
template <typename Visitor>
void forEachWeight(LayerDesc& desc, Visitor&& visit);
template <typename Visitor>
void forEachWeight(const LayerDesc& desc, Visitor&& visit);

}  // namespace ds2rt::detail

#include "core/graph_weights.inl"
