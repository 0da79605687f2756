// The cluster persistent recurrent kernel (Hopper: sm_90a; fp16/bf16; up to 64 utterances). As in
// the wide-batch kernel, each block owns G*units rows of R for the whole sequence, both directions
// run at once and arrival counters order the steps. What changes at 64 utterances, where every block
// needs all of h (128 KB at 1024 units) every step:
//  - h goes through L2 once per thread-block cluster, not once per block: each block of a cluster
//    bulk-copies 1/C of h and multicasts it to the C blocks (cp.async.bulk ... .multicast::cluster),
//    which count the landed bytes on one mbarrier per quarter of the hidden columns;
//  - the products are Hopper's warpgroup MMA (wgmma): each of the 4 warpgroups keeps its quarter of
//    the columns of R in registers (A fragments, 64 registers a thread at 1024 units) and the tensor
//    cores read h from shared memory directly, once per step rather than once per warp;
//  - h is published in the layout wgmma reads (8 x 8 core matrices, no swizzle), so that any
//    contiguous range of the global buffer is the same range of shared memory and one bulk copy moves it;
//  - the batch runs as two halves (of up to 32 utterances) with an exchange each (buffers, counter, barriers):
//    while one half's h travels between the SMs (publication, the slowest block, the copy: most of a
//    step), the block computes the other half. A warpgroup of its own (the exchange warpgroup, one
//    thread of it, with few registers) waits for each half's publication and issues its copies, so
//    that the compute warps never poll.
// The warpgroups' partial sums meet in shared memory; each thread then runs up to 2 cells of the half.
// Safety of one h buffer per half in shared memory: a block copies step k's h of a half only once
// every block of its direction has published that half's step k - 1, which each did after its own
// products of it.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include "cuda/hopper.cuh"
#include "cuda/rnn_persistent.cuh"

