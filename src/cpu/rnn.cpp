// Recurrent layers (vanilla, LSTM, GRU; forward, reverse, bidirectional) with exact
// per-utterance lengths, as PyTorch's packed sequences: the input projection is one GEMM per
// direction over many time steps; the recurrence runs step by step on the utterances still
// active, sorted by length so that they form a prefix of the batch. With the fused step the
// projection runs in chunks of time steps just ahead of the recurrence that reads them, so that
// its buffer does not grow with the batch and the utterance length.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <numeric>
#include <thread>

#include <dnnl.h>

#include "core/file.h"
#include "cpu/bf16.h"
#include "cpu/amx_gemm.h"
#include "cpu/kernels.h"
#include "cpu/rnn_cell.h"
#include "cpu/rnn_cell_general.h"
#include "cpu/rnn_step_matmul.h"
#include "ds2rt/error.h"

namespace ds2rt::detail::cpu {

namespace {

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Rows of input projection per chunk (time steps x batch): enough for oneDNN's GEMMs to run at
// full speed (measured per row, N 4096, K 1024: sgemm at 2048 rows within 3% of 4096 rows, at 1024
// 7% slower, at 512 30%; the bf16 matmul flat), while the chunk's buffer stays small: 2 x 2048 x
// 4096 floats (64 MiB) for a 1024-unit biLSTM, against 125 MiB for all of 8 x 10 s and 500 MiB for
// 32 x 10 s. Batch 1 up to 20 s is one chunk.
constexpr int64_t kChunkRows = 2048;

struct PreparedLayer {
  int64_t input_size = 0;
  std::vector<HostTensor> input_weights;  // per direction G*H x I (the network's own, not copied); fp32 GEMMs
  std::vector<float> input_bias;  // dirs*G*H, with the recurrent biases that can be folded in
  std::vector<HostTensor> recurrent;  // per direction G*H x H
  std::vector<std::vector<float>> hidden_bias;  // per direction H: GRU b_hn kept inside r * (...)
  std::vector<PackedRecurrent> packed;  // per direction, for the fused step (empty without it)
  // int8: the stacked input weights quantised per row, and the recurrent matrices
  std::vector<int8_t> input_weights_int8;
  std::vector<float> input_scale;
  std::vector<PackedRecurrentInt8> packed_int8;
  // bf16: the recurrent matrices, and per direction the input weights where the bf16 matmul is faster
  std::vector<BF16Matmul> input_bf16;
  // fp32 on AMX: per direction the input weights as bf16 parts (amx_gemm.h)
  std::vector<BF16x3Gemm> input_x3;
  std::vector<PackedRecurrentBF16> packed_bf16;
  // int8/bf16 on AMX: per direction, the step for many utterances (rnn_step_matmul.h)
  std::vector<MatmulRecurrent> step_matmul;
  // fp32 and bf16 on AMX (tileStep()): per direction, W_h for the own tile kernel (fp32: its bf16
  // parts), made by the first step that has the rows for it: as many bytes again as the fused step's
  // packed W_h, which engines that never see 16 utterances at once need not hold (gru_bi 1024 x 5
  // fp32: 126 MB).
  struct SplitStep {
    std::once_flag made;
    MatmulRecurrent step;
  };
  std::vector<std::unique_ptr<SplitStep>> split_step;
};

// Threads of one direction meet here after every time step (h must be whole before the next).
// Spins (with pause), yielding only after several milliseconds.
class StepBarrier {
 public:
  void arrive(int members) {
    if (members <= 1) return;
    const int generation = generation_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == members) {
      count_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    // A step's work is ~0.1-1 ms and the partner is normally a few microseconds behind: yielding
    // early hands the core to another process for a whole time slice (measured: 3 ms a step).
    for (int spin = 0; generation_.load(std::memory_order_acquire) == generation; ++spin) {
      _mm_pause();
      if (spin > (1 << 16)) std::this_thread::yield();
    }
  }

