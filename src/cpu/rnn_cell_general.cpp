#include "cpu/rnn_cell_general.h"

namespace ds2rt::detail::cpu {

GeneralCell::GeneralCell(const RNNDesc& desc, int direction) : hidden_(desc.hidden_size), clip_(desc.clip) {
  const std::vector<RNNActivation> fns = desc.activationsOf(direction);
  f_ = fns.at(0);
  if (fns.size() > 1) g_ = fns[1];
  if (fns.size() > 2) h_ = fns[2];
}

void GeneralCell::lstm(const float* x, const float* g, const float* peephole, float* h, float* c) const {
  const int64_t n = hidden_;
  for (int64_t i = 0; i < n; ++i) {
    float pre_i = x[i] + g[i], pre_f = x[n + i] + g[n + i];
    if (peephole) {
      pre_i += peephole[i] * c[i];
      pre_f += peephole[n + i] * c[i];
    }
    const float in = gate(pre_i), forget = gate(pre_f), cell = g_.apply(clipped(x[2 * n + i] + g[2 * n + i]));
    c[i] = forget * c[i] + in * cell;
    float pre_o = x[3 * n + i] + g[3 * n + i];
    if (peephole) pre_o += peephole[2 * n + i] * c[i];  // the new cell state, as ONNX's equations
    h[i] = gate(pre_o) * h_.apply(c[i]);
  }
}

void GeneralCell::gru(const float* x, const float* g, const float* b_hn, bool linear_before_reset, float* h) const {
  const int64_t n = hidden_;
  for (int64_t i = 0; i < n; ++i) {
    const float reset = gate(x[i] + g[i]), update = gate(x[n + i] + g[n + i]);
    const float pre = linear_before_reset ? x[2 * n + i] + reset * (g[2 * n + i] + b_hn[i]) : x[2 * n + i] + g[2 * n + i];
    const float candidate = g_.apply(clipped(pre));
    h[i] = (1.0f - update) * candidate + update * h[i];
  }
}

void GeneralCell::vanilla(const float* x, const float* g, float* h) const {
  for (int64_t i = 0; i < hidden_; ++i) h[i] = gate(x[i] + g[i]);
}

}  // namespace ds2rt::detail::cpu