namespace ds2rt::detail::cuda {

namespace {

using namespace persistent;
using namespace hopper;

constexpr int kComputeThreads = 512;                  // 4 warpgroups: products and cells
constexpr int kClusterThreads = kComputeThreads + 128;  // and the exchange warpgroup (one thread of it works)
constexpr int kWarpgroups = kComputeThreads / 128;   // each multiplies a quarter of the hidden columns
constexpr int kHalf = kClusterHalf;                  // wgmma's N: one half of the batch
constexpr int kRows = 64;                            // wgmma's M: a block's G*units rows, zero-padded
// A fragments a thread holds (hidden = 64 x Fragments): compiled per count, so that the wgmma
// chain has no branch (ptxas fences every wgmma of a branchy one).
constexpr int kFragmentCounts[] = {4, 8, 16};
constexpr int kCellsPerThread = 2;                   // of each half
constexpr int kMaxUnits = kCellsPerThread * kComputeThreads / kHalf;  // 32
constexpr int kMaxCluster = 8;                       // the portable cluster size
constexpr int kPartialStride = kRows + 4;            // floats per utterance in the partial sums (no bank conflicts)

__host__ __device__ constexpr int unitsPerBlock(int gates) { return kRows / gates < kMaxUnits ? kRows / gates : kMaxUnits; }
// A thread's A fragments (each warpgroup's quarter of the hidden columns, in 16-column tiles).
constexpr int fragmentsFor(int64_t hidden) { return static_cast<int>(hidden / (16 * kWarpgroups)); }

struct ClusterArgs {
  RecurrenceArgs r;
  const uint4* weights;  // per block: row tiles x column tiles x 32 lanes of A fragments (tileForMma)
  void* h_exchange;      // 2 steps x (dirs x 2 halves) x H x 32 values in the core-matrix layout, then counters
  unsigned* published;   // dirs x 2 halves counters: blocks that have published their h, summed over steps
  int units, blocks_per_direction, cluster;
  unsigned long long* trace;
};

// Shared memory: h (two halves of 32 x H), the warpgroups' partial sums (one half at a time), each
// thread's input projections for its cells of both halves (prefetched there, not into registers: R's
// fragments and the accumulators fill those), a barrier per half and quarter.
constexpr size_t kPartialBytes = size_t{kWarpgroups} * kHalf * kPartialStride * sizeof(float);
size_t hBytes(int64_t hidden, DataType products) { return 2 * static_cast<size_t>(hidden) * kHalf * sizeOf(products); }
constexpr size_t kInputBytes = size_t{2} * kCellsPerThread * 4 * kComputeThreads * sizeof(float);
size_t clusterSharedBytes(int64_t hidden, DataType products) {
  return hBytes(hidden, products) + kPartialBytes + kInputBytes +
         2 * kWarpgroups * sizeof(uint64_t);
}

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define DS2RT_CLUSTER_DEVICE_CODE 1
#else
#define DS2RT_CLUSTER_DEVICE_CODE 0
#endif

#if DS2RT_CLUSTER_DEVICE_CODE
constexpr int64_t kCoreBytes = kClusterCoreBytes;  // one column of core matrices: 8 units x 32 utterances
// Registers a thread (setmaxnreg): the launch gives each of the 640 threads 96; the exchange warpgroup
// hands back all but 24, and the compute warpgroups take 112 (R's fragments and the accumulators alone
// are 80; with 96 ptxas serialises the wgmmas).
constexpr int kExchangeRegisters = 24, kComputeRegisters = 112;

// wgmma's shared-memory matrix descriptor for B (K-major, no swizzle): core matrices adjacent in K
// (8 units further) are kCoreBytes apart, those adjacent in N (8 utterances further) 128 bytes. As
// two words: the low one (start address / 16, leading byte offset) grows by kStepWords per k step.
struct HDescriptor {
  unsigned low, high;
};
__device__ __forceinline__ HDescriptor hDescriptor(const void* start) {
  return {((sharedAddress(start) & 0x3FFFF) >> 4) | static_cast<unsigned>(kCoreBytes >> 4) << 16,
          static_cast<unsigned>(kClusterStrideBytes >> 4)};
}
constexpr unsigned kStepWords = 2 * kCoreBytes / 16;  // 16 columns further

// d (+)= a * b for the warpgroup: A 64 x 16 from registers (each warp its 16 rows, mma.m16n8k16's
// fragment order), B 16 x 32 from shared memory, fp32 accumulators in m16n8's C order per 8 columns.
#define DS2RT_WGMMA_D "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}"
#define DS2RT_WGMMA_OPERANDS                                                                                    \
  : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), \
    "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])                    \
  : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b.low), "r"(b.high), "n"(Step * kStepWords), "n"(Step > 0)
// The descriptor is assembled inside the asm from its base and the step (an immediate): sixteen
// 64-bit descriptors computed ahead would take 32 registers for the whole loop.
#define DS2RT_WGMMA_PROLOGUE                                         \
  "{\n\t.reg .pred p;\n\t.reg .b32 low;\n\t.reg .b64 desc;\n\t" \
  "setp.ne.b32 p, %23, 0;\n\tadd.u32 low, %20, %22;\n\tmov.b64 desc, {low, %21};\n\t"
constexpr int kAccumulators = kRows * kHalf / 128;  // per thread
template <typename T, int Step>
__device__ __forceinline__ void wgmma64x32(float (&d)[kAccumulators], const uint4& a, HDescriptor b) {
  if constexpr (std::is_same_v<T, __half>)
    asm volatile(DS2RT_WGMMA_PROLOGUE "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 " DS2RT_WGMMA_D
                 ", {%16, %17, %18, %19}, desc, p, 1, 1, 0;\n\t}" DS2RT_WGMMA_OPERANDS);
  else
    asm volatile(DS2RT_WGMMA_PROLOGUE "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 " DS2RT_WGMMA_D
                 ", {%16, %17, %18, %19}, desc, p, 1, 1, 0;\n\t}" DS2RT_WGMMA_OPERANDS);
}

template <typename T, int Step, int Steps>
__device__ __forceinline__ void wgmmaChain(float (&d)[kAccumulators], const uint4 (&a)[Steps], HDescriptor b) {
  if constexpr (Step < Steps) {
    wgmma64x32<T, Step>(d, a[Step], b);
    wgmmaChain<T, Step + 1, Steps>(d, a, b);
  }
}
#undef DS2RT_WGMMA_D
#undef DS2RT_WGMMA_OPERANDS
#undef DS2RT_WGMMA_PROLOGUE
// This warp's A fragments: row tile warp % 4 of the block's `row_tiles` (zero beyond them), the
// warpgroup's quarter of the column tiles. `block_tiles`: the block's tiles, as tileForMma lays them out.
template <int Fragments>
__device__ __forceinline__ void loadFragments(uint4 (&r_frag)[Fragments], const uint4* block_tiles, int row_tiles) {
  const int lane = threadIdx.x % 32, row_tile = threadIdx.x / 32 % 4, warpgroup = threadIdx.x / 128;
  const int column_tiles = Fragments * kWarpgroups;
#pragma unroll
  for (int i = 0; i < Fragments; ++i)
    r_frag[i] = row_tile < row_tiles ? block_tiles[(row_tile * column_tiles + warpgroup * Fragments + i) * 32 + lane]
                                     : make_uint4(0, 0, 0, 0);
}

// The warpgroup's partial products R[:, its quarter] * h[its quarter, :] for one half into its slice
// of `partial_s` (32 utterances x kPartialStride floats each; the four slices sum to R h). h_s: the
// half's h, as clusterHIndex lays it out.
template <typename T, int Fragments>
__device__ __forceinline__ void warpgroupProducts(float* partial_s, const uint4 (&r_frag)[Fragments], const T* h_s) {
  const int lane = threadIdx.x % 32, row_tile = threadIdx.x / 32 % 4, warpgroup = threadIdx.x / 128;
  const int group = lane / 4, pair = (lane % 4) * 2;
  float acc[kAccumulators] = {};
  asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
  wgmmaChain<T, 0, Fragments>(acc, r_frag, hDescriptor(h_s + warpgroup * Fragments * 16 * kHalf));
  asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
  asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
  // Accumulators: per 8 utterances, rows group and group + 8 of the warp's tile, utterances pair, pair + 1.
  float* out = partial_s + warpgroup * kHalf * kPartialStride;
  const int row = row_tile * 16 + group;
#pragma unroll
  for (int n8 = 0; n8 < kHalf / 8; ++n8) {
    const int b = n8 * 8 + pair;
    out[b * kPartialStride + row] = acc[4 * n8];
    out[(b + 1) * kPartialStride + row] = acc[4 * n8 + 1];
    out[b * kPartialStride + row + 8] = acc[4 * n8 + 2];
    out[(b + 1) * kPartialStride + row + 8] = acc[4 * n8 + 3];
  }
}

// (R h)[row] for the half's utterance b: the four warpgroups' partial sums (warpgroupProducts).
__device__ __forceinline__ float blockProduct(const float* partial_s, int b, int row) {
  float sum = 0;
#pragma unroll
  for (int q = 0; q < kWarpgroups; ++q) sum += partial_s[(q * kHalf + b) * kPartialStride + row];
  return sum;
}

// The utterance that is the i-th of a half (the halves take every other utterance).
__device__ __forceinline__ int halfUtterance(int half, int i) { return 2 * i + half; }

// The compute warps' own barrier (the exchange warp runs its own loop meanwhile).
__device__ __forceinline__ void computeBarrier() { asm volatile("bar.sync 1, %0;" ::"n"(kComputeThreads) : "memory"); }
#endif

// T holds R and h; Out is the layer's output type (T, or float for a tf32 layer). Gates: 4 (LSTM)
// or 3 (GRU) compiles that cell alone into the step; 0 reads r.gates and r.cell. Fragments: H / 64.
template <typename T, typename Out, int Gates, int Fragments>
__global__ void __launch_bounds__(kClusterThreads, 1) clusterKernel(ClusterArgs a) {
#if DS2RT_CLUSTER_DEVICE_CODE
  extern __shared__ __align__(1024) unsigned char shared[];
  const RecurrenceArgs& r = a.r;
  const int max_len = maxLength(r);
  if (max_len == 0) return;  // (every block: the plan's trial launch has no utterances)
  const int tid = threadIdx.x, warpgroup = tid / 128;
  const int units = Gates ? unitsPerBlock(Gates) : a.units, gates = Gates ? Gates : r.gates;
  const int row_tiles = (gates * units + 15) / 16;
  const int64_t h = r.h, quarter = h / kWarpgroups, column_tiles = h / 16;
  const int dir = blockIdx.x / a.blocks_per_direction, block = blockIdx.x % a.blocks_per_direction;
  const int first_unit = block * units;
  // The exchange has a lane per direction and half: its counter, and its h buffer per step parity.
  // Half 0 holds the even utterances, half 1 the odd ones (halfUtterance): both at most 32, both in
  // flight from 2 utterances on, and no register spent on where the halves meet.
  const int halves = r.n > 1 ? 2 : 1, lanes = r.dirs * 2;
  const int64_t half_bytes = h * kHalf * sizeof(T);
  const auto exchangeBuffer = [&](int k, int half) {
    return static_cast<char*>(a.h_exchange) + ((k % 2) * lanes + dir * 2 + half) * half_bytes;
  };

  T* h_s = reinterpret_cast<T*>(shared);  // two halves of 32 utterances x H in the core-matrix layout
  float* partial_s = reinterpret_cast<float*>(shared + 2 * half_bytes);  // 4 x 32 x kPartialStride
  float* x_s = partial_s + kWarpgroups * kHalf * kPartialStride;  // [half][cell][gate][thread]
  auto* landed = reinterpret_cast<uint64_t*>(x_s + 2 * kCellsPerThread * 4 * kComputeThreads);  // [half][quarter]

  if (tid == 0) {
    for (int i = 0; i < 2 * kWarpgroups; ++i)
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(sharedAddress(landed + i)) : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  clusterSync();  // no peer copies into this block before its barriers exist

  if (tid >= kComputeThreads) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kExchangeRegisters));
    // The exchange warpgroup (its first thread): for each step and half, once every block of the direction
    // has published the half's h, this block's share of each quarter's copy, columns of core matrices
    // [first, end) of the quarter, into the whole cluster. The half's barriers of step k - 1 have
    // completed by then: this block published that step after its products of it.
    if (tid == kComputeThreads) {
      const int64_t quarter_columns = quarter / 8;
      const unsigned rank = clusterRank();
      const int64_t first_column = clusterShareBegin(rank, a.cluster, quarter_columns);
      const int64_t end_column = clusterShareBegin(rank + 1, a.cluster, quarter_columns);
      const auto mask = static_cast<unsigned short>((1u << a.cluster) - 1);
      for (int k = 0; k < max_len; ++k)
        for (int half = 0; half < halves; ++half) {
          while (loadAcquire(a.published + dir * 2 + half) < static_cast<unsigned>(k * a.blocks_per_direction)) {
          }
          // Other SMs' ordinary stores wrote these words; the copy reads them through the async proxy.
          asm volatile("fence.proxy.async.global;" ::: "memory");
          const char* h_in = exchangeBuffer(k, half);
          for (int q = 0; q < kWarpgroups; ++q) {
            uint64_t* bar = landed + half * kWarpgroups + q;
            expectBytes(bar, static_cast<unsigned>(half_bytes / kWarpgroups));
            const int64_t offset = q * (half_bytes / kWarpgroups) + first_column * kCoreBytes;
            if (end_column > first_column)
              copyToCluster(shared + half * half_bytes + offset, h_in + offset,
                            static_cast<unsigned>((end_column - first_column) * kCoreBytes), bar, mask);
          }
        }
    }
    __syncwarp();
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kComputeRegisters));
    uint4 r_frag[Fragments];
    loadFragments(r_frag, a.weights + static_cast<int64_t>(blockIdx.x) * row_tiles * column_tiles * 32, row_tiles);

    // The cells this thread owns, the same units in both halves: unit u = c % units, utterance
    // c / units of the half (c = tid + i * threads). Length 0: outside the batch or H (its h stays the
    // buffers' zero). Offsets are recomputed each step (32-bit): registers are short.
    const bool reverse = r.reverse_only || dir == 1;
    // Cells a thread has in a half, known at compile time where the cell is (LSTM: 1, GRU: 2).
    constexpr int kCells = Gates ? (unitsPerBlock(Gates) * kHalf + kComputeThreads - 1) / kComputeThreads : kCellsPerThread;
    const int gh = gates * static_cast<int>(h);
    const int64_t projection_step = r.n * r.dirs * gh, output_step = r.n * r.out_width;
    int len[2][kCells];
    float b_hn[kCells];  // GRU's hidden bias of the cell's unit (the reset gate scales it: not in P)
