// The wide-batch persistent recurrent kernel (fp16/bf16, up to 32 utterances). As in the
// small-batch kernels, each block keeps its G*units rows of R in shared memory (in mma.m16n8k16's
// A-fragment order) for the whole sequence and both directions run at once. What changes with
// the batch: h of one direction is N x H values (64 KB at 32 x 1024 in fp16), too much to tag
// word by word, so it is published untagged in the activation type into one of two buffers
// (by step parity) and each block counts its publication on a per-direction counter; a block
// starts step k once the counter reaches k * blocks. It then copies all of h into shared memory
// (cp.async, one commit group per 256 columns) and multiplies each group as soon as it lands.
// Warps split the column tiles (8 groups): each multiplies all of the block's row tiles with all
// NT utterance tiles, so every A and B fragment is read from shared memory once per step (shared
// memory bandwidth bounds this loop) and the row tiles x NT accumulator chains are independent.
// The 8 groups' partial sums meet in shared memory.
// Double buffering is safe: a block writes buffer (k + 1) % 2 at step k only after every block has
// published step k - 1, which each did after it finished reading buffer (k + 1) % 2 = (k - 1) % 2.
#include <algorithm>

#include "cuda/rnn_persistent.cuh"

namespace ds2rt::detail::cuda {

namespace {

using namespace persistent;

constexpr int kWideThreads = 256;
constexpr int kWarps = kWideThreads / 32;
constexpr int kColumnGroups = kWarps;                      // each warp: every row and utterance, 1/8 of the columns
constexpr int kMaxRowTiles = 4;                            // 64 rows of R per block
constexpr int kMaxUnits = 16;                              // x 32 utterances = 2 cells per thread
constexpr int kCellsPerThread = kMaxUnits * kMaxWideBatch / kWideThreads;
constexpr int kChunkTiles = 16;                            // column tiles (of 16) per commit group of h

struct WideArgs {
  RecurrenceArgs r;
  const uint4* weights;   // per block: row_tiles x column_tiles x 32 lanes of A fragments
  void* h_exchange;       // 2 x dirs x kMaxWideBatch x H, activation type
  unsigned* published;    // dirs counters: blocks that have published their h, summed over steps
  int units, blocks_per_direction, row_tiles;
  unsigned long long* trace;
};

// 16 bytes from global (through L2 only: other SMs wrote them) into shared memory; zeros when !valid.
__device__ __forceinline__ void copyAsync(void* shared_dst, const void* global_src, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(shared_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(global_src), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void commitCopies() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// Waits until at most `pending` of this thread's newest commit groups are still in flight.
__device__ __forceinline__ void waitCopies(int pending) {
  switch (pending) {
    case 0: asm volatile("cp.async.wait_group 0;" ::: "memory"); break;
    case 1: asm volatile("cp.async.wait_group 1;" ::: "memory"); break;
    case 2: asm volatile("cp.async.wait_group 2;" ::: "memory"); break;
    default: asm volatile("cp.async.wait_group 3;" ::: "memory"); break;  // fewer than asked: still correct
  }
}

// Shared memory: the weight tiles, then one area used first for h (utterance rows padded by 8
// elements, so the 8 rows of a B fragment hit distinct banks), then for the column groups'
// partial sums (utterance-major, rows padded by 4 so the C-fragment stores of a warp hit distinct
// banks).
__host__ __device__ constexpr int64_t hStride(int64_t column_tiles) { return column_tiles * 16 + 8; }
__host__ __device__ constexpr int64_t partialStride(int row_tiles) { return row_tiles * 16 + 4; }
constexpr int64_t stageBytes(int row_tiles, int64_t column_tiles, int64_t element_bytes) {
  const int64_t h = kMaxWideBatch * hStride(column_tiles) * element_bytes;
  const int64_t partials = kColumnGroups * kMaxWideBatch * partialStride(row_tiles) * int64_t{sizeof(float)};
  return h > partials ? h : partials;
}

// NT: utterance tiles of 8; the block takes up to 8 * NT utterances. T holds R and h, Out is the
// layer's output type (T, or float for a tf32 layer: see planPersistent). Gates: 4 (LSTM) or 3
// (GRU) compiles that cell alone into the step; 0 reads r.gates and r.cell.
template <typename T, typename Out, int NT, int Gates>
__global__ void __launch_bounds__(kWideThreads, 1) wideKernel(WideArgs a) {
  constexpr int kColumns = NT * 8;
  extern __shared__ uint4 shared[];
  const RecurrenceArgs& r = a.r;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, group = lane / 4, pair = (lane % 4) * 2;
  const int units = a.units, row_tiles = a.row_tiles, gates = Gates ? Gates : r.gates;
  const int64_t h = r.h, column_tiles = (h + 15) / 16, chunks = (column_tiles + kChunkTiles - 1) / kChunkTiles;
  const int dir = blockIdx.x / a.blocks_per_direction, block = blockIdx.x % a.blocks_per_direction;
  const int64_t first_unit = static_cast<int64_t>(block) * units, tile_words = row_tiles * column_tiles * 32;

  uint4* w_s = shared;
  const int64_t h_stride = hStride(column_tiles);
  T* h_s = reinterpret_cast<T*>(shared + tile_words);    // kColumns x h_stride
  float* partial_s = reinterpret_cast<float*>(h_s);      // kColumnGroups x kColumns x partialStride
  {
    const uint4* src = a.weights + blockIdx.x * tile_words;
    for (int64_t i = tid; i < tile_words; i += kWideThreads) w_s[i] = src[i];
  }

  // The cells this thread owns: unit u = c % units, utterance b = c / units (units vary fastest,
  // so a warp's output and h stores are contiguous).
  const bool reverse = r.reverse_only || dir == 1;
  const int64_t gh = gates * h;
  struct Cell {
    int u = 0, b = 0, len = 0;
    bool valid = false;
    float h = 0.0f, c = 0.0f, b_hn = 0.0f;
  } cells[kCellsPerThread];
#pragma unroll
  for (int i = 0; i < kCellsPerThread; ++i) {
    const int c = tid + i * kWideThreads;
    Cell& cell = cells[i];
    cell.u = c % units;
    cell.b = c / units;
    cell.valid = cell.b < r.n && first_unit + cell.u < h && c < units * kColumns;
    if (!cell.valid) continue;
    cell.len = r.lengths[cell.b];
    if (r.hidden_bias) cell.b_hn = r.hidden_bias[dir * h + first_unit + cell.u];
  }
  const int max_len = maxLength(r);
  unsigned* published = a.published + dir;
  PhaseTrace trace(a.trace);
  __syncthreads();

  for (int k = 0; k < max_len; ++k) {
    float x[kCellsPerThread][4] = {};
#pragma unroll
    for (int i = 0; i < kCellsPerThread; ++i) {
      const Cell& cell = cells[i];
      if (!cell.valid || k >= cell.len) continue;
      const int64_t t = reverse ? cell.len - 1 - k : k, j = first_unit + cell.u;
      const float* p = r.projection + (t * r.n + cell.b) * r.dirs * gh + dir * gh + j;  // biases included
#pragma unroll
      for (int g = 0; g < 4; ++g)
        if (g < gates) x[i][g] = p[g * h];
    }

    if (tid == 0)
      while (loadAcquire(published) < static_cast<unsigned>(k * a.blocks_per_direction)) {
      }
    __syncthreads();
    trace.lap(0);
    trace.lap(1);  // (no separate block sync phase here)

    // All of h is requested at once, a commit group per chunk of columns; each chunk multiplies as
    // soon as it has landed, while the later ones are still on their way.
    const T* h_in = static_cast<const T*>(a.h_exchange) + ((k % 2) * r.dirs + dir) * kMaxWideBatch * h;
    constexpr int kPerPiece = 16 / sizeof(T);
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t first = chunk * kChunkTiles * 16, end = min(column_tiles, (chunk + 1) * kChunkTiles) * 16;
      const int pieces = static_cast<int>((end - first) / kPerPiece);  // per utterance
      for (int i = tid; i < kColumns * pieces; i += kWideThreads) {
        const int b = i / pieces;
        const int64_t col = first + (i % pieces) * kPerPiece;
        copyAsync(h_s + b * h_stride + col, h_in + b * h + (col < h ? col : 0), b < r.n && col < h);
      }
      commitCopies();
    }
    float acc[kMaxRowTiles][NT][4] = {};
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      waitCopies(static_cast<int>(chunks - 1 - chunk));
      __syncthreads();
#pragma unroll
      for (int local = warp; local < kChunkTiles; local += kColumnGroups) {
        const int64_t kt = chunk * kChunkTiles + local;
        if (kt >= column_tiles) break;
        uint4 frag[kMaxRowTiles];
#pragma unroll
        for (int mt = 0; mt < kMaxRowTiles; ++mt)
          if (mt < row_tiles) frag[mt] = w_s[(mt * column_tiles + kt) * 32 + lane];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const T* b_row = h_s + (nt * 8 + group) * h_stride + kt * 16 + pair;
          const unsigned b0 = *reinterpret_cast<const unsigned*>(b_row);
          const unsigned b1 = *reinterpret_cast<const unsigned*>(b_row + 8);
#pragma unroll
          for (int mt = 0; mt < kMaxRowTiles; ++mt)
            if (mt < row_tiles) mma16816<T>(acc[mt][nt], frag[mt], b0, b1);
        }
      }
    }
    __syncthreads();  // every warp is done with h before the partial sums take its place
    trace.lap(2);

    // C fragment: rows group and group + 8 of the tile, utterances pair and pair + 1.
    const int64_t stride = partialStride(row_tiles);
#pragma unroll
    for (int mt = 0; mt < kMaxRowTiles; ++mt)
      if (mt < row_tiles)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          float* out = partial_s + (warp * kColumns + nt * 8 + pair) * stride + mt * 16 + group;
          out[0] = acc[mt][nt][0];
          out[stride] = acc[mt][nt][1];
          out[8] = acc[mt][nt][2];
          out[stride + 8] = acc[mt][nt][3];
        }
    __syncthreads();

