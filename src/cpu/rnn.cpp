// Recurrent layers (vanilla, LSTM, GRU; forward, reverse, bidirectional) with exact
// per-utterance lengths, as PyTorch's packed sequences: the input projection of all time steps
// and both directions is one GEMM; the recurrence runs step by step on the utterances still
// active, sorted by length so that they form a prefix of the batch.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "cpu/kernels.h"

namespace ds2rt::detail::cpu {

namespace {

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

struct PreparedLayer {
  int64_t input_size = 0;
  HostTensor input_weights;  // dirs*G*H x I: both directions stacked
  std::vector<float> input_bias;  // dirs*G*H, with the recurrent biases that can be folded in
  std::vector<HostTensor> recurrent;  // per direction G*H x H
  std::vector<std::vector<float>> hidden_bias;  // per direction H: GRU b_hn kept inside r * (...)
};

struct RNNScratch final : KernelState {
  std::vector<float> projection;  // T*N x dirs*G*H
  std::vector<float> layer_in, layer_out;  // between stacked layers
};

class RNNKernel final : public Kernel {
 public:
  explicit RNNKernel(const RNNDesc& d) : desc_(d), dirs_(d.directions()), gates_(gateCount(d.cell)) {
    const int64_t h = d.hidden_size, gh = gates_ * h;
    for (int l = 0; l < d.num_layers; ++l) {
      PreparedLayer p;
      p.input_size = d.weights[l * dirs_].input_weight.dim(1);
      p.input_weights = HostTensor(DataType::kFloat32, {dirs_ * gh, p.input_size});
      p.input_bias.assign(dirs_ * gh, 0.0f);
      for (int dir = 0; dir < dirs_; ++dir) {
        const auto& w = d.weights[l * dirs_ + dir];
        std::copy_n(w.input_weight.data<float>(), gh * p.input_size, p.input_weights.mutableData<float>() + dir * gh * p.input_size);
        float* bias = p.input_bias.data() + dir * gh;
        if (!w.input_bias.empty()) std::copy_n(w.input_bias.data<float>(), gh, bias);
        std::vector<float> hidden_bias(h, 0.0f);
        if (!w.recurrent_bias.empty()) {
          const float* rb = w.recurrent_bias.data<float>();
          const bool keep_inside_reset = d.cell == RNNCell::kGRU && d.linear_before_reset;
          for (int64_t i = 0; i < gh; ++i) {
            if (keep_inside_reset && i >= 2 * h) hidden_bias[i - 2 * h] = rb[i];
            else bias[i] += rb[i];
          }
        }
        p.recurrent.push_back(w.recurrent_weight);
        p.hidden_bias.push_back(std::move(hidden_bias));
      }
      layers_.push_back(std::move(p));
    }
  }

  std::unique_ptr<KernelState> createState(DeviceContext&) const override { return std::make_unique<RNNScratch>(); }

  void run(const KernelIO& io, KernelState* base) const override {
    auto& s = static_cast<RNNScratch&>(*base);
    const int64_t t = io.input_shape[0], n = io.input_shape[1], h = desc_.hidden_size;
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return io.lengths[a] > io.lengths[b]; });
    std::vector<int64_t> lengths(n);
    for (int64_t b = 0; b < n; ++b) lengths[b] = std::min<int64_t>(io.lengths[b], t);

    const float* input = io.in<float>();
    for (int l = 0; l < desc_.num_layers; ++l) {
      const bool last = l + 1 == desc_.num_layers;
      const bool sum = last && dirs_ == 2 && desc_.merge == DirectionMerge::kSum;
      const int64_t out_width = sum ? h : dirs_ * h;
      std::vector<float>* next = nullptr;
      float* out = io.out<float>();
      if (!last) {
        next = &s.layer_out;
        next->assign(t * n * out_width, 0.0f);
        out = next->data();
      } else {
        std::fill_n(out, t * n * out_width, 0.0f);
      }
      const PreparedLayer& p = layers_[l];
      const int64_t width = dirs_ * gates_ * h;
      s.projection.resize(t * n * width);
      gemmABt(t * n, width, p.input_size, input, p.input_size, p.input_weights.data<float>(), p.input_size,
              s.projection.data(), width);
#pragma omp parallel for
      for (int64_t r = 0; r < t * n; ++r)
        for (int64_t i = 0; i < width; ++i) s.projection[r * width + i] += p.input_bias[i];
      for (int dir = 0; dir < dirs_; ++dir) {
        const bool reverse = desc_.direction == RNNDirection::kReverse || dir == 1;
        const int64_t column = sum ? 0 : dir * h;
        recur(s, p, dir, reverse, order, lengths, n, out, out_width, column, sum && dir == 1);
      }
      if (next) {
        std::swap(s.layer_out, s.layer_in);  // the next layer reads it while writing layer_out
        input = s.layer_in.data();
      }
    }
  }

