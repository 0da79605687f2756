// Persistent recurrent kernel: one cooperative launch runs every step of one layer, both
// directions at once (blocks [0, B) forward, [B, 2B) backward). Block `k` of a direction owns
// `units` hidden units: their G*units rows of R stay in shared memory for the whole sequence.
// Per step a block reads h (N x H floats, from L2), computes its rows' products with it,
// applies the cell to its units, publishes their new h, and meets the direction's other
// blocks at a flag barrier. Cost per step: one barrier, one h broadcast, G*units*H*N FMAs.
#include <algorithm>

#include "cuda/rnn.cuh"

namespace ds2rt::detail::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBatch = 4;
constexpr int64_t kMaxHidden = 1024;  // the per-lane h registers cover 32 * 32 floats

struct PersistentArgs {
  RecurrenceArgs r;
  const void* weights;
  float* exchange;  // 2 x dirs x kMaxBatch x H: h after step k lives in buffer (k + 1) % 2
  unsigned* counters;  // dirs
  int units, blocks_per_direction;
};

__device__ __forceinline__ unsigned loadAcquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

template <typename T, int NB>
__global__ void __launch_bounds__(kThreads, 1) persistentKernel(PersistentArgs a) {
  constexpr int V = 16 / sizeof(T);   // weights per 16-byte load
  constexpr int kChunks = 32 / V;      // 16-byte chunks of a row per lane (H <= 1024)
  extern __shared__ uint4 shared[];
  const RecurrenceArgs& r = a.r;
  const int gates = r.gates, units = a.units, tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t h = r.h, gh = gates * h, rows = static_cast<int64_t>(gates) * units, chunks = h / V;
  const int dir = blockIdx.x / a.blocks_per_direction, block = blockIdx.x % a.blocks_per_direction;
  const int64_t first_unit = static_cast<int64_t>(block) * units;

  T* w_s = reinterpret_cast<T*>(shared);
  float* h_s = reinterpret_cast<float*>(w_s + rows * h);
  float* g_s = h_s + kMaxBatch * h;

  {  // This block's weight tile, once.
    const uint4* src = static_cast<const uint4*>(a.weights) + (static_cast<int64_t>(blockIdx.x) * rows * h) / V;
    for (int64_t i = tid; i < rows * h / V; i += kThreads) shared[i] = src[i];
  }
  int max_len = 0;
  for (int b = 0; b < r.n; ++b) max_len = max(max_len, r.lengths[b]);
  const bool reverse = r.reverse_only || dir == 1;

  // Thread (unit u, utterance b) owns that unit's cell state.
  const int u = tid / NB, b = tid % NB;
  const int64_t j = first_unit + u;
  const bool owner = u < units && b < r.n && j < h;
  const int len = owner ? r.lengths[b] : 0;
  float c = 0.0f, h_own = 0.0f;
  const float b_hn = owner && r.hidden_bias ? r.hidden_bias[dir * h + j] : 0.0f;

  for (int k = 0; k < max_len; ++k) {
    const bool active = owner && k < len;
    const int64_t t = reverse ? len - 1 - k : k;
    float x[4] = {0, 0, 0, 0};
    if (active) {  // issued early: the loads overlap the products below
      const float* p = r.projection + (t * r.n + b) * r.dirs * gh + dir * gh + j;
      const float* bias = r.bias + dir * gh + j;
      for (int g = 0; g < gates; ++g) x[g] = p[g * h] + bias[g * h];
    }
    const float* h_in = a.exchange + ((k % 2) * r.dirs + dir) * kMaxBatch * h;
    for (int64_t i = tid; i < r.n * h / 4; i += kThreads)
      reinterpret_cast<float4*>(h_s)[i] = __ldcg(reinterpret_cast<const float4*>(h_in) + i);
    __syncthreads();

    float hr[NB][kChunks * V];
#pragma unroll
    for (int cc = 0; cc < kChunks; ++cc) {
      const int64_t ch = lane + 32 * cc;
#pragma unroll
      for (int v = 0; v < V; ++v)
#pragma unroll
        for (int nb = 0; nb < NB; ++nb) hr[nb][cc * V + v] = (ch < chunks && nb < r.n) ? h_s[nb * h + ch * V + v] : 0.0f;
    }
    for (int64_t row = warp; row < rows; row += kThreads / 32) {
      float acc[NB];
#pragma unroll
      for (int nb = 0; nb < NB; ++nb) acc[nb] = 0.0f;
      const uint4* w_row = reinterpret_cast<const uint4*>(w_s + row * h);
#pragma unroll
      for (int cc = 0; cc < kChunks; ++cc) {
        const int64_t ch = lane + 32 * cc;
        if (ch < chunks) {
          const uint4 packed = w_row[ch];
          const T* w = reinterpret_cast<const T*>(&packed);
#pragma unroll
          for (int v = 0; v < V; ++v) {
            const float wv = toFloat(w[v]);
#pragma unroll
            for (int nb = 0; nb < NB; ++nb) acc[nb] += wv * hr[nb][cc * V + v];
          }
        }
      }
#pragma unroll
      for (int nb = 0; nb < NB; ++nb) {
#pragma unroll
        for (int offset = 16; offset > 0; offset /= 2) acc[nb] += __shfl_xor_sync(0xffffffffu, acc[nb], offset);
      }
      if (lane == 0)
#pragma unroll
        for (int nb = 0; nb < NB; ++nb) g_s[row * NB + nb] = acc[nb];
    }
    __syncthreads();

    if (active) {
      float rec[4];
      for (int g = 0; g < gates; ++g) rec[g] = g_s[(g * units + u) * NB + b];
      h_own = cellStep(r.cell, x, rec, b_hn, h_own, c);
      static_cast<T*>(r.output)[(t * r.n + b) * r.out_width + dir * r.column_stride + j] = fromFloat<T>(h_own);
      a.exchange[(((k + 1) % 2) * r.dirs + dir) * kMaxBatch * h + b * h + j] = h_own;
    }
    // Barrier of this direction's blocks (the pattern of cooperative groups' grid sync).
    __syncthreads();
    if (tid == 0) {
      __threadfence();
      atomicAdd(a.counters + dir, 1u);
      const unsigned target = static_cast<unsigned>(k + 1) * a.blocks_per_direction;
      while (loadAcquire(a.counters + dir) < target) {
      }
    }
    __syncthreads();
  }
}

