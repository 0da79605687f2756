// The CUDA RNN layer: per layer, the input projection of all steps and both directions is one
// cuBLASLt GEMM; the recurrence runs in the persistent kernel when the batch and the weights fit
// on chip, otherwise step by step (cuBLASLt product + cell kernel), which any size can use.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "cuda/context.cuh"
#include "cuda/gemm.cuh"
#include "cuda/kernels.cuh"
#include "cuda/rnn.cuh"

namespace ds2rt::detail::cuda {

namespace {

struct LayerWeights {
  int64_t input_size = 0;
  DeviceMemory input_weights;  // dirs*G*H x I, activation type
  DeviceMemory bias;           // dirs*G*H float: input bias + the recurrent biases outside the reset product
                               // (the projection GEMM's epilogue adds them for the persistent kernels)
  DeviceMemory hidden_bias;    // dirs*H float (GRU linear-before-reset) or empty
  DeviceMemory recurrent;      // dirs x G*H x H, activation type (per-step path)
  DeviceMemory tiles;          // persistent kernel tiles, activation type
  DeviceMemory wide_tiles;     // the wide-batch kernel's, where its layout differs from `tiles`
  DeviceMemory cluster_tiles;  // the cluster kernel's, where its layout differs from the wide one's
  DeviceMemory input_tiles;    // a stacked layer's input weights, tiled as R (layers after the first)
};

constexpr int kSmallKernelBatch = 2;  // the most utterances the small persistent kernels take beside the wide one
// From this many utterances on the cluster kernel (Hopper) takes batches the wide kernel could take too:
// on an H100 it was 1.14-1.60x faster at every batch measured, 4 to 32 x 15 s (bench/RESULTS.md, session 19).
constexpr int kClusterFromBatch = 3;

// DS2RT_CUDA_RNN_KERNEL=wide keeps every batch the wide kernel takes on it, =cluster gives the cluster
// kernel all it takes (tests, benchmarks); unset, the cluster kernel takes them from kClusterFromBatch on.
int clusterFromBatch() {
  const char* forced = std::getenv("DS2RT_CUDA_RNN_KERNEL");
  const std::string kernel = forced ? forced : "";
  check(kernel.empty() || kernel == "wide" || kernel == "cluster", "DS2RT_CUDA_RNN_KERNEL is '", kernel,
        "': use wide or cluster");
  return kernel == "wide" ? std::numeric_limits<int>::max() : kernel == "cluster" ? 0 : kClusterFromBatch;
}
// Below this many utterances a step's product is bound by reading R (32 MB fp32 for a 1024-unit
// biLSTM), not by arithmetic: tf32 engines multiply exactly there (TF32 measured 4% slower at 1).
constexpr int64_t kTf32StepBatch = 16;

struct RNNState final : KernelState {
  RNNState(DataType type, FloatMath math, GemmChoices* choices, GemmChoices* exact_choices)
      : projection(type, DataType::kFloat32, math),
        recurrent(type, DataType::kFloat32, math, choices),
        recurrent_exact(type, DataType::kFloat32, FloatMath::kExact, exact_choices) {}
  GemmRunner projection, recurrent, recurrent_exact;
};

// A tf32 layer can run its recurrence on the fp16 persistent kernels: fp16 has TF32's 10-bit
// mantissa, h of an LSTM, GRU or tanh RNN lies in [-1, 1], and R must fit fp16's range (with fp32 R
// a 1024-unit biLSTM's 32 MB would not fit on chip: 34 ms a 10 s utterance step by step instead of
// 8, H100). Products accumulate in fp32 as TF32's do.
bool fp16ProductsAllowed(const RNNDesc& d, DataType type, FloatMath math) {
  if (type != DataType::kFloat32 || math != FloatMath::kTF32 || d.cell == RNNCell::kRNNRelu) return false;
  constexpr float kLargestWeight = 32768.0f;  // fp16 holds up to 65504
  for (const auto& set : d.weights)
    for (const float v : set.recurrent_weight.floats())
      if (!(std::abs(v) <= kLargestWeight)) return false;
  return true;
}

class RNNKernel final : public TypedKernel {
 public:
  RNNKernel(const RNNDesc& d, DataType type, FloatMath math, const DeviceInfo& info)
      : TypedKernel(type), desc_(d), math_(math), dirs_(d.directions()), gates_(gateCount(d.cell)) {
    const bool fp16_products = fp16ProductsAllowed(d, type, math);
    if (fp16_products)
      plan_ = planPersistent(d.cell, d.linear_before_reset, d.hidden_size, dirs_, type, DataType::kFloat16,
                             info.sm_count, info.shared_memory_per_block);
    if (!plan_.usable)
      plan_ = planPersistent(d.cell, d.linear_before_reset, d.hidden_size, dirs_, type, type, info.sm_count,
                             info.shared_memory_per_block);
    wide_ = planWide(d.cell, d.linear_before_reset, d.hidden_size, dirs_, type, fp16_products ? DataType::kFloat16 : type,
                     info.sm_count, info.shared_memory_per_block);
    // From 3 utterances on the wide-batch kernel is the faster (H100, fp16, bench/RESULTS.md: e.g.
    // lstm_bi 4 x 15 s 18.0 vs 23.4 ms, 8 x 15 s 19.4 vs 37.7 ms); at 1 and 2 the small kernels.
    if (wide_.usable) plan_.max_batch = std::min(plan_.max_batch, kSmallKernelBatch);
    // Beyond the wide kernel's 32 utterances, on Hopper: h multicast within clusters, wgmma products.
    cluster_from_batch_ = clusterFromBatch();
    cluster_ = planCluster(d.cell, d.linear_before_reset, d.hidden_size, dirs_, type,
                           fp16_products ? DataType::kFloat16 : type, info);
    // Layers of one direction go two per launch where they can (see StackArgs).
    if (d.num_layers > 1 && d.direction == RNNDirection::kForward)
      stacked_bytes_ = planStacked(plan_, gates_, d.hidden_size, type, info.sm_count, info.shared_memory_per_block);
    const bool wide_shares_tiles = plan_.usable && plan_.tensor_cores &&
                                   plan_.units_per_block == wide_.units_per_block && plan_.products == wide_.products;
    const bool cluster_shares_tiles = wide_.usable && cluster_.units_per_block == wide_.units_per_block &&
                                      cluster_.products == wide_.products;
    const int64_t h = d.hidden_size, gh = gates_ * h;
    const bool lbr_gru = d.cell == RNNCell::kGRU && d.linear_before_reset;
    for (int l = 0; l < d.num_layers; ++l) {
      LayerWeights w;
      w.input_size = d.weights[l * dirs_].input_weight.dim(1);
      std::vector<float> input, bias(dirs_ * gh, 0.0f), hidden_bias(dirs_ * h, 0.0f), recurrent;
      for (int dir = 0; dir < dirs_; ++dir) {
        const auto& set = d.weights[l * dirs_ + dir];
        input.insert(input.end(), set.input_weight.floats().begin(), set.input_weight.floats().end());
        recurrent.insert(recurrent.end(), set.recurrent_weight.floats().begin(), set.recurrent_weight.floats().end());
        for (int64_t i = 0; i < gh; ++i) {
          float& b = bias[dir * gh + i];
          if (!set.input_bias.empty()) b += set.input_bias.floats()[i];
          if (set.recurrent_bias.empty()) continue;
          if (lbr_gru && i >= 2 * h) hidden_bias[dir * h + i - 2 * h] = set.recurrent_bias.floats()[i];
          else b += set.recurrent_bias.floats()[i];
        }
      }
      w.input_weights = uploadFloats(input.data(), input.size(), type);
      w.bias = uploadFloats(bias.data(), bias.size(), DataType::kFloat32);
      if (lbr_gru) w.hidden_bias = uploadFloats(hidden_bias.data(), hidden_bias.size(), DataType::kFloat32);
      w.recurrent = uploadFloats(recurrent.data(), recurrent.size(), type);
      if (plan_.usable) {
        const auto tiles = tilePersistentWeights(recurrent, gates_, h, dirs_, plan_);
        w.tiles = uploadFloats(tiles.data(), tiles.size(), plan_.products);
      }
      if (stacked_bytes_ > 0 && l > 0) {  // input size H here, like R
        const auto tiles = tilePersistentWeights(input, gates_, h, dirs_, plan_);
        w.input_tiles = uploadFloats(tiles.data(), tiles.size(), plan_.products);
      }
      if (wide_.usable && !wide_shares_tiles) {
        const auto tiles = tilePersistentWeights(recurrent, gates_, h, dirs_, wide_);
        w.wide_tiles = uploadFloats(tiles.data(), tiles.size(), wide_.products);
      }
      if (cluster_.usable && !cluster_shares_tiles) {
        const auto tiles = tilePersistentWeights(recurrent, gates_, h, dirs_, cluster_);
        w.cluster_tiles = uploadFloats(tiles.data(), tiles.size(), cluster_.products);
      }
      layers_.push_back(std::move(w));
    }
    desc_.weights.clear();  // they live on the device now
  }