 private:
  alignas(64) std::atomic<int> count_{0};
  alignas(64) std::atomic<int> generation_{0};
};

struct DirectionState {
  std::vector<float> h[2], c;
};

struct RNNScratch final : KernelState {
  // In the context's shared scratch (contextScratch), set at the start of every run: the big
  // buffers exist once per context, not once per recurrent layer.
  float* projection = nullptr;  // fused: dirs x chunk rows x G*H; general path: T*N x dirs*G*H
  float* gathered = nullptr;  // fused: a chunk's input rows of the reverse direction (mixed lengths)
  float* reverse_out = nullptr;  // T*N x H: the second direction's output when the two are summed
  float* layer_in = nullptr;  // T*N x dirs*H, between the layers of one kernel
  float* layer_out = nullptr;
  uint8_t* input_quantized = nullptr;  // int8: a chunk's input rows
  float* input_scale = nullptr;  // int8: their row scales
  void* matmul_workspace = nullptr;  // bf16: BF16Matmul::run's
  DirectionState direction[2];
  std::vector<const float*> x_rows;  // per thread: n row pointers
  std::vector<float*> y_rows;
  std::vector<uint8_t> h_quantized;  // int8: per thread h
  std::vector<float> h_scale;
  std::vector<BF16Matmul::State> projection_bf16;  // bf16: per layer and direction
  std::vector<uint16_t> h_bf16;                     // bf16: per thread h
  std::vector<float> h_interleaved;                 // fp32: per thread h regrouped for the fused step
  std::vector<MatmulRecurrent::State> step_matmul;  // int8/bf16 on AMX: per thread
  StepBarrier barrier[2];
  // Splitting one direction's units over threads needs them on cores together at every step; on
  // an oversubscribed machine they are not, and the barrier costs more than the work. Measured per
  // layer: when thread 0 waited longer than it worked, the next layers of this context run the
  // direction on one thread, trying the split again every kSplitRetry layers.
  static constexpr int kSplitRetry = 50;
  bool split_units = true;
  int split_retry_in = 0;
  double split_wait_s = 0, split_work_s = 0;
};

class RNNKernel final : public Kernel {
 public:
  RNNKernel(const RNNDesc& d, Precision precision, bool state_inputs)
      : desc_(d), dirs_(d.directions()), gates_(gateCount(d.cell)), int8_(precision == Precision::kInt8),
        bf16_(precision == Precision::kBF16), extras_(d.hasExtras() || state_inputs),
        bf16_matmul_((bf16_ && bf16MatmulFaster()) || (int8_ && haveAmx())),
        amx_bf16_projection_(bf16_matmul_ && amxTilesUsable()),
        x3_(!int8_ && !bf16_ && gates_ > 1 && useBF16x3Gemm()) {
    check(!(int8_ || bf16_) || !extras_, toString(precision), " recurrent layers take the plain cells only (no clip, ",
          "other gate functions, peepholes, initial states or cell-state output); build this model in fp32");
    check(!(int8_ || bf16_) || fused(), toString(precision), " recurrent layers need AVX-512 and, for GRU, ",
          "linear-before-reset (PyTorch) semantics; build this model in fp32");
    for (int dir = 0; dir < dirs_; ++dir) cells_.emplace_back(d, dir);
    const int64_t h = d.hidden_size, gh = gates_ * h;
    for (int l = 0; l < d.num_layers; ++l) {
      PreparedLayer p;
      p.input_size = d.weights[l * dirs_].input_weight.dim(1);
      p.input_bias.assign(dirs_ * gh, 0.0f);
      for (int dir = 0; dir < dirs_; ++dir) {
        const auto& w = d.weights[l * dirs_ + dir];
        p.input_weights.push_back(w.input_weight);
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
        if (!fused()) p.recurrent.push_back(w.recurrent_weight);
        const float* recurrent = w.recurrent_weight.data<float>();
        if (int8_) {
          // Quantised once: the fused step packs these rows, the AMX step reorders the same ones.
          std::vector<int8_t> q(gh * h);
          std::vector<float> row_scale(gh);
          quantizeRows(recurrent, gh, h, q.data(), row_scale.data());
          if (matmulStep()) p.step_matmul.emplace_back(q.data(), gates_, h, amxInt8Usable());
          p.packed_int8.push_back(packRecurrentInt8(q.data(), row_scale.data(), gates_, h));
        } else if (bf16_) {
          if (tileStep()) p.split_step.push_back(std::make_unique<PreparedLayer::SplitStep>());
          else if (matmulStep()) p.step_matmul.emplace_back(recurrent, gates_, h);
          p.packed_bf16.push_back(packRecurrentBF16(recurrent, gates_, h));
        } else if (fused()) {
          if (tileStep()) p.split_step.push_back(std::make_unique<PreparedLayer::SplitStep>());
          p.packed.push_back(packRecurrent(recurrent, gates_, h));
        }
        // The packed copy is all the step reads: a plan's mapped original stops taking memory
        // (it reads back from the file if the plan is saved again).
        if (fused()) releaseMappedPages(w.recurrent_weight.data(), w.recurrent_weight.bytes());
        p.hidden_bias.push_back(std::move(hidden_bias));
      }
      if (int8_ && !bf16_matmul_) {
        p.input_weights_int8.resize(dirs_ * gh * p.input_size);
        p.input_scale.resize(dirs_ * gh);
        for (int dir = 0; dir < dirs_; ++dir)
          quantizeRows(p.input_weights[dir].data<float>(), gh, p.input_size,
                       p.input_weights_int8.data() + dir * gh * p.input_size, p.input_scale.data() + dir * gh);
        for (const HostTensor& w : p.input_weights) releaseMappedPages(w.data(), w.bytes());
        p.input_weights.clear();
      }
      const bool x3_projection = x3_ && p.input_size >= kTileMinDepth;  // else fp32 keeps sgemm
      if (bf16_matmul_ || x3_projection) {
        for (const HostTensor& w : p.input_weights) {
          if (x3_projection || amx_bf16_projection_)
            p.input_x3.emplace_back(w.data<float>(), gh, p.input_size, x3_projection);
          else p.input_bf16.emplace_back(w.data<float>(), gh, p.input_size);
          releaseMappedPages(w.data(), w.bytes());
        }
        p.input_weights.clear();
      }
      if (!p.input_weights.empty() || !fused()) prepareGemm();  // fp32 projections or per-step GEMMs
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

    const InitialStates initial = initialStates(io, n);
    const int64_t gh = gates_ * h, width = dirs_ * gh;
    const int64_t steps = n > 0 ? *std::max_element(lengths.begin(), lengths.end()) : 0;
    const int64_t chunk = chunkSteps(n), chunk_rows = std::min(steps, chunk) * n;
    if (bf16_matmul_) s.projection_bf16.resize(static_cast<size_t>(desc_.num_layers) * dirs_);
    {
      ScratchLayout layout;
      int64_t widest_input = 0;
      for (const PreparedLayer& p : layers_) widest_input = std::max(widest_input, p.input_size);
      const size_t projection = layout.add<float>(fused() ? dirs_ * chunk_rows * gh : t * n * width);
      // The reverse direction gathers its rows where lengths differ (see recurFused).
      const bool reverse = dirs_ == 2 || desc_.direction == RNNDirection::kReverse;
      const bool equal_lengths = std::all_of(lengths.begin(), lengths.end(), [&](int64_t l) { return l == steps; });
      const size_t gathered = layout.add<float>(fused() && reverse && !equal_lengths ? chunk_rows * widest_input : 0);
      const size_t reverse_out = layout.add<float>(dirs_ == 2 && desc_.merge == DirectionMerge::kSum ? t * n * h : 0);
      // Between layers: the kernel's output and one buffer in turn where the output is as wide as a
      // layer's (the last layer lands in the output), else two buffers.
      const int64_t between = desc_.num_layers > 1 ? t * n * dirs_ * h : 0;
      const size_t layer_in = layout.add<float>(between), layer_out = layout.add<float>(outputBetweenLayers() ? 0 : between);
      const bool int8_projection = int8_ && !bf16_matmul_;
      const size_t quantized = layout.add<uint8_t>(int8_projection ? chunk_rows * widest_input : 0);
      const size_t scales = layout.add<float>(int8_projection ? chunk_rows : 0);
      size_t matmul_bytes = 0;
      for (int l = 0; l < desc_.num_layers; ++l)  // oneDNN's: the chunks' row counts, full ones and the last
        for (size_t dir = 0; dir < layers_[l].input_bf16.size(); ++dir)
          for (const int64_t rows : {chunk_rows, steps > 0 ? (steps - (steps - 1) / chunk * chunk) * n : 0})
              matmul_bytes = std::max(matmul_bytes, layers_[l].input_bf16[dir].workspaceBytes(
                                                        s.projection_bf16[l * dirs_ + dir], rows));
      for (const PreparedLayer& p : layers_)
        for (const BF16x3Gemm& gemm : p.input_x3)
          matmul_bytes = std::max(matmul_bytes, gemm.workspaceBytes(fused() ? chunk_rows : t * n));
      const size_t matmul = layout.add<uint8_t>(static_cast<int64_t>(matmul_bytes));
      void* block = contextScratch(*io.device, layout.bytes());
      s.projection = ScratchLayout::at<float>(block, projection);
      s.gathered = ScratchLayout::at<float>(block, gathered);
      s.reverse_out = ScratchLayout::at<float>(block, reverse_out);
      s.layer_in = ScratchLayout::at<float>(block, layer_in);
      s.layer_out = ScratchLayout::at<float>(block, layer_out);
      s.input_quantized = ScratchLayout::at<uint8_t>(block, quantized);
      s.input_scale = ScratchLayout::at<float>(block, scales);
      s.matmul_workspace = ScratchLayout::at<uint8_t>(block, matmul);
    }
    const float* input = io.in<float>();
    for (int l = 0; l < desc_.num_layers; ++l) {
      const bool last = l + 1 == desc_.num_layers;
      const bool sum = last && dirs_ == 2 && desc_.merge == DirectionMerge::kSum;
      const int64_t out_width = sum ? h : dirs_ * h;
      float* out = last ? io.out<float>() : s.layer_out;
      if (!last && outputBetweenLayers()) out = (desc_.num_layers - 1 - l) % 2 == 0 ? io.out<float>() : s.layer_in;
      const PreparedLayer& p = layers_[l];
      if (fused()) {
        recurFused(s, p, l, input, order, lengths, t, n, out, out_width, sum);
      } else {
        for (int dir = 0; dir < dirs_; ++dir)  // into the direction's columns of one buffer
          projectGemm(s, p, dir, input, t * n, s.projection + dir * gh, width);
        std::fill_n(out, t * n * out_width, 0.0f);
#pragma omp parallel for
        for (int64_t r = 0; r < t * n; ++r)
          for (int64_t i = 0; i < width; ++i) s.projection[r * width + i] += p.input_bias[i];
        for (int dir = 0; dir < dirs_; ++dir) {
          const bool reverse = desc_.direction == RNNDirection::kReverse || dir == 1;
          const int64_t column = sum ? 0 : dir * h;
          recur(s, p, l, dir, reverse, order, lengths, n, out, out_width, column, sum && dir == 1, initial);
        }
      }
      if (last) continue;
      if (outputBetweenLayers()) {
        input = out;
      } else {
        std::swap(s.layer_out, s.layer_in);  // the next layer reads it while writing layer_out
        input = s.layer_in;
      }
    }
  }

  std::string implementation() const override {
    const std::string many =
        (bf16_ && tileStep()) || (int8_ && matmulStep() && amxInt8Usable())
            ? cat("; from ", MatmulRecurrent::minRowsTiles(1),
                  " utterances on, a direction's step products on AMX tiles")
        : matmulStep()      ? cat("; from ", MatmulRecurrent::minRows(int8_, 1),
                                  " utterances on, a direction's step is one oneDNN AMX matmul")
                            : "";
    if (int8_)
      return cat(amx_bf16_projection_ ? "int8: bf16 input projection on AMX tiles (more accurate than u8s8s32)"
                 : bf16_matmul_ ? "int8: oneDNN bf16 matmul input projection (AMX: as fast as u8s8s32, more accurate)"
                                : "int8: oneDNN u8s8s32 input projection",
                 " + VNNI recurrent step with the gate math in registers", many);
    if (bf16_)
      return cat("bf16: ",
                 amx_bf16_projection_ ? "bf16 input projection on AMX tiles"
                 : bf16_matmul_       ? "oneDNN bf16 matmul input projection"
                                      : "oneDNN sgemm input projection (fp32: faster than the bf16 matmul on this CPU)",
                 " + AVX512_BF16 recurrent step, fp32 sums, state and gate math in registers", many);
    const std::string projection =
        x3_ && std::any_of(layers_.begin(), layers_.end(), [](const PreparedLayer& p) { return !p.input_x3.empty(); })
            ? "fp32 input projection as three bf16 products on AMX tiles"
            : "oneDNN sgemm input projection";
    if (extras_)
      return projection + " + own recurrent loop (general cell: clip, gate functions, peepholes, initial states)";
    if (!fused()) return projection + " + own recurrent loop";
    return projection + " + AVX-512 recurrent step with the gate math in registers" +
           (x3_ && tileStep() ? cat("; from ", MatmulRecurrent::minRowsTiles(1),
                      " utterances on, a direction's step products are three bf16 products on AMX tiles")
                : "");
  }

 private:
  // Time steps per chunk of the fused path's input projection.
  static int64_t chunkSteps(int64_t n) { return std::max<int64_t>(1, kChunkRows / std::max<int64_t>(n, 1)); }

  // The input projection of `rows` rows of x (row stride I) through direction dir's weights, into
  // out (rows x G*H), in the layer's precision. int8: the rows quantised (u8, zero point 128, one
  // scale per row), one u8 x s8 GEMM into int32 written over `out`, then scaled back in place.
  void project(RNNScratch& s, const PreparedLayer& p, int layer, int dir, const float* x, int64_t rows,
               float* out) const {
    const int64_t k = p.input_size, gh = gates_ * desc_.hidden_size;
    if (rows == 0) return;
    if (!p.input_bf16.empty()) {
      p.input_bf16[dir].run(s.projection_bf16[layer * dirs_ + dir], x, rows, out, s.matmul_workspace);
      return;
    }
    if (p.input_weights_int8.empty()) return projectGemm(s, p, dir, x, rows, out, gh);
    quantizeActivations(x, rows, k, k, s.input_quantized, k, s.input_scale);
    static_assert(sizeof(int32_t) == sizeof(float));
    auto* c = reinterpret_cast<int32_t*>(out);
    const int32_t zero = 0;
    const dnnl_status_t status = dnnl_gemm_u8s8s32('N', 'T', 'F', rows, gh, k, 1.0f, s.input_quantized, k, 128,
                                                   p.input_weights_int8.data() + dir * gh * k, k, 0, 0.0f, c, gh, &zero);
    check(status == dnnl_success, "oneDNN u8s8s32 GEMM failed with status ", static_cast<int>(status));
    const float* column_scale = p.input_scale.data() + dir * gh;
#pragma omp parallel for if (rows * gh > kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r) {
      const float row_scale = s.input_scale[r];
      for (int64_t o = 0; o < gh; ++o) out[r * gh + o] = static_cast<float>(c[r * gh + o]) * (row_scale * column_scale[o]);
    }
  }

