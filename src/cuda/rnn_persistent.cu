// Persistent recurrent kernels: one cooperative launch runs every step of one layer, both
// directions at once (blocks [0, B) forward, [B, 2B) backward). Block `k` of a direction owns
// `units` hidden units: their G*units rows of R stay on chip for the whole sequence (the CUDA-core
// kernel may read a few of them from L2 every step: PersistentPlan::resident_rows).
// Per step a block reads h (N x H, from L2), computes its rows' products with it, applies the
// cell to its units and publishes their new h. There is no grid barrier: h is published in
// 64-bit words holding the value (fp32; two units' 16-bit values in the tensor-core kernel) and the
// step it belongs to, and a reader spins on the words it needs until they carry the step it waits
// for. Cost per step: one L2 round trip for h,
// G*units*H*N FMAs, the cell.
#include <algorithm>

#include "cuda/rnn_persistent.cuh"

namespace ds2rt::detail::cuda {

namespace {

using namespace persistent;
constexpr int kMaxCoreBatch = 4;  // the CUDA-core kernel's h registers take up to 4 utterances
constexpr int64_t kMaxHidden = 1024;  // and 32 * 32 floats of h per lane

// fp32 only: layers with 16-bit products (fp16, bf16, tf32's fp16 R) run on the tensor-core
// kernel, the faster for them since 2026-12-06.
template <int NB>
__global__ void __launch_bounds__(kThreads, 1) persistentKernel(PersistentArgs a) {
  constexpr int V = 16 / sizeof(float);  // weights per 16-byte load
  constexpr int kChunks = 32 / V;      // 16-byte chunks of a row per lane (H <= 1024)
  extern __shared__ uint4 shared[];
  const RecurrenceArgs& r = a.r;
  const int gates = r.gates, units = a.units, tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t h = r.h, rows = static_cast<int64_t>(gates) * units, chunks = h / V;
  const int dir = blockIdx.x / a.blocks_per_direction, block = blockIdx.x % a.blocks_per_direction;
  const int64_t first_unit = static_cast<int64_t>(block) * units;

  // The block's first `resident` rows of R live in shared memory; any others are read from its tile
  // in global memory (L2) every step.
  const int64_t resident = a.resident_rows;
  float* w_s = reinterpret_cast<float*>(shared);
  float* h_s = reinterpret_cast<float*>(w_s + resident * h);
  float* g_s = h_s + kMaxCoreBatch * h;
  const uint4* w_g = static_cast<const uint4*>(a.weights) + (static_cast<int64_t>(blockIdx.x) * rows * h) / V;

  for (int64_t i = tid; i < resident * h / V; i += kThreads) shared[i] = w_g[i];  // once
  const int max_len = maxLength(r);
  // Thread (unit u, utterance b) owns that unit's cell state.
  const int u = tid / NB;
  OwnedUnit unit(r, dir, first_unit + u, tid % NB, u < units);

  PhaseTrace trace(a.trace);
  for (int k = 0; k < max_len; ++k) {
    float x[4] = {0, 0, 0, 0};
    unit.prefetch(r, k, x);
    const unsigned long long* h_in = exchangeBuffer(a.exchange, k, r.dirs, dir, h);
    constexpr int kLoads = 4;  // words in flight per thread
    for (int64_t base = tid; base < r.n * h; base += kLoads * kThreads) {
      unsigned long long word[kLoads];
#pragma unroll
      for (int q = 0; q < kLoads; ++q)
        if (base + q * kThreads < r.n * h) word[q] = loadRelaxed(h_in + base + q * kThreads);
#pragma unroll
      for (int q = 0; q < kLoads; ++q) {
        const int64_t i = base + q * kThreads;
        if (i >= r.n * h) break;
        while (static_cast<unsigned>(word[q] >> 32) != static_cast<unsigned>(k)) word[q] = loadRelaxed(h_in + i);
        h_s[i] = __uint_as_float(static_cast<unsigned>(word[q]));
      }
    }
    trace.lap(0);
    __syncthreads();
    trace.lap(1);

    // This lane's slice of h (the same columns for every row it touches).
    float hr[NB][kChunks * V];
#pragma unroll
    for (int cc = 0; cc < kChunks; ++cc) {
      const int64_t ch = lane + 32 * cc;
#pragma unroll
      for (int nb = 0; nb < NB; ++nb)
#pragma unroll
        for (int v = 0; v < V; v += 4) {
          const float4 q = ch < chunks && nb < r.n ? *reinterpret_cast<const float4*>(h_s + nb * h + ch * V + v)
                                                   : make_float4(0, 0, 0, 0);
          hr[nb][cc * V + v] = q.x, hr[nb][cc * V + v + 1] = q.y, hr[nb][cc * V + v + 2] = q.z,
          hr[nb][cc * V + v + 3] = q.w;
        }
    }
    // kRows rows per warp at a time: independent accumulators and shuffle chains keep the
    // pipelines busy (one row at a time left the products latency-bound).
    constexpr int kRows = 4;
    for (int64_t row0 = warp * kRows; row0 < rows; row0 += kRows * (kThreads / 32)) {
      float acc[kRows][NB];
#pragma unroll
      for (int q = 0; q < kRows; ++q)
#pragma unroll
        for (int nb = 0; nb < NB; ++nb) acc[q][nb] = 0.0f;
#pragma unroll
      for (int cc = 0; cc < kChunks; ++cc) {
        const int64_t ch = lane + 32 * cc;
        if (ch >= chunks) continue;
        uint4 packed[kRows];
#pragma unroll
        for (int q = 0; q < kRows; ++q)
          packed[q] = row0 + q < resident ? reinterpret_cast<const uint4*>(w_s + (row0 + q) * h)[ch]
                      : row0 + q < rows   ? __ldg(w_g + (row0 + q) * chunks + ch)
                                          : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int q = 0; q < kRows; ++q) {
          const float* w = reinterpret_cast<const float*>(&packed[q]);
#pragma unroll
          for (int v = 0; v < V; ++v) {
            const float wv = w[v];
#pragma unroll
            for (int nb = 0; nb < NB; ++nb) acc[q][nb] += wv * hr[nb][cc * V + v];
          }
        }
      }
#pragma unroll
      for (int offset = 16; offset > 0; offset /= 2)
#pragma unroll
        for (int q = 0; q < kRows; ++q)
#pragma unroll
          for (int nb = 0; nb < NB; ++nb) acc[q][nb] += __shfl_xor_sync(0xffffffffu, acc[q][nb], offset);
      if (lane == 0)
#pragma unroll
        for (int q = 0; q < kRows; ++q)
          if (row0 + q < rows)
#pragma unroll
            for (int nb = 0; nb < NB; ++nb) g_s[(row0 + q) * NB + nb] = acc[q][nb];
    }
    __syncthreads();
    trace.lap(2);

    float rec[4] = {0, 0, 0, 0};
    if (unit.active(k))
      for (int g = 0; g < gates; ++g) rec[g] = g_s[(g * units + u) * NB + unit.b];
    unit.step<float, false>(r, k, x, rec);
    unit.publish(r, a.exchange, k);
    trace.lap(3);
  }
}

void* coreKernelFor(int nb) {
  if (nb == 1) return reinterpret_cast<void*>(&persistentKernel<1>);
  if (nb == 2) return reinterpret_cast<void*>(&persistentKernel<2>);
  return reinterpret_cast<void*>(&persistentKernel<4>);
}

}  // namespace

