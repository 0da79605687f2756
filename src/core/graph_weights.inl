// forEachWeight: the one place that knows which tensors each layer kind owns.
#pragma once

#include <string>
#include <type_traits>

namespace ds2rt::detail {

template <typename Desc, typename Visitor>
void visitDescWeights(Desc& d, Visitor& visit) {
  using D = std::remove_const_t<Desc>;
  if constexpr (std::is_same_v<D, ConvolutionDesc> || std::is_same_v<D, FullyConnectedDesc>) {
    visit("weight", d.weight);
    visit("bias", d.bias);
  } else if constexpr (std::is_same_v<D, BatchNormDesc>) {
    visit("scale", d.scale);
    visit("bias", d.bias);
    visit("mean", d.mean);
    visit("variance", d.variance);
  } else if constexpr (std::is_same_v<D, LayerNormDesc>) {
    visit("scale", d.scale);
    visit("bias", d.bias);
  } else if constexpr (std::is_same_v<D, LookaheadDesc>) {
    visit("weight", d.weight);
  } else if constexpr (std::is_same_v<D, RNNDesc>) {
    const int dirs = d.directions();
    for (size_t i = 0; i < d.weights.size(); ++i) {
      // Appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on "l" + std::to_string(...) inlined here.
      std::string prefix = "l";
      prefix.append(std::to_string(i / dirs)).append(".d").append(std::to_string(i % dirs)).append(".");
      auto& w = d.weights[i];
      visit(prefix + "input_weight", w.input_weight);
      visit(prefix + "recurrent_weight", w.recurrent_weight);
      visit(prefix + "input_bias", w.input_bias);
      visit(prefix + "recurrent_bias", w.recurrent_bias);
      visit(prefix + "peephole", w.peephole);
    }
    visit("initial_h", d.initial_h);
    visit("initial_c", d.initial_c);
  }
}

template <typename Visitor>
void forEachWeight(LayerDesc& desc, Visitor&& visit) {
  std::visit([&](auto& d) { visitDescWeights(d, visit); }, desc);
}

template <typename Visitor>
void forEachWeight(const LayerDesc& desc, Visitor&& visit) {
  std::visit([&](const auto& d) { visitDescWeights(d, visit); }, desc);
}

}  // namespace ds2rt::detail