#pragma unroll
    for (int i = 0; i < kCells; ++i) {
      const int c = tid + i * kComputeThreads, u = c % units, j = first_unit + u;
      const bool inside = c < units * kHalf && j < h;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int b = halfUtterance(half, c / units);
        len[half][i] = inside && b < r.n ? r.lengths[b] : 0;
      }
      b_hn[i] = inside && r.hidden_bias ? r.hidden_bias[dir * h + j] : 0.0f;
    }
    float cell_h[2][kCells] = {}, cell_c[2][kCells] = {};
    PhaseTrace trace(a.trace);

    // Issues the input projections of step k's cells of a half (one cp.async group, empty past the end).
    const auto prefetch = [&](int k, auto half_constant) {
      constexpr int half = decltype(half_constant)::value;
#pragma unroll
      for (int i = 0; i < kCells; ++i) {
        if (k >= len[half][i]) continue;
        const int c = tid + i * kComputeThreads, b = halfUtterance(half, c / units);
        const int64_t t = reverse ? len[half][i] - 1 - k : k;
        const float* p = r.projection + t * projection_step + ((b * r.dirs + dir) * gh + first_unit + c % units);
#pragma unroll
        for (int g = 0; g < 4; ++g)
          if (g < gates) copyWordAsync(x_s + ((half * kCellsPerThread + i) * 4 + g) * kComputeThreads + tid, p + g * h);
      }
      asm volatile("cp.async.commit_group;" ::: "memory");
    };
    // One half's step: products, cells, publication. The next item's projections are in flight meanwhile.
    const auto run = [&](int k, auto half_constant) {
      constexpr int half = decltype(half_constant)::value;
      if (half == 0 && halves == 2)
        prefetch(k, std::integral_constant<int, 1>{});
      else
        prefetch(k + 1, std::integral_constant<int, 0>{});
      trace.lap(0);
      waitPhase(landed + half * kWarpgroups + warpgroup, k & 1);
      __syncwarp();  // wgmma's .aligned forms need the whole warp converged
      trace.lap(1);
      warpgroupProducts<T, Fragments>(partial_s, r_frag, h_s + half * h * kHalf);
      computeBarrier();
      trace.lap(2);
      asm volatile("cp.async.wait_group 1;" ::: "memory");  // this item's projections (this thread's own)
      trace.lap(3);
      T* h_out = reinterpret_cast<T*>(exchangeBuffer(k + 1, half));
#pragma unroll
      for (int i = 0; i < kCells; ++i) {
        if (len[half][i] == 0) continue;
        const int c = tid + i * kComputeThreads, u = c % units, b = c / units;
        if (k < len[half][i]) {
          float rec[4] = {0, 0, 0, 0}, x[4] = {0, 0, 0, 0};
#pragma unroll
          for (int g = 0; g < 4; ++g)
            if (g < gates) {
              x[g] = x_s[((half * kCellsPerThread + i) * 4 + g) * kComputeThreads + tid];
              rec[g] = blockProduct(partial_s, b, g * units + u);
            }
          cell_h[half][i] = cellStep<true, Gates>(r.cell, x, rec, b_hn[i], cell_h[half][i], cell_c[half][i]);
        }
        h_out[clusterHIndex(b, first_unit + u)] = fromFloat<T>(cell_h[half][i]);  // a finished utterance repeats its last h
      }
      trace.lapAfter(4, cell_h[half][0]);
      asm volatile("fence.proxy.async.global;" ::: "memory");  // the copies read these stores through the async proxy
      computeBarrier();
      if (tid == 0) releaseAdd(a.published + dir * 2 + half);  // after the barrier: orders the block's h stores before it
      trace.lap(5);
#pragma unroll
      for (int i = 0; i < kCells; ++i) {
        if (k >= len[half][i]) continue;
        const int c = tid + i * kComputeThreads;
        const int64_t t = reverse ? len[half][i] - 1 - k : k;
        static_cast<Out*>(r.output)[t * output_step + halfUtterance(half, c / units) * r.out_width + dir * r.column_stride +
                                    first_unit + c % units] = fromFloat<Out>(cell_h[half][i]);
      }
      trace.lap(6);
    };

    prefetch(0, std::integral_constant<int, 0>{});
    for (int k = 0; k < max_len; ++k) {
      run(k, std::integral_constant<int, 0>{});
      if (halves == 2) run(k, std::integral_constant<int, 1>{});
    }
  }
  __syncthreads();
  clusterSync();  // no block leaves while copies into its peers are in flight