    T* h_out = static_cast<T*>(a.h_exchange) + (((k + 1) % 2) * r.dirs + dir) * kMaxWideBatch * h;
#pragma unroll
    for (int i = 0; i < kCellsPerThread; ++i) {
      Cell& cell = cells[i];
      if (!cell.valid) continue;
      const int64_t j = first_unit + cell.u;
      if (k < cell.len) {
        float rec[4] = {0, 0, 0, 0};
#pragma unroll
        for (int g = 0; g < 4; ++g)
          if (g < gates)
#pragma unroll
            for (int cg = 0; cg < kColumnGroups; ++cg)
              rec[g] += partial_s[(cg * kColumns + cell.b) * stride + g * units + cell.u];
        cell.h = cellStep<true, Gates>(r.cell, x[i], rec, cell.b_hn, cell.h, cell.c);
      }
      h_out[cell.b * h + j] = fromFloat<T>(cell.h);  // a finished utterance keeps publishing its last h
    }
    __syncthreads();
    if (tid == 0) releaseAdd(published);  // after the barrier: orders the whole block's h stores before it
    // The output frames after the publication: no other block waits for them.
#pragma unroll
    for (int i = 0; i < kCellsPerThread; ++i) {
      const Cell& cell = cells[i];
      if (!cell.valid || k >= cell.len) continue;
      const int64_t t = reverse ? cell.len - 1 - k : k;
      static_cast<Out*>(r.output)[(t * r.n + cell.b) * r.out_width + dir * r.column_stride + first_unit + cell.u] =
          fromFloat<Out>(cell.h);
    }
    trace.lap(3);
  }
}