template <typename T, int NB>
void* kernelFor() {
  return reinterpret_cast<void*>(&persistentKernel<T, NB>);
}

void* pickKernel(DataType type, int nb) {
  return dispatchType(type, [&](auto* tag) -> void* {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (nb == 1) return kernelFor<T, 1>();
    if (nb == 2) return kernelFor<T, 2>();
    return kernelFor<T, 4>();
  });
}

}  // namespace

PersistentPlan planPersistent(RNNCell cell, bool linear_before_reset, int64_t hidden, int dirs, DataType type,
                              int sm_count, size_t shared_limit) {
  PersistentPlan plan;
  const int gates = gateCount(cell);
  const int v = 16 / static_cast<int>(sizeOf(type));
  // A GRU without linear-before-reset needs all of r*h before R_n: a second barrier per step.
  if ((cell == RNNCell::kGRU && !linear_before_reset) || hidden > kMaxHidden || hidden % v != 0) return plan;
  const int per_direction = sm_count / dirs;
  if (per_direction < 1) return plan;
  plan.units_per_block = static_cast<int>((hidden + per_direction - 1) / per_direction);
  plan.blocks_per_direction = static_cast<int>((hidden + plan.units_per_block - 1) / plan.units_per_block);
  const int64_t rows = static_cast<int64_t>(gates) * plan.units_per_block;
  plan.shared_bytes = rows * hidden * sizeOf(type) + kMaxBatch * hidden * 4 + rows * kMaxBatch * 4;
  if (plan.shared_bytes > shared_limit || plan.units_per_block * kMaxBatch > kThreads) return plan;
  for (int nb : {1, 2, 4}) {
    void* kernel = pickKernel(type, nb);
    DS2RT_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(plan.shared_bytes)));
    int resident = 0;
    DS2RT_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, kThreads, plan.shared_bytes));
    if (resident * sm_count < plan.blocks_per_direction * dirs) return plan;
  }
  plan.max_batch = kMaxBatch;
  plan.usable = true;
  return plan;
}

std::vector<float> tilePersistentWeights(const std::vector<float>& recurrent, int gates, int64_t hidden, int dirs,
                                         const PersistentPlan& plan) {
  const int64_t units = plan.units_per_block, gh = gates * hidden;
  std::vector<float> tiles(static_cast<size_t>(dirs) * plan.blocks_per_direction * gates * units * hidden, 0.0f);
  size_t out = 0;
  for (int d = 0; d < dirs; ++d)
    for (int block = 0; block < plan.blocks_per_direction; ++block)
      for (int g = 0; g < gates; ++g)
        for (int64_t u = 0; u < units; ++u, out += hidden) {
          const int64_t j = block * units + u;
          if (j < hidden)
            std::copy_n(recurrent.data() + (d * gh + g * hidden + j) * hidden, hidden, tiles.data() + out);
        }
  return tiles;
}

void launchPersistent(const RecurrenceArgs& args, const PersistentPlan& plan, const void* tiled_weights, float* exchange,
                      unsigned* counters, DataType type, cudaStream_t stream) {
  check(args.n <= plan.max_batch, "persistent RNN kernel takes at most ", plan.max_batch, " utterances");
  const int nb = args.n == 1 ? 1 : args.n == 2 ? 2 : 4;
  PersistentArgs a{args, tiled_weights, exchange, counters, plan.units_per_block, plan.blocks_per_direction};
  DS2RT_CUDA(cudaMemsetAsync(exchange, 0, sizeof(float) * 2 * args.dirs * kMaxBatch * args.h, stream));
  DS2RT_CUDA(cudaMemsetAsync(counters, 0, sizeof(unsigned) * args.dirs, stream));
  void* params[] = {&a};
  DS2RT_CUDA(cudaLaunchCooperativeKernel(pickKernel(type, nb), dim3(plan.blocks_per_direction * args.dirs),
                                         dim3(kThreads), params, plan.shared_bytes, stream));
}

}  // namespace ds2rt::detail::cuda