  std::unique_ptr<KernelState> createState(DeviceContext&) const override {
    return std::make_unique<RNNState>(type_, math_, &step_choices_, &exact_step_choices_);
  }

  void run(const KernelIO& io, KernelState* base) const override {
    auto& state = static_cast<RNNState&>(*base);
    CudaDeviceContext& dev = device(io);
    const cudaStream_t s = dev.stream();
    const int64_t t = io.input_shape[0], n = io.input_shape[1], h = desc_.hidden_size, gh = gates_ * h;
    const size_t element = sizeOf(type_);
    const bool persistent = plan_.usable && n <= plan_.max_batch;
    const bool wide = !persistent && wide_.usable && n <= wide_.max_batch && !(cluster_.usable && n >= cluster_from_batch_);
    const bool clustered = !persistent && !wide && cluster_.usable && n <= cluster_.max_batch;
    if (persistent && stacked_bytes_ > 0 && n <= stackedBatch()) return runStacked(state, dev, io);
    float* projection = static_cast<float*>(dev.scratch(0, t * n * dirs_ * gh * sizeof(float)));
    const void* input = io.input;
    for (int l = 0; l < desc_.num_layers; ++l) {
      const LayerWeights& w = layers_[l];
      const bool last = l + 1 == desc_.num_layers;
      const bool sum = last && dirs_ == 2 && desc_.merge == DirectionMerge::kSum;
      // Directions are written side by side; a summed last layer goes through a scratch buffer.
      void* out = last && !sum ? io.output : dev.scratch(1 + (l % 2), t * n * dirs_ * h * element);
      DS2RT_CUDA(cudaMemsetAsync(out, 0, t * n * dirs_ * h * element, s));
      // The persistent kernels find the biases in P, so that they read one value per gate and step.
      // The per-step cell kernel adds them: with the epilogue cuBLASLt's heuristic picked slower
      // projections at batch 64 (uni-GRU 45.5 vs 43.5 ms, H100).
      const bool bias_in_projection = persistent || wide || clustered;
      const auto* bias = static_cast<const float*>(w.bias.get());
      state.projection.run(dev,
                           {.m = t * n, .n = dirs_ * gh, .k = w.input_size, .lda = w.input_size, .ldb = w.input_size,
                            .ldc = dirs_ * gh, .bias = bias_in_projection},
                           {input, w.input_weights.get(), projection, bias});
      const RecurrenceArgs args = recurrenceArgs(io, l, projection, bias_in_projection ? nullptr : bias, out);
      if (persistent) {
        auto* exchange = static_cast<unsigned long long*>(dev.scratch(3, persistentExchangeBytes(dirs_, h)));
        unsigned long long* traced = trace(dev, l);
        launchPersistent(args, plan_, w.tiles.get(), exchange, type_, s, traced);
        if (traced) printTrace(dev, traced, l, t);
      } else if (wide) {
        void* exchange = dev.scratch(4, wideExchangeBytes(dirs_, h, wide_.products));
        unsigned long long* traced = trace(dev, l);
        launchWide(args, wide_, w.wide_tiles ? w.wide_tiles.get() : w.tiles.get(), exchange, type_, s, traced);
        if (traced) printTrace(dev, traced, l, t);
      } else if (clustered) {
        void* exchange = dev.scratch(4, clusterExchangeBytes(dirs_, h, cluster_.products));
        unsigned long long* traced = trace(dev, l);
        const DeviceMemory& tiles = w.cluster_tiles ? w.cluster_tiles : w.wide_tiles ? w.wide_tiles : w.tiles;
        launchCluster(args, cluster_, tiles.get(), exchange, type_, s, traced);
        if (traced) printTrace(dev, traced, l, t, kClusterPhases);
      } else {
        stepwise(state, dev, args, w);
      }
      if (sum) launchSumDirections(out, io.output, t * n, h, type_, s);
      input = out;
    }
  }