#endif
}

// One block's products alone, h given (the tests check them against the CPU: clusterBlockProducts).
template <typename T, int Fragments>
__global__ void __launch_bounds__(kComputeThreads, 1)
    clusterProductsKernel(const uint4* block_tiles, int row_tiles, const T* h, float* products) {
#if DS2RT_CLUSTER_DEVICE_CODE
  extern __shared__ __align__(1024) unsigned char shared[];
  constexpr int kHidden = Fragments * 16 * kWarpgroups;
  T* h_s = reinterpret_cast<T*>(shared);  // both halves
  float* partial_s = reinterpret_cast<float*>(shared + 2 * kHidden * kHalf * sizeof(T));
  uint4 r_frag[Fragments];
  loadFragments(r_frag, block_tiles, row_tiles);
  for (int i = threadIdx.x; i < 2 * kHidden * kHalf; i += kComputeThreads) h_s[i] = h[i];
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // ordinary stores, read by the tensor cores
  __syncthreads();
  for (int half = 0; half < 2; ++half) {
    warpgroupProducts<T, Fragments>(partial_s, r_frag, h_s + half * kHidden * kHalf);
    __syncthreads();
    for (int i = threadIdx.x; i < kHalf * kRows; i += kComputeThreads) {
      const int b = i / kRows, row = i % kRows;
      products[(half * kHalf + b) * kRows + row] = blockProduct(partial_s, b, row);
    }
    __syncthreads();
  }
#endif
}

