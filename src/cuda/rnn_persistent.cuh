// Pieces shared by the two persistent recurrent kernels (CUDA cores for fp32, tensor cores for
// fp16/bf16): arguments, the step-tagged h exchange, and the phase trace.
#pragma once

#include <type_traits>

#include "cuda/rnn.cuh"

namespace ds2rt::detail::cuda::persistent {

constexpr int kThreads = 256;
constexpr int kMaxBatch = 8;  // utterances the exchange buffer holds
// Utterances the wide-batch kernel takes. Above 32 the per-step path is faster on an H100: at 64 x
// 1024 every block reads 128 KB of h per step, as much L2 traffic as the per-step product's
// reading of R, plus the arrival barrier (bench/RESULTS.md).
constexpr int kMaxWideBatch = 32;

struct PersistentArgs {
  RecurrenceArgs r;
  const void* weights;
  // 2 x dirs x kMaxBatch x H words (value, step): h after step k is tagged k + 1 and lives in
  // buffer (k + 1) % 2. Zeroed before each launch: the initial h is 0, tagged 0. The tensor-core
  // kernel packs two units' h, in its 16-bit type, into a word with the step: H / 2 words an
  // utterance (halving the words every block polls each step).
  unsigned long long* exchange;
  int units, blocks_per_direction;
  unsigned long long* trace;  // optional: block 0's time per phase (ns), see DS2RT_RNN_TRACE
  int resident_rows = 0;      // CUDA-core kernel: see PersistentPlan
};

__device__ __forceinline__ unsigned long long nowNs() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ unsigned long long loadRelaxed(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.relaxed.gpu.global.b64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void storeRelaxed(unsigned long long* p, unsigned long long v) {
  asm volatile("st.relaxed.gpu.global.b64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

__device__ __forceinline__ unsigned loadAcquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Counts one more publication; a release at GPU scope (the block's h stores, seen by this thread
// through the preceding __syncthreads, become visible to any block that acquires the count).
__device__ __forceinline__ void releaseAdd(unsigned* p) {
  asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(p) : "memory");
}

__device__ __forceinline__ unsigned long long tagged(float value, unsigned step) {
  return (static_cast<unsigned long long>(step) << 32) | __float_as_uint(value);
}
__device__ __forceinline__ unsigned long long tagged(unsigned low, unsigned high, unsigned step) {
  return (static_cast<unsigned long long>(step) << 32) | (high << 16) | low;
}
__device__ __forceinline__ unsigned bitsOf(__half x) { return __half_as_ushort(x); }
__device__ __forceinline__ unsigned bitsOf(__nv_bfloat16 x) { return __bfloat16_as_ushort(x); }

// Where the words tagged `tag` (h after step tag - 1) of direction `dir` live in PersistentArgs::
// exchange: `words` per utterance (H, or H / 2 when packed two units to a word), kMaxBatch utterances.
__device__ __forceinline__ unsigned long long* exchangeBuffer(unsigned long long* exchange, int tag, int dirs, int dir,
                                                              int64_t words) {
  return exchange + ((tag % 2) * dirs + dir) * kMaxBatch * words;
}

// A stack of one-direction layers runs two layers per launch (rnn_persistent_mma.cu): the grid's
// first half runs layer l, its second half layer l + 1, a few steps behind. Each half multiplies
// every h it gathers by the input weights of the layer after its own (tiled as R, in shared
// memory) and writes that layer's projection step by step, so that no projection GEMM stands
// between the layers. The first half hands layer l + 1's projection over as words tagged with
// their step, which the second half's cell threads spin on (as on h: no fence, no flag).
struct StackArgs {
  RecurrenceArgs second;                // layer l + 1 (its projection: `handoff`, not second.projection)
  const void* second_weights = nullptr; // its R tiles
  const uint4* next_input[2] = {};      // per half: the next layer's input weights, tiled as R (null: none)
  const float* next_bias[2] = {};       // its biases (all but GRU's b_hn), added to the projection
  unsigned long long* handoff = nullptr;  // layer l + 1's projection, T x N x G*H (step + 1, value) words
  float* emitted = nullptr;             // layer l + 2's, T x N x G*H floats, for the next launch
};

// Block 0's thread 0 adds the time of each phase of a step to a.trace (DS2RT_RNN_TRACE). The sums
// live in global memory and the last mark in shared memory, not registers: the kernels are short
// of registers, and `out` is a kernel parameter the compiler reads from the constant bank.
// Compiled in only with -DDS2RT_RNN_TRACE=ON: even when off at run time, each lap is a divergent
// branch in every step, and Nsight Compute found the cell warps stalled at those branches' joins
// (instruction fetch, branch resolution).
#ifndef DS2RT_RNN_TRACE_BUILD
#define DS2RT_RNN_TRACE_BUILD 0
#endif
constexpr bool kTraceBuild = DS2RT_RNN_TRACE_BUILD;

struct PhaseTrace {
  unsigned long long* out;
  __device__ explicit PhaseTrace(unsigned long long* trace) : out(trace) {
    if (enabled()) mark() = nowNs();
  }
  __device__ __forceinline__ bool enabled() const {
    return kTraceBuild && out && blockIdx.x == 0 && threadIdx.x == 0;
  }
  static __device__ __forceinline__ unsigned long long& mark() {
    __shared__ unsigned long long last;
    return last;
  }
  __device__ __forceinline__ void lap(int i) {
    if (!enabled()) return;
    const unsigned long long t = nowNs();
    atomicAdd(out + i, t - mark());
    mark() = t;
  }
  // A lap that waits for `value` first (a load's result, say): without a use the timer would be
  // read as soon as the load is issued. (The branch is never taken; an empty asm taking the value
  // would vanish before the scheduler sees it.)
  __device__ __forceinline__ void lapAfter(int i, float value) {
    if (!enabled()) return;
    if (__float_as_uint(value) == 0x7fbadbadu) mark() = 0;
    lap(i);
  }
};

__device__ __forceinline__ int maxLength(const RecurrenceArgs& r) {
  int longest = 0;
  for (int b = 0; b < r.n; ++b) longest = max(longest, r.lengths[b]);
  return longest;
}

// One (unit, utterance) of a block: the thread that owns it keeps its cell state, prefetches its
// input projection, applies the cell and publishes the new h, tagged with its step.
struct OwnedUnit {
  int dir, b;
  int64_t j;  // hidden unit
  bool owner, reverse;
  int len;
  float c = 0.0f, h = 0.0f, b_hn = 0.0f;

  __device__ OwnedUnit(const RecurrenceArgs& r, int direction, int64_t unit, int utterance, bool in_block)
      : dir(direction), b(utterance), j(unit), owner(in_block && utterance < r.n && unit < r.h),
        reverse(r.reverse_only || direction == 1), len(owner ? r.lengths[utterance] : 0) {
    if (owner && r.hidden_bias) b_hn = r.hidden_bias[dir * r.h + j];
  }
  __device__ bool active(int k) const { return owner && k < len; }
  __device__ int64_t time(int k) const { return reverse ? len - 1 - k : k; }

  // The input projection of step k (biases included), requested before the wait for h: nothing
  // reads x until the cell, so the loads' latency hides behind the exchange and the products.
  // (Adding a bias here used to make each thread wait for them before it even asked for h.)
  __device__ void prefetch(const RecurrenceArgs& r, int k, float* x) const {
    if (!active(k)) return;
    const int64_t gh = r.gates * r.h;
    const float* p = r.projection + (time(k) * r.n + b) * r.dirs * gh + dir * gh + j;
#pragma unroll
    for (int g = 0; g < 4; ++g)
      if (g < r.gates) x[g] = p[g * r.h];
  }

  // Applies the cell with the recurrent products `rec` and writes the output frame (T: its type;
  // none where r.output is null: a stacked layer whose output only feeds the next one's projection).
  // Fast: the activations' fast forms (rnn_cell.cuh), for layers with 16-bit products.
  template <typename T, bool Fast, int Gates = 0>
  __device__ void step(const RecurrenceArgs& r, int k, const float* x, const float* rec) {
    if (!active(k)) return;
    h = cellStep<Fast, Gates>(r.cell, x, rec, b_hn, h, c);
    if (r.output) static_cast<T*>(r.output)[(time(k) * r.n + b) * r.out_width + dir * r.column_stride + j] = fromFloat<T>(h);
  }

  // Publishes h after step k as one fp32 word with its step. Every unit of every utterance is
  // published each step (a finished utterance repeats its last h), so that readers never wait for a
  // word nobody writes.
  __device__ void publish(const RecurrenceArgs& r, unsigned long long* exchange, int k) const {
    if (owner) storeRelaxed(exchangeBuffer(exchange, k + 1, r.dirs, dir, r.h) + b * r.h + j, tagged(h, k + 1));
  }
};

// c += a * b: one mma.m16n8k16 (A 16 x 16 row-major in a lane's fragment order, B 16 x 8, fp32 accumulate).
// Not volatile: a pure function of its registers, which the compiler may schedule around the loads.
template <typename T>
__device__ __forceinline__ void mma16816(float* c, const uint4& a, unsigned b0, unsigned b1) {
  if constexpr (std::is_same_v<T, __half>)
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
  else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
}

// The tensor-core kernel's block: 16 warps (the products are latency-bound chains of mma, so more
// warps in flight pay off).
constexpr int kMmaThreads = 512;
constexpr int kRegisterFragments = 16;  // A fragments (4 registers each) a warp may keep: 64 registers
constexpr int kFewUtterances = 2;       // batches this small get the instantiation with fewer h loads
constexpr int kEmitWarps = 4;           // a stack's emit warps, where it has them (MmaGeometry::emit_warps)

// Tensor-core geometry: a block's G*units rows in 16-row tiles, H in 16-column tiles, the
// column tiles of each row tile split over `ksplit` warps.
struct MmaGeometry {
  int gates = 0, mtiles = 0, ktiles = 0, ksplit = 1, h_stride = 0;
  bool weights_in_registers = false;  // each warp's A fragments fit its registers
  bool straight_products = false;     // and each warp runs all 16 column tiles, unchecked (batch 1-2)
  // Stacked kernel: warps of their own (the block's last ones) that multiply h by the next layer's
  // input weights, alongside the step, instead of every warp doing it after the publish (0: none).
  int emit_warps = 0;
};

// The parts the next layer's input products are split into: one per emit warp, else as R's.
__host__ __device__ inline int emitParts(const MmaGeometry& g) { return g.emit_warps ? g.emit_warps : g.ksplit; }

// Whether a layer of activation type `type` may hold R (and h) on chip in `products`: its own type,
// or fp16 in an fp32 (tf32) layer, whose output the kernels then write as float.
inline bool productsSupported(DataType type, DataType products) {
  return products == type || (products == DataType::kFloat16 && type == DataType::kFloat32);
}

// Whether `blocks` blocks of `kernel` fit on the GPU at once (a cooperative launch needs it).
bool coResident(void* kernel, int threads, size_t shared_bytes, int blocks, int sm_count);

MmaGeometry mmaGeometry(int gates, int units, int64_t hidden);
// The stacked kernel's for `batch` utterances: with emit warps at batch 1 where R's fragments leave
// room for them.
MmaGeometry stackedGeometry(int gates, int units, int64_t hidden, int64_t batch);
size_t mmaSharedBytes(const MmaGeometry& g, DataType type);
// The stacked kernel's (see StackArgs): the next layer's input tiles, two h buffers, R's partial sums
// and two buffers of the input products' (emitParts() parts each).
size_t stackedSharedBytes(const MmaGeometry& g, DataType type);
// A kernel instantiation for a layer's types: pick(T{}, Out{}) with R and h held in T (bf16 or fp16)
// and the output in Out (T, or float for a tf32 layer holding R in fp16).
template <typename Pick>
void* kernelForTypes(DataType products, DataType output, Pick pick) {
  if (products == DataType::kBFloat16) return pick(__nv_bfloat16{}, __nv_bfloat16{});
  if (output == DataType::kFloat32) return pick(__half{}, float{});
  return pick(__half{}, __half{});
}
// ... and for its cell: pick(std::integral_constant<int, G>{}) with G = 4 (LSTM) or 3 (GRU) compiled
// into the step, 0 for any cell read at run time.
template <typename Pick>
void* kernelForGates(int gates, Pick pick) {
  if (gates == 4) return pick(std::integral_constant<int, 4>{});
  if (gates == 3) return pick(std::integral_constant<int, 3>{});
  return pick(std::integral_constant<int, 0>{});
}

// The instantiation that runs two layers of a stack (batch <= stackedMaxBatch(), weights in registers).
void* stackedKernel(DataType type, DataType output, const MmaGeometry& g);
int stackedMaxBatch();
// The instantiation for this batch: `type` holds R and h (fp16/bf16), `output` is the layer's
// output type (the same, or fp32 with fp16 products).
void* mmaKernel(DataType type, DataType output, const MmaGeometry& g, int64_t batch);
int mmaThreads();  // threads per block of the tensor-core kernel
// Rearranges R into per-block tiles in mma.m16n8k16's A-fragment order (see the kernel).
std::vector<float> tileForMma(const std::vector<float>& recurrent, int gates, int64_t hidden, int dirs, int units,
                              int blocks_per_direction);

// The wide and cluster kernels' exchange: two buffers of h (dirs x `utterances` x H values of
// `type`, by step parity), then one arrival counter per direction. Zeroed before each launch.
inline size_t countedExchangeBytes(int dirs, int64_t utterances, int64_t hidden, DataType type) {
  return 2 * dirs * utterances * hidden * sizeOf(type) + dirs * sizeof(unsigned);
}
inline unsigned* exchangeCounters(void* exchange, int dirs, int64_t utterances, int64_t hidden, DataType type) {
  return reinterpret_cast<unsigned*>(static_cast<char*>(exchange) + 2 * dirs * utterances * hidden * sizeOf(type));
}

// The cluster kernel's shape for a layer (rnn_persistent_cluster.cu): a block's rows of R are one
// 64-row wgmma tile (16 LSTM units, 21 GRU units, 32 of a vanilla RNN), and its shared memory holds
// all of h for 64 utterances, as two halves of 32. Not usable where H does not split into 4 quarters
// of 4, 8 or 16 column tiles (the instantiations), or the shared memory would exceed `shared_limit`.
struct ClusterGeometry {
  bool usable = false;
  int units = 0, blocks_per_direction = 0;
  size_t shared_bytes = 0;
};
ClusterGeometry clusterGeometry(int gates, int64_t hidden, DataType products, size_t shared_limit);

// The cluster kernel runs the batch as two halves of 32 utterances, each with its own h exchange, so
// that one half's h travels while the other half computes. A half's h, as wgmma reads it for B (K =
// hidden units, N = 32 utterances; 16-bit values, no swizzle): 8 x 8 core matrices (8 utterances x 16
// bytes of units), those adjacent in N kClusterStrideBytes apart (the descriptor's stride byte
// offset), those adjacent in K kClusterCoreBytes apart (its leading byte offset: one column of core
// matrices, 8 units of every utterance of the half). The same layout in global memory, so that a
// range of columns is one contiguous copy.
constexpr int kClusterUtterances = 64;
constexpr int kClusterHalf = kClusterUtterances / 2;
constexpr int64_t kClusterStrideBytes = 128;
constexpr int64_t kClusterCoreBytes = kClusterStrideBytes * kClusterHalf / 8;
// The element index of unit j of the half's utterance b (0 <= b < kClusterHalf).
__host__ __device__ inline int64_t clusterHIndex(int64_t b, int64_t j) {
  return ((j / 8) * (kClusterHalf / 8) + b / 8) * 64 + (b % 8) * 8 + j % 8;
}

// The share of one quarter's columns of core matrices that rank `rank` of a cluster of `cluster`
// blocks copies for all of them: [first, end), every column exactly once over the ranks.
__host__ __device__ inline int64_t clusterShareBegin(int64_t rank, int cluster, int64_t columns) {
  return rank * columns / cluster;
}

}  // namespace ds2rt::detail::cuda::persistent