  std::string implementation() const override {
    std::string text = "cuBLASLt input projection; recurrence: ";
    const auto describe = [&](const PersistentPlan& p) {
      const int rows = gates_ * p.units_per_block;
      return cat(p.blocks_per_direction, " blocks x ", p.units_per_block, " units per direction",
                 p.products == type_  ? ""
                 : p.tensor_cores     ? "; R and h held in fp16: tf32-class products"
                                      : "; R held in fp16: tf32-class products",
                 !p.tensor_cores && p.resident_rows < rows
                     ? cat("; ", rows - p.resident_rows, " of each block's ", rows, " rows of R read from L2 each step")
                     : "");
    };
    if (plan_.usable)
      text += cat("persistent ", plan_.tensor_cores ? "tensor-core" : "CUDA-core", " kernel for batch <= ",
                  plan_.max_batch, " (", describe(plan_), "), ");
    if (wide_.usable)
      text += cat("wide-batch persistent tensor-core kernel for batch <= ", wide_.max_batch, " (", describe(wide_),
                  "), ");
    if (cluster_.usable)
      text += cat("cluster persistent wgmma kernel for batch <= ", cluster_.max_batch, " (", describe(cluster_),
                  "; h multicast to clusters of ", cluster_.cluster_size, ", two halves of the batch in flight), ");
    if (stacked_bytes_ > 0)
      text += cat("layers two per launch for batch <= ", stackedBatch(), " (each emits the next one's projection",
                  stackedEmitWarps(plan_, gates_, desc_.hidden_size) ? ", at batch 1 from warps of its own" : "", "), ");
    if (!plan_.usable && !wide_.usable && !cluster_.usable)
      return text + "per-step cuBLASLt + cell kernel (weights do not fit on chip for the persistent kernels)";
    return text + "per-step cuBLASLt above";
  }