void* wideKernelFor(DataType products, DataType output, int gates, int utterance_tiles) {
  return kernelForTypes(products, output, [&](auto t, auto out) {
    return kernelForGates(gates, [&](auto g) -> void* {
      using T = decltype(t);
      using Out = decltype(out);
      constexpr int kGates = decltype(g)::value;
      if (utterance_tiles == 1) return reinterpret_cast<void*>(&wideKernel<T, Out, 1, kGates>);
      if (utterance_tiles == 2) return reinterpret_cast<void*>(&wideKernel<T, Out, 2, kGates>);
      return reinterpret_cast<void*>(&wideKernel<T, Out, 4, kGates>);
    });
  });
}

int utteranceTiles(int64_t batch) { return batch <= 8 ? 1 : batch <= 16 ? 2 : 4; }

size_t wideSharedBytes(int row_tiles, int64_t hidden, DataType type) {
  const int64_t column_tiles = (hidden + 15) / 16;
  const int64_t weights = row_tiles * column_tiles * 32 * static_cast<int64_t>(sizeof(uint4));
  return static_cast<size_t>(weights + stageBytes(row_tiles, column_tiles, sizeOf(type)));
}

}  // namespace

PersistentPlan planWide(RNNCell cell, bool linear_before_reset, int64_t hidden, int dirs, DataType type,
                        DataType products, int sm_count, size_t shared_limit) {
  PersistentPlan plan;
  const int gates = gateCount(cell);
  // fp32 has no exact tensor-core mode; a GRU without linear-before-reset needs a second exchange.
  if (products == DataType::kFloat32 || (cell == RNNCell::kGRU && !linear_before_reset)) return plan;
  if (!productsSupported(type, products)) return plan;
  if (hidden % 8 != 0) return plan;  // h rows are copied 16 bytes at a time
  // The fewest row tiles per block (each block's time per step), then the fewest blocks (less h
  // traffic through L2 and fewer arrivals to wait for).
  for (int row_tiles = 1; row_tiles <= kMaxRowTiles && !plan.usable; ++row_tiles)
    for (int units = std::min(kMaxUnits, row_tiles * 16 / gates); units >= 1; --units) {
      if ((gates * units + 15) / 16 != row_tiles) break;
      const int per_direction = static_cast<int>((hidden + units - 1) / units);
      if (per_direction * dirs > sm_count) break;
      const size_t bytes = wideSharedBytes(row_tiles, hidden, products);
      if (bytes > shared_limit) break;
      bool resident = true;
      for (int nt : {1, 2, 4})
        resident = resident &&
                   coResident(wideKernelFor(products, type, gates, nt), kWideThreads, bytes, per_direction * dirs, sm_count);
      if (!resident) break;
      plan = {.usable = true, .blocks_per_direction = per_direction, .units_per_block = units,
              .max_batch = kMaxWideBatch, .shared_bytes = bytes, .tensor_cores = true, .products = products};
      break;
    }
  return plan;
}