template <typename T>
void launchClusterProducts(int fragments, const void* tiles, int row_tiles, const void* h, float* out, size_t bytes) {
  const auto launch = [&](auto kernel) {
    DS2RT_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    kernel<<<1, kComputeThreads, bytes>>>(static_cast<const uint4*>(tiles), row_tiles, static_cast<const T*>(h), out);
  };
  if (fragments == 4) launch(clusterProductsKernel<T, 4>);
  else if (fragments == 8) launch(clusterProductsKernel<T, 8>);
  else launch(clusterProductsKernel<T, 16>);
  DS2RT_CUDA(cudaGetLastError());
}

void* clusterKernelFor(DataType products, DataType output, int gates, int64_t hidden) {
  const int fragments = fragmentsFor(hidden);
  return kernelForTypes(products, output, [&](auto t, auto out) {
    return kernelForGates(gates, [&](auto g) -> void* {
      using T = decltype(t);
      using Out = decltype(out);
      constexpr int kGates = decltype(g)::value;
      if (fragments == 4) return reinterpret_cast<void*>(&clusterKernel<T, Out, kGates, 4>);
      if (fragments == 8) return reinterpret_cast<void*>(&clusterKernel<T, Out, kGates, 8>);
      return reinterpret_cast<void*>(&clusterKernel<T, Out, kGates, 16>);
    });
  });
}