  // The input projection of `rows` rows of x into out (row stride ldo) on AMX tiles (fp32: three bf16
  // products; int8 and bf16 engines: one; amx_gemm.h), else oneDNN's sgemm.
  void projectGemm(RNNScratch& s, const PreparedLayer& p, int dir, const float* x, int64_t rows, float* out,
                   int64_t ldo) const {
    const int64_t k = p.input_size;
    if (!p.input_x3.empty()) return p.input_x3[dir].run(x, k, rows, out, ldo, s.matmul_workspace);
    gemmABt(rows, gates_ * desc_.hidden_size, k, x, k, p.input_weights[dir].data<float>(), k, out, ldo);
  }

  // Whether layers of this kernel but the last can write into its output (stacked one-direction
  // layers, ONNX's concatenated bidirectional stacks): not where the last sums the directions.
  bool outputBetweenLayers() const { return !(dirs_ == 2 && desc_.merge == DirectionMerge::kSum); }

  bool matmulStep() const { return (int8_ || bf16_) && haveAmx(); }
  // The step of many utterances on the own AMX kernel (rnn_step_matmul.h): fp32 through the bf16 parts, bf16.
  bool tileStep() const { return desc_.hidden_size >= kTileMinDepth && (x3_ || (bf16_ && amxTilesUsable())); }