 private:
  // The recurrence of layer `layer`: its projection P (biases in it where `bias` is null), output.
  RecurrenceArgs recurrenceArgs(const KernelIO& io, int layer, const float* projection, const float* bias,
                                void* output) const {
    const int64_t h = desc_.hidden_size;
    return RecurrenceArgs{.cell = {desc_.cell, desc_.linear_before_reset}, .gates = gates_, .t = io.input_shape[0],
                          .n = io.input_shape[1], .h = h, .dirs = dirs_,
                          .reverse_only = desc_.direction == RNNDirection::kReverse, .projection = projection,
                          .bias = bias, .hidden_bias = static_cast<const float*>(layers_[layer].hidden_bias.get()),
                          .lengths = io.lengths, .output = output, .out_width = dirs_ * h, .column_stride = h};
  }

  // A one-direction stack on the persistent kernel, two layers per launch: only the first layer's
  // projection is a GEMM; each layer's blocks write the next one's as they go (StackArgs).
  void runStacked(RNNState& state, CudaDeviceContext& dev, const KernelIO& io) const {
    const cudaStream_t s = dev.stream();
    const int64_t t = io.input_shape[0], n = io.input_shape[1], h = desc_.hidden_size, gh = gates_ * h;
    const int layers = desc_.num_layers;
    // Layer l's projection is in buffer l % 3: a launch of layers l and l + 1 reads l's and writes
    // l + 1's (as tagged words, two floats' room) and l + 2's, three different buffers.
    float* projections[3];
    for (int i = 0; i < 3; ++i)
      projections[i] = static_cast<float*>(dev.scratch(i == 0 ? 0 : 19 + i, 2 * t * n * gh * sizeof(float)));
    void* scratch = dev.scratch(3, persistentExchangeBytes(2, h));  // two layers' h exchange
    DS2RT_CUDA(cudaMemsetAsync(io.output, 0, t * n * h * sizeOf(type_), s));
    const LayerWeights& first = layers_[0];
    state.projection.run(dev,
                         {.m = t * n, .n = gh, .k = first.input_size, .lda = first.input_size, .ldb = first.input_size,
                          .ldc = gh, .bias = true},
                         {io.input, first.input_weights.get(), projections[0], static_cast<const float*>(first.bias.get())});
    const auto argsOf = [&](int l) {
      return recurrenceArgs(io, l, projections[l % 3], nullptr, l + 1 == layers ? io.output : nullptr);
    };
    const auto stacked = [&](int l) {
      const bool next = l + 1 < layers;
      return StackedLayer{.args = argsOf(l), .tiles = layers_[l].tiles.get(),
                          .next_input = next ? layers_[l + 1].input_tiles.get() : nullptr,
                          .next_bias = next ? static_cast<const float*>(layers_[l + 1].bias.get()) : nullptr,
                          .emitted = next ? static_cast<void*>(projections[(l + 1) % 3]) : nullptr};
    };
    for (int l = 0; l < layers; l += 2) {
      unsigned long long* traced = trace(dev, l);
      if (l + 1 < layers)
        launchStacked(stacked(l), stacked(l + 1), plan_, stacked_bytes_, scratch, type_, s, traced);
      else  // an odd stack's last layer alone
        launchPersistent(argsOf(l), plan_, layers_[l].tiles.get(), static_cast<unsigned long long*>(scratch), type_, s,
                         traced);
      if (traced) printTrace(dev, traced, l, t);
    }
  }