// A launch of `blocks` blocks in clusters of `cluster`, with `attributes[0]` set to that cluster
// dimension (further attributes are the caller's).
template <int Attributes>
cudaLaunchConfig_t clusterLaunch(cudaLaunchAttribute (&attributes)[Attributes], int blocks, int cluster,
                                 size_t shared_bytes, cudaStream_t stream) {
  attributes[0].id = cudaLaunchAttributeClusterDimension;
  attributes[0].val.clusterDim.x = cluster;
  attributes[0].val.clusterDim.y = 1;
  attributes[0].val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(blocks);
  config.blockDim = dim3(kClusterThreads);
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = attributes;
  config.numAttrs = Attributes;
  return config;
}

cudaError_t launchClusterKernel(void* kernel, ClusterArgs& a, int blocks, int cluster, size_t shared_bytes,
                                cudaStream_t stream) {
  cudaLaunchAttribute attributes[2] = {};
  attributes[1].id = cudaLaunchAttributeCooperative;  // every block resident at once, or no launch
  attributes[1].val.cooperative = 1;
  const cudaLaunchConfig_t config = clusterLaunch(attributes, blocks, cluster, shared_bytes, stream);
  void* params[] = {&a};
  return cudaLaunchKernelExC(&config, kernel, params);
}

// Whether a device of `compute_capability` (major * 10 + minor) runs this file's sm_90a code: 9.0
// exactly, and a build that compiled it (CMake adds DS2RT_CLUSTER_SM90A where the architectures include 90).
bool clusterKernelAvailable(int compute_capability) {
#if DS2RT_CLUSTER_SM90A
  return compute_capability == 90;
#else
  (void)compute_capability;
  return false;
#endif
}