  bool fused() const {
    return haveAvx512() && !extras_ && !(desc_.cell == RNNCell::kGRU && !desc_.linear_before_reset);
  }

  // Initial states, (layers * directions) x B x H each: the run-time inputs, else the constants;
  // null: zeros. B is the batch, or 1 for one state shared by every utterance.
  struct InitialStates {
    const float* h = nullptr;
    const float* c = nullptr;
    int64_t h_batch = 0, c_batch = 0;
  };
  InitialStates initialStates(const KernelIO& io, int64_t n) const {
    InitialStates st;
    const int64_t states = static_cast<int64_t>(desc_.num_layers) * dirs_;
    const auto take = [&](size_t k, const HostTensor& constant, const char* what, const float*& p, int64_t& batch) {
      if (k < io.extra_inputs.size()) {
        const Shape& shape = io.extra_shapes[k];
        check(shape.size() == 3 && shape[0] == states && shape[1] == n && shape[2] == desc_.hidden_size, "the ", what,
              " input must be ", states, " x ", n, " x ", desc_.hidden_size, " (layers x directions, batch, hidden), it is ",
              toString(shape));
        p = static_cast<const float*>(io.extra_inputs[k]);
        batch = n;
      } else if (!constant.empty()) {
        check(constant.dim(1) == 1 || constant.dim(1) == n, "the constant ", what, " was made for a batch of ",
              constant.dim(1), "; this batch has ", n, " utterances");
        p = constant.data<float>();
        batch = constant.dim(1);
      }
    };
    take(0, desc_.initial_h, "initial_h", st.h, st.h_batch);
    take(1, desc_.initial_c, "initial_c", st.c, st.c_batch);
    return st;
  }