bool persistent::coResident(void* kernel, int threads, size_t shared_bytes, int blocks, int sm_count) {
  // The device's maximum less the kernel's static shared memory (the phase trace's mark), not
  // this plan's bytes: another layer's plan may launch the same kernel with more, and a lower
  // limit set later would make that launch fail.
  int device = 0, limit = 0;
  DS2RT_CUDA(cudaGetDevice(&device));
  DS2RT_CUDA(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  cudaFuncAttributes attributes{};
  DS2RT_CUDA(cudaFuncGetAttributes(&attributes, kernel));
  const int dynamic_limit = limit - static_cast<int>(attributes.sharedSizeBytes);
  if (shared_bytes > static_cast<size_t>(dynamic_limit)) return false;
  DS2RT_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, dynamic_limit));
  int resident = 0;
  DS2RT_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, threads, shared_bytes));
  return resident * sm_count >= blocks;
}

PersistentPlan planPersistent(RNNCell cell, bool linear_before_reset, int64_t hidden, int dirs, DataType type,
                              DataType products, int sm_count, size_t shared_limit) {
  PersistentPlan plan;
  plan.products = products;
  if (!productsSupported(type, products)) return plan;
  const int gates = gateCount(cell);
  // A GRU without linear-before-reset needs all of r*h before R_n: a second exchange per step.
  if (cell == RNNCell::kGRU && !linear_before_reset) return plan;
  // Tensor cores for 16-bit products, with one direction too (uni-GRU 1024 fp16 7.3 vs 8.2 ms at
  // 1 x 10 s on the H100 since the tensor-core kernel's step was cut down, bench/RESULTS.md; it was
  // the slower before). The CUDA-core kernel for fp32, which has no exact tensor-core mode.
  const bool tensor_cores = products != DataType::kFloat32;
  // The tensor-core kernel spreads one direction over at most half the SMs, as it does each of two:
  // uni-GRU 1024 fp16 at 1 x 10 s took 6.45 ms on 128 blocks of 8 units and 5.9 on 64 blocks of 16
  // (H100, bench/RESULTS.md): fewer blocks to wait for each step, and 48 rows fill three 16-row
  // tiles where 24 left 8 of 32 empty.
  const int per_direction = sm_count / (tensor_cores ? std::max(dirs, 2) : dirs);
  if (per_direction < 1) return plan;
  // The tensor-core kernel publishes h two units to a word, so its blocks own an even number of units.
  const int64_t granule = tensor_cores ? 2 : 1;
  plan.units_per_block = static_cast<int>(granule * ((hidden + granule * per_direction - 1) / (granule * per_direction)));
  plan.blocks_per_direction = static_cast<int>((hidden + plan.units_per_block - 1) / plan.units_per_block);
  const int blocks = plan.blocks_per_direction * dirs;
  if (!tensor_cores) {
    const int64_t rows = static_cast<int64_t>(gates) * plan.units_per_block;
    const int per_load = 16 / static_cast<int>(sizeOf(products));  // the kernel reads rows 16 bytes at a time
    if (hidden > kMaxHidden || hidden % per_load != 0 || plan.units_per_block * kMaxCoreBatch > kThreads) return plan;
    // Rows that do not fit shared memory are read from L2 every step (at most a quarter of them:
    // with more, the per-step path's one product for all blocks is the better use of L2).
    const size_t row_bytes = hidden * sizeOf(products), fixed = kMaxCoreBatch * hidden * 4 + rows * kMaxCoreBatch * 4;
    if (fixed + row_bytes > shared_limit) return plan;
    plan.resident_rows = static_cast<int>(std::min<int64_t>(rows, (shared_limit - fixed) / row_bytes));
    if (4 * plan.resident_rows < 3 * rows) return plan;
    plan.shared_bytes = plan.resident_rows * row_bytes + fixed;
    for (int nb : {1, 2, 4})
      if (!coResident(coreKernelFor(nb), kThreads, plan.shared_bytes, blocks, sm_count)) return plan;
    plan.max_batch = kMaxCoreBatch;
  } else {
    if (plan.units_per_block * kMaxBatch > mmaThreads()) return plan;
    const MmaGeometry geometry = mmaGeometry(gates, plan.units_per_block, hidden);
    plan.shared_bytes = mmaSharedBytes(geometry, products);
    if (plan.shared_bytes > shared_limit) return plan;
    for (int64_t batch : {1, kMaxBatch})
      if (!coResident(mmaKernel(products, type, geometry, batch), mmaThreads(), plan.shared_bytes, blocks, sm_count))
        return plan;
    plan.max_batch = kMaxBatch;
    plan.tensor_cores = true;
  }
  plan.usable = true;
  return plan;
}