// A launch without utterances (the kernel returns at once): whether the driver takes a cooperative
// cluster launch of this shape. On a stream of its own, so that no other stream's capture is disturbed.
bool trialLaunch(void* kernel, int dirs, int units, int per_direction, int cluster, size_t bytes) {
  ClusterArgs trial{};
  trial.r.dirs = dirs;
  trial.units = units;
  trial.blocks_per_direction = per_direction;
  trial.cluster = cluster;
  cudaStream_t stream = nullptr;
  DS2RT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaError_t error = launchClusterKernel(kernel, trial, per_direction * dirs, cluster, bytes, stream);
  if (error == cudaSuccess) error = cudaStreamSynchronize(stream);
  const bool launched = error == cudaSuccess;
  if (!launched) {
    (void)cudaGetLastError();
    if (std::getenv("DS2RT_RNN_TRACE"))
      std::fprintf(stderr, "cluster RNN kernel: a cooperative launch in clusters of %d failed: %s\n", cluster,
                   cudaGetErrorString(error));
  }
  DS2RT_CUDA(cudaStreamDestroy(stream));
  return launched;
}

}  // namespace

ClusterGeometry persistent::clusterGeometry(int gates, int64_t hidden, DataType products, size_t shared_limit) {
  ClusterGeometry g;
  // Each warpgroup's quarter of the columns is whole 16-column tiles, as many as an instantiation has.
  const int64_t fragments = fragmentsFor(hidden);
  if (hidden % (16 * kWarpgroups) != 0 ||
      std::find(std::begin(kFragmentCounts), std::end(kFragmentCounts), fragments) == std::end(kFragmentCounts))
    return g;
  g.units = unitsPerBlock(gates);
  g.blocks_per_direction = static_cast<int>((hidden + g.units - 1) / g.units);
  g.shared_bytes = clusterSharedBytes(hidden, products);
  g.usable = g.shared_bytes <= shared_limit;
  return g;
}

PersistentPlan planCluster(RNNCell cell, bool linear_before_reset, int64_t hidden, int dirs, DataType type,
                           DataType products, const DeviceInfo& device) {
  PersistentPlan plan;
  if (products == DataType::kFloat32 || (cell == RNNCell::kGRU && !linear_before_reset)) return plan;
  if (!productsSupported(type, products) || !clusterKernelAvailable(device.compute_capability)) return plan;
  const int gates = gateCount(cell);
  const ClusterGeometry geometry = clusterGeometry(gates, hidden, products, device.shared_memory_per_block);
  const int units = geometry.units, per_direction = geometry.blocks_per_direction;
  const size_t bytes = geometry.shared_bytes;
  if (!geometry.usable || per_direction * dirs > device.sm_count) return plan;
  void* kernel = clusterKernelFor(products, type, gates, hidden);
  DS2RT_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  // The largest cluster (at most 8, dividing a direction's blocks) of which the GPU holds enough at once.
  for (int cluster = kMaxCluster; cluster >= 1 && !plan.usable; --cluster) {
    if (per_direction % cluster != 0) continue;
    cudaLaunchAttribute attributes[1] = {};
    const cudaLaunchConfig_t config = clusterLaunch(attributes, per_direction * dirs, cluster, bytes, nullptr);
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    if (clusters * cluster < per_direction * dirs) continue;
    // Cooperative, or not at all: the blocks wait for each other, so all must be resident at once, and
    // the occupancy just computed cannot promise that while other work (another context) runs too.
    if (!trialLaunch(kernel, dirs, units, per_direction, cluster, bytes)) continue;
    plan = {.usable = true, .blocks_per_direction = per_direction, .units_per_block = units,
            .max_batch = kClusterUtterances, .shared_bytes = bytes, .tensor_cores = true, .products = products,
            .cluster_size = cluster};
  }
  return plan;
}