  // The input projection chunk by chunk of time steps, each followed by the recurrence over its
  // steps. Both directions at once when there are threads for both (each direction on its own
  // threads, no synchronisation between them); the threads of one direction split its units and
  // meet once per step. Frames past an utterance's length come out as zeros.
  void recurFused(RNNScratch& s, const PreparedLayer& p, int layer, const float* input,
                  const std::vector<int64_t>& order, const std::vector<int64_t>& lengths, int64_t t, int64_t n,
                  float* out, int64_t out_width, bool sum) const {
    const int64_t h = desc_.hidden_size, gh = gates_ * h, in = p.input_size;
    const int64_t blocks = int8_ ? p.packed_int8[0].blocks : bf16_ ? p.packed_bf16[0].blocks : p.packed[0].blocks;
    const int64_t depth = int8_ ? p.packed_int8[0].depth : bf16_ ? p.packed_bf16[0].depth : 0;
    const int threads = std::max(1, omp_get_max_threads());
    const bool together = dirs_ == 2 && threads >= 2;
    if (!together && !s.split_units && --s.split_retry_in <= 0) s.split_units = true;
    const bool split = !together && threads >= 2 && s.split_units;
    const int team = together ? threads / 2 * 2 : split ? threads : 1;
    for (int dir = 0; dir < dirs_; ++dir) {
      DirectionState& d = s.direction[dir];
      for (auto& buffer : d.h) buffer.assign(n * h, 0.0f);
      if (desc_.cell == RNNCell::kLSTM) d.c.assign(n * h, 0.0f);
    }
    s.x_rows.resize(static_cast<size_t>(team) * n);
    s.y_rows.resize(static_cast<size_t>(team) * n);
    if (int8_) {
      s.h_quantized.resize(static_cast<size_t>(team) * n * depth);
      s.h_scale.resize(static_cast<size_t>(team) * n);
    }
    if (bf16_) s.h_bf16.resize(static_cast<size_t>(team) * n * depth);
    if (!int8_ && !bf16_) s.h_interleaved.resize(static_cast<size_t>(team) * n * h);
    if (!p.step_matmul.empty() || !p.split_step.empty()) s.step_matmul.resize(team);
    const int64_t steps = n > 0 ? lengths[order[0]] : 0, chunk = chunkSteps(n);
    const int64_t direction_part = std::min(steps, chunk) * n * gh;  // of the chunk buffer, as run() laid it out
    // Equal lengths: a reverse chunk's frames are contiguous rows of the input (in reverse order).
    const bool equal_lengths = std::all_of(lengths.begin(), lengths.end(), [&](int64_t l) { return l == steps; });
    s.split_wait_s = s.split_work_s = 0;

    for (int64_t k0 = 0; k0 < steps; k0 += chunk) {
      const int64_t k1 = std::min(steps, k0 + chunk), rows = (k1 - k0) * n;
      // Projection row of (step k, utterance b) in a direction's part of the chunk buffer.
      const auto row = [&](bool reverse, int64_t k, int64_t b) {
        return (reverse && equal_lengths ? k1 - 1 - k : k - k0) * n + b;
      };
      for (int dir = 0; dir < dirs_; ++dir) {
        const bool reverse = desc_.direction == RNNDirection::kReverse || dir == 1;
        float* projection = s.projection + dir * direction_part;
        if (!reverse) {
          project(s, p, layer, dir, input + k0 * n * in, rows, projection);
        } else if (equal_lengths) {
          project(s, p, layer, dir, input + (steps - k1) * n * in, rows, projection);
        } else {  // step k of utterance b reads frame lengths[b] - 1 - k: gather the rows
          for (int64_t k = k0; k < k1; ++k)
            for (int64_t b = 0; b < n; ++b) {  // utterances already done: any finite row (unread)
              const int64_t frame = std::max<int64_t>(lengths[b] - 1 - k, 0);
              std::copy_n(input + (frame * n + b) * in, in, s.gathered + row(true, k, b) * in);
            }
          project(s, p, layer, dir, s.gathered, rows, projection);
        }
      }

#pragma omp parallel num_threads(team)
      {
        const int tid = omp_get_thread_num();
        const int members = together ? team / 2 : team;
        const int rank = together ? tid % members : tid;
        const int first_dir = together ? tid / members : 0, last_dir = together ? first_dir + 1 : dirs_;
        const int64_t block_begin = blocks * rank / members, block_end = blocks * (rank + 1) / members;
        const float** x_rows = s.x_rows.data() + static_cast<size_t>(tid) * n;
        float** y_rows = s.y_rows.data() + static_cast<size_t>(tid) * n;
        for (int dir = first_dir; dir < last_dir; ++dir) {
          DirectionState& d = s.direction[dir];
          const bool reverse = desc_.direction == RNNDirection::kReverse || dir == 1;
          const float* projection = s.projection + dir * direction_part;
          float* target = sum && dir == 1 ? s.reverse_out : out;
          const int64_t target_width = sum && dir == 1 ? h : out_width, column = sum ? 0 : dir * h;
          StepArgs a;
          a.cell = desc_.cell;
          a.hidden = h;
          a.c = d.c.data();
          a.x = x_rows;
          a.y = y_rows;
          a.bias = p.input_bias.data() + dir * gh;
          a.hidden_bias = p.hidden_bias[dir].data();
          a.block_begin = block_begin;
          a.block_end = block_end;
          if (int8_) {
            a.h_quantized = s.h_quantized.data() + static_cast<size_t>(tid) * n * depth;
            a.h_scale = s.h_scale.data() + static_cast<size_t>(tid) * n;
          }
          if (bf16_) a.h_bf16 = s.h_bf16.data() + static_cast<size_t>(tid) * n * depth;
          if (!int8_ && !bf16_) a.h_interleaved = s.h_interleaved.data() + static_cast<size_t>(tid) * n * h;
          int64_t active = n;
          using Clock = std::chrono::steady_clock;
          Clock::duration waited{}, worked{};
          Clock::time_point mark = Clock::now();
          for (int64_t k = k0; k < k1; ++k) {
            while (active > 0 && lengths[order[active - 1]] <= k) --active;
            for (int64_t j = 0; j < active; ++j) {
              const int64_t b = order[j], step = reverse ? lengths[b] - 1 - k : k;
              x_rows[j] = projection + row(reverse, k, b) * gh;
              y_rows[j] = target + (step * n + b) * target_width + column;
            }
            a.rows = active;
            a.h_prev = d.h[k % 2].data();
            a.h_next = d.h[(k + 1) % 2].data();
            const auto fused_step = [&](const StepArgs& args) {
              if (int8_) recurrentStepInt8(p.packed_int8[dir], args);
              else if (bf16_) recurrentStepBF16(p.packed_bf16[dir], args);
              else recurrentStep(p.packed[dir], args);
            };
            if (!p.split_step.empty() && a.rows >= MatmulRecurrent::minRowsTiles(members)) {  // each thread its units
              PreparedLayer::SplitStep& split_step = *p.split_step[dir];
              std::call_once(split_step.made, [&] {
                const HostTensor& w = desc_.weights[layer * dirs_ + dir].recurrent_weight;
                using Kernel = MatmulRecurrent::Kernel;
                split_step.step =
                    MatmulRecurrent(w.data<float>(), gates_, h, x3_ ? Kernel::kTilesBF16x3 : Kernel::kTilesBF16);
                releaseMappedPages(w.data(), w.bytes());
              });
              split_step.step.step(s.step_matmul[tid], a, nullptr);
            } else if (!p.step_matmul.empty() && p.step_matmul[dir].onTiles() &&
                       a.rows >= MatmulRecurrent::minRowsTiles(members)) {  // int8 on tiles: each thread its units
              p.step_matmul[dir].step(s.step_matmul[tid], a, &p.packed_int8[dir]);
            } else if (!p.step_matmul.empty() && a.rows >= MatmulRecurrent::minRows(int8_, members)) {
              // The direction's first thread takes all of its units: one AMX matmul beats any split
              // of the fused step (the others meet it at the barrier). Without a primitive for
              // this row count, that thread runs the fused step over every unit instead.
              StepArgs whole = a;
              whole.block_begin = 0;
              whole.block_end = blocks;
              const PackedRecurrentInt8* scales = int8_ ? &p.packed_int8[dir] : nullptr;
              if (rank == 0 && !p.step_matmul[dir].step(s.step_matmul[tid], whole, scales)) fused_step(whole);
            } else {
              fused_step(a);
            }
            if (split && tid == 0) {
              const Clock::time_point done = Clock::now();
              s.barrier[0].arrive(members);
              const Clock::time_point met = Clock::now();
              worked += done - mark;
              waited += met - done;
              mark = met;
            } else {
              s.barrier[together ? dir : 0].arrive(members);
            }
          }
          if (split && tid == 0) {
            s.split_wait_s += std::chrono::duration<double>(waited).count();
            s.split_work_s += std::chrono::duration<double>(worked).count();
          }
        }
      }
    }

    if (split && s.split_wait_s > s.split_work_s) {
      s.split_units = false;
      s.split_retry_in = RNNScratch::kSplitRetry;
    }

    // Padded frames, and the sum of the directions where they are merged.
#pragma omp parallel for if (sum && t * n * h > kParallelMinElements)
    for (int64_t step = 0; step < t; ++step)
      for (int64_t b = 0; b < n; ++b) {
        float* y = out + (step * n + b) * out_width;
        if (step >= lengths[b]) {
          std::fill_n(y, out_width, 0.0f);
        } else if (sum) {
          const float* other = s.reverse_out + (step * n + b) * h;
          for (int64_t i = 0; i < h; ++i) y[i] += other[i];
        }
      }
  }

