// Inference batch norm is y = x * s + t per channel, s = scale / sqrt(var + eps),
// t = bias - mean * s. Folded into the neighbouring linear layer it costs nothing at run time.
#include <cmath>

#include "core/file.h"
#include "passes/passes.h"

namespace ds2rt::detail {

namespace {

struct Affine {
  std::vector<float> s, t;
};

Affine affineOf(const BatchNormDesc& bn) {
  Affine a;
  const auto scale = bn.scale.floats(), bias = bn.bias.floats(), mean = bn.mean.floats(), var = bn.variance.floats();
  for (size_t c = 0; c < scale.size(); ++c) {
    const float s = scale[c] / std::sqrt(var[c] + bn.epsilon);
    a.s.push_back(s);
    a.t.push_back(bias[c] - mean[c] * s);
  }
  return a;
}

// W' = W diag(s) (columns scaled), b' = b + W t, for W rows x cols with cols = channels.
void foldIntoLinear(HostTensor& weight, HostTensor& bias, const Affine& a) {
  const int64_t rows = weight.dim(0), cols = weight.dim(1);
  HostTensor w = weight.clone();
  HostTensor b = bias.empty() ? HostTensor(DataType::kFloat32, {rows}) : bias.clone();
  float* wd = w.mutableData<float>();
  float* bd = b.mutableData<float>();
  const float* orig = weight.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    double shift = 0;
    for (int64_t c = 0; c < cols; ++c) {
      shift += static_cast<double>(orig[r * cols + c]) * a.t[c];
      wd[r * cols + c] = orig[r * cols + c] * a.s[c];
    }
    bd[r] += static_cast<float>(shift);
  }
  releaseMappedPages(weight.data(), weight.bytes());  // a model file's original: the folded copy replaces it
  weight = std::move(w);
  bias = std::move(b);
}

void bypass(Graph& graph, int layer_index) {
  const Layer& layer = graph.layers[layer_index];
  replaceUses(graph, layer.output, layer.inputs[0]);
  graph.layers.erase(graph.layers.begin() + layer_index);
}

}  // namespace

void foldBatchNormIntoConvolution(Graph& graph, BuildLog& log) {
  for (size_t i = 0; i < graph.layers.size(); ++i) {
    auto* conv = std::get_if<ConvolutionDesc>(&graph.layers[i].desc);
    if (!conv || conv->activation.type != ActivationType::kNone) continue;
    const int next = soleConsumer(graph, graph.layers[i].output);
    if (next < 0) continue;
    const auto* bn = std::get_if<BatchNormDesc>(&graph.layers[next].desc);
    if (!bn) continue;
    const Affine a = affineOf(*bn);
    HostTensor w = conv->weight.clone();
    const int64_t per_channel = w.size() / conv->out_channels;
    float* wd = w.mutableData<float>();
    for (int64_t o = 0; o < conv->out_channels; ++o)
      for (int64_t k = 0; k < per_channel; ++k) wd[o * per_channel + k] *= a.s[o];
    HostTensor b(DataType::kFloat32, {conv->out_channels});
    for (int64_t o = 0; o < conv->out_channels; ++o)
      b.mutableData<float>()[o] = (conv->bias.empty() ? 0.0f : conv->bias.floats()[o]) * a.s[o] + a.t[o];
    releaseMappedPages(conv->weight.data(), conv->weight.bytes());  // as in foldIntoLinear
    conv->weight = std::move(w);
    conv->bias = std::move(b);
    graph.layers[i].fused.push_back("batch norm " + graph.layers[next].name);
    log.push_back("folded batch norm " + graph.layers[next].name + " into convolution " + graph.layers[i].name);
    if (graph.tensors[graph.layers[next].output].is_output) {  // a network output keeps its tensor
      graph.layers[i].output = graph.layers[next].output;
      graph.layers.erase(graph.layers.begin() + next);
    } else {
      bypass(graph, next);
    }
  }
}

void foldBatchNormIntoProjection(Graph& graph, BuildLog& log) {
  for (size_t i = 0; i < graph.layers.size(); ++i) {
    const auto* bn = std::get_if<BatchNormDesc>(&graph.layers[i].desc);
    if (!bn || graph.tensors[graph.layers[i].inputs[0]].layout == TensorLayout::kImage) continue;
    const int next = soleConsumer(graph, graph.layers[i].output);
    if (next < 0 || graph.layers[next].inputs[0] != graph.layers[i].output) continue;
    Layer& target = graph.layers[next];
    const Affine a = affineOf(*bn);
    if (auto* fc = std::get_if<FullyConnectedDesc>(&target.desc)) {
      foldIntoLinear(fc->weight, fc->bias, a);
    } else if (auto* rnn = std::get_if<RNNDesc>(&target.desc)) {
      for (int d = 0; d < rnn->directions(); ++d) foldIntoLinear(rnn->weights[d].input_weight, rnn->weights[d].input_bias, a);
    } else {
      continue;
    }
    target.fused.push_back("batch norm " + graph.layers[i].name + " (folded into the input projection)");
    log.push_back("folded batch norm " + graph.layers[i].name + " into the input projection of " + target.name);
    bypass(graph, static_cast<int>(i));
    --i;
  }
}

}  // namespace ds2rt::detail