size_t wideExchangeBytes(int dirs, int64_t hidden, DataType type) {
  return countedExchangeBytes(dirs, kMaxWideBatch, hidden, type);
}

void launchWide(const RecurrenceArgs& args, const PersistentPlan& plan, const void* tiled_weights, void* exchange,
                DataType type, cudaStream_t stream, unsigned long long* trace) {
  check(args.n <= plan.max_batch, "wide persistent RNN kernel takes at most ", plan.max_batch, " utterances");
  WideArgs a{args,
             static_cast<const uint4*>(tiled_weights),
             exchange,
             exchangeCounters(exchange, args.dirs, kMaxWideBatch, args.h, plan.products),
             plan.units_per_block,
             plan.blocks_per_direction,
             (args.gates * plan.units_per_block + 15) / 16,
             trace};
  DS2RT_CUDA(cudaMemsetAsync(exchange, 0, wideExchangeBytes(args.dirs, args.h, plan.products), stream));
  void* params[] = {&a};
  const dim3 grid(plan.blocks_per_direction * args.dirs);
  DS2RT_CUDA(cudaLaunchCooperativeKernel(wideKernelFor(plan.products, type, args.gates, utteranceTiles(args.n)), grid,
                                         dim3(kWideThreads), params, plan.shared_bytes, stream));
}

}  // namespace ds2rt::detail::cuda