  void recur(RNNScratch& s, const PreparedLayer& p, int layer, int dir, bool reverse, const std::vector<int64_t>& order,
             const std::vector<int64_t>& lengths, int64_t n, float* out, int64_t out_width,
             int64_t column, bool accumulate, const InitialStates& initial) const {
    const int64_t h = desc_.hidden_size, gh = gates_ * h, width = dirs_ * gh;
    const float* recurrent = p.recurrent[dir].data<float>();
    const float* b_hn = p.hidden_bias[dir].data();
    const GeneralCell& general = cells_[dir];
    const RNNGateWeights& w = desc_.weights[layer * dirs_ + dir];
    const float* peephole = w.peephole.empty() ? nullptr : w.peephole.data<float>();
    const bool cell_out = desc_.output == RNNOutput::kCellState && layer + 1 == desc_.num_layers;
    std::vector<float> h_state(n * h, 0.0f), c_state(n * h, 0.0f), gates(n * gh), candidate(n * h);
    // State rows follow the length order, as the active prefix does.
    const auto load = [&](const float* from, int64_t batch, std::vector<float>& to) {
      if (!from) return;
      const float* base = from + (layer * dirs_ + dir) * batch * h;
      for (int64_t j = 0; j < n; ++j) std::copy_n(base + (batch == 1 ? 0 : order[j]) * h, h, to.data() + j * h);
    };
    load(initial.h, initial.h_batch, h_state);
    load(initial.c, initial.c_batch, c_state);
    const int64_t steps = lengths[order[0]];
    int64_t active = n;
    for (int64_t k = 0; k < steps; ++k) {
      while (active > 0 && lengths[order[active - 1]] <= k) --active;
      const bool gru_plain = desc_.cell == RNNCell::kGRU && !desc_.linear_before_reset;
      // Recurrent contribution of the active prefix (rows are utterances in length order).
      gemmABt(active, gru_plain ? 2 * h : gh, h, h_state.data(), h, recurrent, h, gates.data(), gh);
      if (gru_plain) {
        for (int64_t j = 0; j < active; ++j) {
          const float* x = s.projection + ((reverse ? lengths[order[j]] - 1 - k : k) * n + order[j]) * width + dir * gh;
          for (int64_t i = 0; i < h; ++i)
            candidate[j * h + i] = (extras_ ? general.gate(x[i] + gates[j * gh + i]) : sigmoid(x[i] + gates[j * gh + i])) *
                                   h_state[j * h + i];
        }
        gemmABt(active, h, h, candidate.data(), h, recurrent + 2 * h * h, h, gates.data() + 2 * h, gh);
      }
      for (int64_t j = 0; j < active; ++j) {
        const int64_t b = order[j];
        const int64_t step = reverse ? lengths[b] - 1 - k : k;
        const float* x = s.projection + (step * n + b) * width + dir * gh;
        const float* g = gates.data() + j * gh;
        float* hs = h_state.data() + j * h;
        float* cs = c_state.data() + j * h;
        if (extras_) {
          if (desc_.cell == RNNCell::kLSTM) general.lstm(x, g, peephole, hs, cs);
          else if (desc_.cell == RNNCell::kGRU) general.gru(x, g, b_hn, !gru_plain, hs);
          else general.vanilla(x, g, hs);
        } else switch (desc_.cell) {
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
        const float* result = cell_out ? cs : hs;
        if (accumulate)
          for (int64_t i = 0; i < h; ++i) y[i] += result[i];
        else
          std::copy_n(result, h, y);
      }
    }
  }

  RNNDesc desc_;
  int dirs_;
  int gates_;
  bool int8_, bf16_;
  bool extras_;  // anything beyond the plain cell: the general path (recur with GeneralCell)
  // Input projections by oneDNN's bf16 matmul: bf16 engines where bf16MatmulFaster(); int8 engines on
  // AMX, where it runs on the tiles while oneDNN 2.6's u8s8s32 GEMM does not (measured as fast or faster,
  // lstm_bi 1 and 32 x 10 s), and where the per-row int8 input weights gave most of an int8 engine's
  // output error (a 5 x 256 biGRU: rel L2 1.6-2.1e-2, 0.7e-2 with bf16 projections).
  bool bf16_matmul_;
  bool amx_bf16_projection_;  // of those, the ones on AMX run as BF16x3Gemm without the split (faster)
  // fp32 engines on AMX: input projections through BF16x3Gemm. LSTM and GRU only: a vanilla RNN
  // can amplify its inputs' error over many steps (a 1000-step tanh RNN with random weights: 1.5e-4
  // relative L2 from the bf16 parts' ~5e-6, 1e-5 from sgemm's), the gated cells' measured 1-2e-5.
  bool x3_;
  std::vector<GeneralCell> cells_;  // per direction
  std::vector<PreparedLayer> layers_;
};

}  // namespace

std::unique_ptr<Kernel> makeRNN(const RNNDesc& desc, Precision precision, bool state_inputs) {
  return std::make_unique<RNNKernel>(desc, precision, state_inputs);
}

bool haveInt8() { return haveAvx512() && haveVnni(); }

}  // namespace ds2rt::detail::cpu