size_t planStacked(const PersistentPlan& plan, int gates, int64_t hidden, DataType type, int sm_count,
                   size_t shared_limit) {
  if (!plan.usable || !plan.tensor_cores) return 0;
  // The stacked kernel keeps R in registers and the next layer's input weights in shared memory; its
  // geometry may differ by batch (emit warps), the shared memory is the larger of the two.
  const MmaGeometry geometries[] = {stackedGeometry(gates, plan.units_per_block, hidden, 1),
                                    stackedGeometry(gates, plan.units_per_block, hidden, stackedMaxBatch())};
  size_t bytes = 0;
  for (const MmaGeometry& geometry : geometries) {
    if (!geometry.weights_in_registers) return 0;
    bytes = std::max(bytes, stackedSharedBytes(geometry, plan.products));
  }
  if (bytes > shared_limit) return 0;
  for (const MmaGeometry& geometry : geometries)
    if (!coResident(stackedKernel(plan.products, type, geometry), mmaThreads(), bytes, 2 * plan.blocks_per_direction,
                    sm_count))
      return 0;
  return bytes;
}

int stackedBatch() { return stackedMaxBatch(); }

bool stackedEmitWarps(const PersistentPlan& plan, int gates, int64_t hidden) {
  return stackedGeometry(gates, plan.units_per_block, hidden, 1).emit_warps > 0;
}

