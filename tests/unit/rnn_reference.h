// A naive double-precision reference of the recurrent layer (ONNX's equations, which PyTorch's and
// cuDNN's plain cells are special cases of), shared by the recurrent-layer tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ds2rt/network.h"
#include "ds2rt/tensor.h"

namespace ds2rt::test {

inline double applyActivation(const RNNActivation& a, double x) {
  const double al = a.alpha, be = a.beta;
  switch (a.type) {
    case RNNActivationType::kSigmoid: return 1 / (1 + std::exp(-x));
    case RNNActivationType::kTanh: return std::tanh(x);
    case RNNActivationType::kRelu: return std::max(0.0, x);
    case RNNActivationType::kHardSigmoid: return std::clamp(al * x + be, 0.0, 1.0);
    case RNNActivationType::kLeakyRelu: return x < 0 ? al * x : x;
    case RNNActivationType::kThresholdedRelu: return x > al ? x : 0;
    case RNNActivationType::kScaledTanh: return al * std::tanh(be * x);
    case RNNActivationType::kAffine: return al * x + be;
    case RNNActivationType::kElu: return x < 0 ? al * (std::exp(x) - 1) : x;
    case RNNActivationType::kSoftsign: return x / (1 + std::abs(x));
    case RNNActivationType::kSoftplus: return std::log(1 + std::exp(x));
  }
  return x;
}

inline double valueAt(const HostTensor& t, int64_t i) { return t.empty() ? 0.0 : t.data<float>()[i]; }

// One time step of ONNX's equations (canonical gate blocks: LSTM i,f,g,o; GRU r,z,n): the layer's gate
// functions, clip on every gate pre-activation, LSTM peepholes.
inline void referenceStep(const RNNDesc& d, int dir, const RNNGateWeights& w, const std::vector<double>& x,
                          std::vector<double>& h, std::vector<double>& c) {
  const int64_t hs = d.hidden_size, gh = gateCount(d.cell) * hs, in = static_cast<int64_t>(x.size());
  const auto fns = d.activationsOf(dir);
  const auto clip = [&](double p) { return d.clip > 0 ? std::clamp(p, -double(d.clip), double(d.clip)) : p; };
  std::vector<double> a(gh), r(gh);
  for (int64_t row = 0; row < gh; ++row) {
    a[row] = valueAt(w.input_bias, row);
    for (int64_t i = 0; i < in; ++i) a[row] += valueAt(w.input_weight, row * in + i) * x[i];
    r[row] = valueAt(w.recurrent_bias, row);
    for (int64_t k = 0; k < hs; ++k) r[row] += valueAt(w.recurrent_weight, row * hs + k) * h[k];
  }
  std::vector<double> next(hs);
  for (int64_t j = 0; j < hs; ++j) {
    if (d.cell == RNNCell::kLSTM) {
      const double i = applyActivation(fns[0], clip(a[j] + r[j] + valueAt(w.peephole, j) * c[j]));
      const double f = applyActivation(fns[0], clip(a[hs + j] + r[hs + j] + valueAt(w.peephole, hs + j) * c[j]));
      const double g = applyActivation(fns[1], clip(a[2 * hs + j] + r[2 * hs + j]));
      c[j] = f * c[j] + i * g;
      const double o = applyActivation(fns[0], clip(a[3 * hs + j] + r[3 * hs + j] + valueAt(w.peephole, 2 * hs + j) * c[j]));
      next[j] = o * applyActivation(fns[2], c[j]);
    } else if (d.cell == RNNCell::kGRU) {
      const double z = applyActivation(fns[0], clip(a[hs + j] + r[hs + j]));
      double pre;
      if (d.linear_before_reset) {
        pre = a[2 * hs + j] + applyActivation(fns[0], clip(a[j] + r[j])) * r[2 * hs + j];
      } else {
        pre = a[2 * hs + j] + valueAt(w.recurrent_bias, 2 * hs + j);
        for (int64_t k = 0; k < hs; ++k)
          pre += valueAt(w.recurrent_weight, (2 * hs + j) * hs + k) * applyActivation(fns[0], clip(a[k] + r[k])) * h[k];
      }
      next[j] = (1 - z) * applyActivation(fns[1], clip(pre)) + z * h[j];
    } else {
      next[j] = applyActivation(fns[0], clip(a[j] + r[j]));
    }
  }
  h = next;
}

// T x N x width (h_t, or c_t for the cell-state output; directions concatenated or summed as d.merge says);
// zeros past each length. h0 / c0: initial states, L*D x (1 or N) x H, empty for zeros.
inline std::vector<double> referenceRNN(const RNNDesc& d, const HostTensor& x, const std::vector<int32_t>& lengths,
                                        const HostTensor& h0 = {}, const HostTensor& c0 = {}) {
  const int64_t t = x.dim(0), n = x.dim(1), in = x.dim(2), hs = d.hidden_size;
  const int dirs = d.directions();
  const bool sum = dirs == 2 && d.merge == DirectionMerge::kSum;
  const int64_t width = sum ? hs : dirs * hs;
  std::vector<double> y(t * n * width, 0.0);
  const auto init = [&](const HostTensor& s, int64_t index, int64_t b) {
    std::vector<double> out(hs, 0.0);
    if (!s.empty())
      for (int64_t j = 0; j < hs; ++j) out[j] = valueAt(s, (index * s.dim(1) + (s.dim(1) == 1 ? 0 : b)) * hs + j);
    return out;
  };
  for (int64_t b = 0; b < n; ++b) {
    const int64_t len = lengths[b];
    std::vector<std::vector<double>> seq(len);
    for (int64_t s = 0; s < len; ++s)
      for (int64_t i = 0; i < in; ++i) seq[s].push_back(x.data<float>()[(s * n + b) * in + i]);
    for (int l = 0; l < d.num_layers; ++l) {
      std::vector<std::vector<double>> next(len);
      for (int dir = 0; dir < dirs; ++dir) {
        const bool reverse = d.direction == RNNDirection::kReverse || dir == 1;
        std::vector<double> h = init(h0, l * dirs + dir, b), c = init(c0, l * dirs + dir, b);
        std::vector<std::vector<double>> outs(len);
        for (int64_t k = 0; k < len; ++k) {
          const int64_t s = reverse ? len - 1 - k : k;
          referenceStep(d, dir, d.weights[l * dirs + dir], seq[s], h, c);
          outs[s] = d.output == RNNOutput::kCellState && l + 1 == d.num_layers ? c : h;
        }
        for (int64_t s = 0; s < len; ++s) next[s].insert(next[s].end(), outs[s].begin(), outs[s].end());
      }
      seq = next;
    }
    for (int64_t s = 0; s < len; ++s)
      for (int64_t j = 0; j < dirs * hs; ++j) y[(s * n + b) * width + (sum ? j % hs : j)] += seq[s][j];
  }
  return y;
}

}  // namespace ds2rt::test