  void stepwise(RNNState& state, CudaDeviceContext& dev, const RecurrenceArgs& a, const LayerWeights& w) const {
    const cudaStream_t s = dev.stream();
    const int64_t n = a.n, h = a.h, gh = gates_ * h, states = dirs_ * n * h;
    const size_t element = sizeOf(type_);
    auto* recurrent = static_cast<float*>(dev.scratch(5, dirs_ * n * gh * sizeof(float)));
    auto* h_state = static_cast<float*>(dev.scratch(6, states * sizeof(float)));
    auto* c_state = static_cast<float*>(dev.scratch(7, states * sizeof(float)));
    void* h_typed = dev.scratch(8, states * element);
    void* reset_hidden = dev.scratch(9, states * element);
    DS2RT_CUDA(cudaMemsetAsync(h_state, 0, states * sizeof(float), s));
    DS2RT_CUDA(cudaMemsetAsync(c_state, 0, states * sizeof(float), s));
    DS2RT_CUDA(cudaMemsetAsync(h_typed, 0, states * element, s));
    const bool plain_gru = desc_.cell == RNNCell::kGRU && !desc_.linear_before_reset;
    // Both directions in one strided-batched product: [dirs] (N x H) x (G*H x H)^T.
    const GemmShape product{.m = n, .n = plain_gru ? 2 * h : gh, .k = h, .lda = h, .ldb = h, .ldc = gh, .batch = dirs_,
                            .stride_a = n * h, .stride_b = gh * h, .stride_c = n * gh, .tune = true};
    const GemmShape candidate{.m = n, .n = h, .k = h, .lda = h, .ldb = h, .ldc = gh, .batch = dirs_,
                              .stride_a = n * h, .stride_b = gh * h, .stride_c = n * gh, .tune = true};
    const auto* r_n = static_cast<const char*>(w.recurrent.get()) + 2 * h * h * element;
    GemmRunner& products = n < kTf32StepBatch ? state.recurrent_exact : state.recurrent;
    for (int64_t step = 0; step < a.t; ++step) {
      products.run(dev, product, {h_typed, w.recurrent.get(), recurrent});
      if (plain_gru) {
        launchResetHidden(a, step, recurrent, h_state, reset_hidden, type_, s);
        products.run(dev, candidate, {reset_hidden, r_n, recurrent + 2 * h});
      }
      launchCellStep(a, step, recurrent, h_state, c_state, h_typed, type_, s);
    }
  }