void launchStacked(const StackedLayer& first, const StackedLayer& second, const PersistentPlan& plan,
                   size_t shared_bytes, void* exchange_bytes, DataType type, cudaStream_t stream,
                   unsigned long long* trace) {
  const RecurrenceArgs& r = first.args;
  check(r.n <= stackedMaxBatch() && r.dirs == 1 && second.args.dirs == 1 && first.emitted,
        "internal: the stacked RNN kernel takes one direction, at most ", stackedMaxBatch(),
        " utterances, and hands the second layer its projection");
  auto* exchange = static_cast<unsigned long long*>(exchange_bytes);
  auto* handoff = static_cast<unsigned long long*>(first.emitted);
  PersistentArgs a{r, first.tiles, exchange, plan.units_per_block, plan.blocks_per_direction, trace};
  StackArgs stack{.second = second.args,
                  .second_weights = second.tiles,
                  .next_input = {static_cast<const uint4*>(first.next_input), static_cast<const uint4*>(second.next_input)},
                  .next_bias = {first.next_bias, second.next_bias},
                  .handoff = handoff,
                  .emitted = static_cast<float*>(second.emitted)};
  DS2RT_CUDA(cudaMemsetAsync(exchange, 0, persistentExchangeBytes(2, r.h), stream));
  // Words of an earlier launch carry the same steps: the reader must not take them for this one's.
  DS2RT_CUDA(cudaMemsetAsync(handoff, 0, stackedHandoffBytes(r), stream));
  MmaGeometry geometry = stackedGeometry(r.gates, plan.units_per_block, r.h, r.n);
  void* params[] = {&a, &geometry, &stack};
  DS2RT_CUDA(cudaLaunchCooperativeKernel(stackedKernel(plan.products, type, geometry), dim3(2 * plan.blocks_per_direction),
                                         dim3(mmaThreads()), params, shared_bytes, stream));
}

size_t stackedHandoffBytes(const RecurrenceArgs& r) { return sizeof(unsigned long long) * r.t * r.n * r.gates * r.h; }

bool persistentTraceCompiled() { return kTraceBuild; }

size_t persistentExchangeBytes(int dirs, int64_t hidden) {
  return sizeof(unsigned long long) * 2 * dirs * kMaxBatch * hidden;
}

std::vector<float> tilePersistentWeights(const std::vector<float>& recurrent, int gates, int64_t hidden, int dirs,
                                         const PersistentPlan& plan) {
  if (plan.tensor_cores)
    return tileForMma(recurrent, gates, hidden, dirs, plan.units_per_block, plan.blocks_per_direction);
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

void launchPersistent(const RecurrenceArgs& args, const PersistentPlan& plan, const void* tiled_weights,
                      unsigned long long* exchange, DataType type, cudaStream_t stream, unsigned long long* trace) {
  check(args.n <= plan.max_batch, "persistent RNN kernel takes at most ", plan.max_batch, " utterances");
  PersistentArgs a{args, tiled_weights, exchange, plan.units_per_block, plan.blocks_per_direction, trace,
                   plan.resident_rows};
  DS2RT_CUDA(cudaMemsetAsync(exchange, 0, persistentExchangeBytes(args.dirs, args.h), stream));
  const dim3 grid(plan.blocks_per_direction * args.dirs);
  if (plan.tensor_cores) {
    MmaGeometry geometry = mmaGeometry(args.gates, plan.units_per_block, args.h);
    void* params[] = {&a, &geometry};
    DS2RT_CUDA(cudaLaunchCooperativeKernel(mmaKernel(plan.products, type, geometry, args.n), grid, dim3(mmaThreads()),
                                           params, plan.shared_bytes, stream));
  } else {
    void* params[] = {&a};
    const int nb = args.n == 1 ? 1 : args.n == 2 ? 2 : 4;
    DS2RT_CUDA(cudaLaunchCooperativeKernel(coreKernelFor(nb), grid, dim3(kThreads), params,
                                           plan.shared_bytes, stream));
  }
}

}  // namespace ds2rt::detail::cuda