std::vector<float> clusterBlockProducts(DataType products, int gates, int64_t hidden,
                                        const std::vector<float>& recurrent, const std::vector<float>& h,
                                        int compute_capability) {
  check(products == DataType::kFloat16 || products == DataType::kBFloat16, "cluster products are fp16 or bf16");
  check(recurrent.size() == static_cast<size_t>(gates * hidden * hidden), "R must be ", gates * hidden, " x ", hidden);
  check(h.size() == static_cast<size_t>(kClusterUtterances * hidden), "h must be ", kClusterUtterances, " x ", hidden);
  const ClusterGeometry geometry = clusterGeometry(gates, hidden, products, ~size_t{0});
  check(geometry.units > 0, "no cluster kernel for ", hidden, " units");
  if (!clusterKernelAvailable(compute_capability)) return {};
  const auto tiles = tileForMma(recurrent, gates, hidden, 1, geometry.units, geometry.blocks_per_direction);
  std::vector<float> h_tiled(h.size());  // two halves, each in the exchange's layout
  for (int64_t b = 0; b < kClusterUtterances; ++b)
    for (int64_t j = 0; j < hidden; ++j) h_tiled[b / kHalf * kHalf * hidden + clusterHIndex(b % kHalf, j)] = h[b * hidden + j];
  const DeviceMemory tiles_d = uploadFloats(tiles.data(), tiles.size(), products);
  const DeviceMemory h_d = uploadFloats(h_tiled.data(), h_tiled.size(), products);
  const DeviceMemory out_d = allocateDevice(static_cast<size_t>(kClusterUtterances) * kRows * sizeof(float));
  const int row_tiles = (gates * geometry.units + 15) / 16, fragments = fragmentsFor(hidden);
  const size_t bytes = hBytes(hidden, products) + kPartialBytes;
  if (products == DataType::kFloat16)
    launchClusterProducts<__half>(fragments, tiles_d.get(), row_tiles, h_d.get(), static_cast<float*>(out_d.get()), bytes);
  else
    launchClusterProducts<__nv_bfloat16>(fragments, tiles_d.get(), row_tiles, h_d.get(),
                                         static_cast<float*>(out_d.get()), bytes);
  std::vector<float> out(static_cast<size_t>(kClusterUtterances) * kRows);
  DS2RT_CUDA(cudaMemcpy(out.data(), out_d.get(), out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

// The exchange has a lane per direction and half (see ClusterArgs).
size_t clusterExchangeBytes(int dirs, int64_t hidden, DataType products) {
  return countedExchangeBytes(2 * dirs, kHalf, hidden, products);
}

void launchCluster(const RecurrenceArgs& args, const PersistentPlan& plan, const void* tiled_weights, void* exchange,
                   DataType type, cudaStream_t stream, unsigned long long* trace) {
  check(args.n <= plan.max_batch, "cluster persistent RNN kernel takes at most ", plan.max_batch, " utterances");
  ClusterArgs a{args,
                static_cast<const uint4*>(tiled_weights),
                exchange,
                exchangeCounters(exchange, 2 * args.dirs, kHalf, args.h, plan.products),
                plan.units_per_block,
                plan.blocks_per_direction,
                plan.cluster_size,
                trace};
  DS2RT_CUDA(cudaMemsetAsync(exchange, 0, clusterExchangeBytes(args.dirs, args.h, plan.products), stream));
  DS2RT_CUDA(launchClusterKernel(clusterKernelFor(plan.products, type, args.gates, args.h), a,
                                 plan.blocks_per_direction * args.dirs, plan.cluster_size,
                                 plan.shared_bytes, stream));
}

}  // namespace ds2rt::detail::cuda