  // With DS2RT_RNN_TRACE=1 (profiling only), block 0 of the persistent kernel sums its time per
  // phase (h wait, block sync, products, cell) and the totals are printed after each layer. The
  // tensor-core kernel splits its cell phase four ways: reading the partial sums, waiting for the
  // input projection (prefetched at the step's start), the cell, publishing h.
  static constexpr int kTracePhases = 7;
  unsigned long long* trace(CudaDeviceContext& dev, int layer) const {
    static const bool enabled = std::getenv("DS2RT_RNN_TRACE") != nullptr;
    if (!enabled) return nullptr;
    if (!persistentTraceCompiled()) {
      static const bool told = [] {
        std::fprintf(stderr, "DS2RT_RNN_TRACE: this build has no recurrent trace (configure with -DDS2RT_RNN_TRACE=ON)\n");
        return true;
      }();
      (void)told;
      return nullptr;
    }
    auto* t = static_cast<unsigned long long*>(dev.scratch(10 + layer, kTracePhases * sizeof(unsigned long long)));
    DS2RT_CUDA(cudaMemsetAsync(t, 0, kTracePhases * sizeof(unsigned long long), dev.stream()));
    return t;
  }
  // What a kernel's trace phases are; the cell phase's parts are printed where it times them
  // (phase 5 non-zero). The cluster kernel's phases add up over both halves of the batch.
  struct PhaseNames {
    const char* names[kTracePhases];
  };
  static constexpr PhaseNames kMmaPhases{{"wait for h", "block sync", "products", "sums", "x", "cell", "publish"}};
  static constexpr PhaseNames kClusterPhases{
      {"prefetch", "wait for h", "products", "x landed", "cells", "publish", "output"}};
  static void printTrace(CudaDeviceContext& dev, const unsigned long long* trace, int layer, int64_t steps,
                         const PhaseNames& phases = kMmaPhases) {
    unsigned long long ns[kTracePhases];
    DS2RT_CUDA(cudaMemcpyAsync(ns, trace, sizeof(ns), cudaMemcpyDeviceToHost, dev.stream()));
    DS2RT_CUDA(cudaStreamSynchronize(dev.stream()));
    const auto us = [&](int i) { return ns[i] / 1e3 / steps; };
    const char* const* name = phases.names;
    if (ns[5] == 0)
      std::fprintf(stderr, "rnn layer %d, us per step: %s %.2f, %s %.2f, %s %.2f, cell %.2f\n", layer, name[0], us(0),
                   name[1], us(1), name[2], us(2), us(3));
    else
      std::fprintf(stderr, "rnn layer %d, us per step: %s %.2f, %s %.2f, %s %.2f, cell %.2f (%s %.2f, %s %.2f, "
                   "%s %.2f, %s %.2f)\n", layer, name[0], us(0), name[1], us(1), name[2], us(2),
                   us(3) + us(4) + us(5) + us(6), name[3], us(3), name[4], us(4), name[5], us(5), name[6], us(6));
  }

  RNNDesc desc_;
  FloatMath math_;
  int dirs_, gates_;
  PersistentPlan plan_, wide_, cluster_;  // batches up to plan_.max_batch, then wide_'s, then cluster_'s
  int cluster_from_batch_ = kClusterFromBatch;  // batches from this size on that the wide kernel takes go to the cluster one
  size_t stacked_bytes_ = 0;    // > 0: a one-direction stack runs two layers per launch (shared memory of one)
  std::vector<LayerWeights> layers_;
  // The per-step products' algorithms, the same in every context (exact: tf32 engines' small batches).
  mutable GemmChoices step_choices_, exact_step_choices_;
};

}  // namespace

std::unique_ptr<Kernel> makeRNN(const RNNDesc& desc, DataType type, FloatMath math, const DeviceInfo& device) {
  return std::make_unique<RNNKernel>(desc, type, math, device);
}

}  // namespace ds2rt::detail::cuda