  std::string implementation() const override { return "oneDNN sgemm input projection + own recurrent loop"; }

 private:
  void recur(RNNScratch& s, const PreparedLayer& p, int dir, bool reverse, const std::vector<int64_t>& order,
             const std::vector<int64_t>& lengths, int64_t n, float* out, int64_t out_width,
             int64_t column, bool accumulate) const {
    const int64_t h = desc_.hidden_size, gh = gates_ * h, width = dirs_ * gh;
    const float* recurrent = p.recurrent[dir].data<float>();
    const float* b_hn = p.hidden_bias[dir].data();
    std::vector<float> h_state(n * h, 0.0f), c_state(n * h, 0.0f), gates(n * gh), candidate(n * h);
    const int64_t steps = lengths[order[0]];
    int64_t active = n;
    for (int64_t k = 0; k < steps; ++k) {
      while (active > 0 && lengths[order[active - 1]] <= k) --active;
      const bool gru_plain = desc_.cell == RNNCell::kGRU && !desc_.linear_before_reset;
      // Recurrent contribution of the active prefix (rows are utterances in length order).
      gemmABt(active, gru_plain ? 2 * h : gh, h, h_state.data(), h, recurrent, h, gates.data(), gh);
      if (gru_plain) {
        for (int64_t j = 0; j < active; ++j) {
          const float* x = s.projection.data() + ((reverse ? lengths[order[j]] - 1 - k : k) * n + order[j]) * width + dir * gh;
          for (int64_t i = 0; i < h; ++i)
            candidate[j * h + i] = sigmoid(x[i] + gates[j * gh + i]) * h_state[j * h + i];
        }
        gemmABt(active, h, h, candidate.data(), h, recurrent + 2 * h * h, h, gates.data() + 2 * h, gh);
      }
      for (int64_t j = 0; j < active; ++j) {
        const int64_t b = order[j];
        const int64_t step = reverse ? lengths[b] - 1 - k : k;
        const float* x = s.projection.data() + (step * n + b) * width + dir * gh;
        const float* g = gates.data() + j * gh;
        float* hs = h_state.data() + j * h;
        float* cs = c_state.data() + j * h;
        switch (desc_.cell) {
          case RNNCell::kRNNTanh:
            for (int64_t i = 0; i < h; ++i) hs[i] = std::tanh(x[i] + g[i]);
            break;
          case RNNCell::kRNNRelu:
            for (int64_t i = 0; i < h; ++i) hs[i] = std::max(0.0f, x[i] + g[i]);
            break;
          case RNNCell::kLSTM:
            for (int64_t i = 0; i < h; ++i) {
              const float in = sigmoid(x[i] + g[i]), forget = sigmoid(x[h + i] + g[h + i]);
              const float cell = std::tanh(x[2 * h + i] + g[2 * h + i]), output = sigmoid(x[3 * h + i] + g[3 * h + i]);
              cs[i] = forget * cs[i] + in * cell;
              hs[i] = output * std::tanh(cs[i]);
            }
            break;
          case RNNCell::kGRU:
            for (int64_t i = 0; i < h; ++i) {
              const float reset = sigmoid(x[i] + g[i]), update = sigmoid(x[h + i] + g[h + i]);
              const float hidden = gru_plain ? x[2 * h + i] + g[2 * h + i]
                                             : x[2 * h + i] + reset * (g[2 * h + i] + b_hn[i]);
              const float n_gate = std::tanh(hidden);
              hs[i] = (1.0f - update) * n_gate + update * hs[i];
            }
            break;
        }
        float* y = out + (step * n + b) * out_width + column;
        if (accumulate)
          for (int64_t i = 0; i < h; ++i) y[i] += hs[i];
        else
          std::copy_n(hs, h, y);
      }
    }
  }

  RNNDesc desc_;
  int dirs_;
  int gates_;
  std::vector<PreparedLayer> layers_;
};

}  // namespace

std::unique_ptr<Kernel> makeRNN(const RNNDesc& desc) { return std::make_unique<RNNKernel>(desc); }

}  // namespace ds2rt::detail::cpu
