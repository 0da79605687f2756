// The two recurrent implementations behind the CUDA RNN layer:
//  - persistent: one cooperative kernel per layer and both directions; each block keeps a slice
//    of the recurrent weights in shared memory for the whole sequence, only h moves between
//    steps (through L2), one flag barrier per direction and step; a second such kernel takes
//    larger batches, up to 32 (fp16/bf16), and on Hopper a third one up to 64 (wgmma products,
//    h copied once per thread-block cluster and multicast to its blocks);
//  - per-step: a cuBLASLt product of h with R, then a cell kernel, for every step (any size).
// Both take the input projection P (float, T x N x dirs*G*H). The persistent kernels take it with
// the biases added (by the projection GEMM's epilogue; all but GRU's b_hn, which the reset gate
// multiplies); the per-step cell kernel adds them itself (`bias`).
#pragma once

#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/rnn_cell.cuh"

namespace ds2rt::detail::cuda {

struct RecurrenceArgs {
  CellParams cell;
  int gates = 4;
  int64_t t = 0, n = 0, h = 0;
  int dirs = 1;
  bool reverse_only = false;       // a single direction running backwards
  const float* projection = nullptr;  // T x N x dirs*G*H
  const float* bias = nullptr;        // dirs*G*H, the biases not yet in P (per-step path only)
  const float* hidden_bias = nullptr; // dirs*H, GRU b_hn (linear-before-reset only)
  const int32_t* lengths = nullptr;   // N
  void* output = nullptr;             // T x N x out_width, activation type
  int64_t out_width = 0;
  int64_t column_stride = 0;          // column offset of direction d is d * column_stride
};

// Persistent kernel geometry for one layer, decided when the engine is built.
struct PersistentPlan {
  bool usable = false;
  int blocks_per_direction = 0;
  int units_per_block = 0;
  int max_batch = 0;
  size_t shared_bytes = 0;
  // CUDA-core kernel: rows of each block's R kept in shared memory; the rest (a 1024-unit fp32
  // biLSTM's 64 rows do not all fit) are read from L2 every step.
  int resident_rows = 0;
  bool tensor_cores = false;  // mma.sync products (fp16/bf16, two directions); else CUDA cores
  DataType products = DataType::kFloat32;  // the type R and h are held in on chip
  int cluster_size = 0;  // cluster kernel: blocks per thread-block cluster (they share each copy of h)
};

// `type`: the layer's activations; `products`: what R (and in the tensor-core kernels h) are held
// in on chip, `type` itself or fp16 for a tf32 layer whose h is bounded (the caller checks R fits
// fp16): fp16 has TF32's 10-bit mantissa, and with fp32 R a 1024-unit biLSTM would not fit on chip.
PersistentPlan planPersistent(RNNCell cell, bool linear_before_reset, int64_t hidden, int dirs, DataType type,
                              DataType products, int sm_count, size_t shared_limit);
// Rearranges R (dirs x G*H x H, canonical) into the per-block tiles the persistent kernel loads.
std::vector<float> tilePersistentWeights(const std::vector<float>& recurrent, int gates, int64_t hidden, int dirs,
                                         const PersistentPlan& plan);
size_t persistentExchangeBytes(int dirs, int64_t hidden);

// The wide-batch persistent kernel (fp16/bf16, up to 32 utterances; rnn_persistent_wide.cu): h is
// exchanged untagged in the activation type with one arrival counter per direction and step. Its
// weight tiles have the tensor-core kernel's layout for its own units_per_block.
PersistentPlan planWide(RNNCell cell, bool linear_before_reset, int64_t hidden, int dirs, DataType type,
                        DataType products, int sm_count, size_t shared_limit);
size_t wideExchangeBytes(int dirs, int64_t hidden, DataType products);
void launchWide(const RecurrenceArgs& args, const PersistentPlan& plan, const void* tiled_weights, void* exchange,
                DataType type, cudaStream_t stream, unsigned long long* trace = nullptr);
// The cluster persistent kernel (Hopper only, fp16/bf16, up to 64 utterances; rnn_persistent_cluster.cu):
// h is copied once per thread-block cluster and multicast to its blocks, the products are wgmma with
// R in registers. Its weight tiles have the tensor-core kernel's layout for its own units_per_block.
PersistentPlan planCluster(RNNCell cell, bool linear_before_reset, int64_t hidden, int dirs, DataType type,
                           DataType products, const DeviceInfo& device);
size_t clusterExchangeBytes(int dirs, int64_t hidden, DataType products);
// The cluster kernel's products for block 0 alone (tests): out[b * 64 + row] = sum_k R[row][k] h[b][k]
// for the block's 64 rows (gate g's unit u is row g * units + u; R: G*H x H of one direction; h: 64 x H).
// Empty where the kernel cannot run (`compute_capability` not 90, or not compiled for sm_90a).
std::vector<float> clusterBlockProducts(DataType products, int gates, int64_t hidden,
                                        const std::vector<float>& recurrent, const std::vector<float>& h,
                                        int compute_capability);
void launchCluster(const RecurrenceArgs& args, const PersistentPlan& plan, const void* tiled_weights, void* exchange,
                   DataType type, cudaStream_t stream, unsigned long long* trace = nullptr);
// A stack of one-direction layers two at a time (rnn_persistent.cuh, StackArgs), for batches up to
// stackedBatch(): the shared memory a launch needs for layers of `plan`, 0 where it cannot run.
size_t planStacked(const PersistentPlan& plan, int gates, int64_t hidden, DataType type, int sm_count,
                   size_t shared_limit);
int stackedBatch();
// Whether a stack of such layers multiplies the next layer's input weights in warps of their own at batch 1.
bool stackedEmitWarps(const PersistentPlan& plan, int gates, int64_t hidden);
// One layer of a stacked launch: its arguments (a null output: nobody reads it), R tiles, and the
// next layer's input weights (tiled as R, null for none), biases, and where its projection goes:
// the first layer's, stackedHandoffBytes() of (step, value) words, which the second layer reads
// instead of args.projection; the second's, T x N x G*H floats for the next launch.
struct StackedLayer {
  RecurrenceArgs args;
  const void* tiles = nullptr;
  const void* next_input = nullptr;
  const float* next_bias = nullptr;
  void* emitted = nullptr;
};
size_t stackedHandoffBytes(const RecurrenceArgs& args);
void launchStacked(const StackedLayer& first, const StackedLayer& second, const PersistentPlan& plan,
                   size_t shared_bytes, void* exchange, DataType type, cudaStream_t stream,
                   unsigned long long* trace = nullptr);
void launchPersistent(const RecurrenceArgs& args, const PersistentPlan& plan, const void* tiled_weights,
                      unsigned long long* exchange, DataType type, cudaStream_t stream,
                      unsigned long long* trace = nullptr);
// Whether the persistent kernels were compiled with their phase trace (-DDS2RT_RNN_TRACE=ON).
bool persistentTraceCompiled();

// Per-step cell kernel (after the recurrent product `recurrent` = h R^T, float dirs x N x G*H).
// Reads and writes the float state h/c (dirs x N x H) and writes h in the activation type to
// `h_typed` for the next product.
void launchCellStep(const RecurrenceArgs& args, int64_t step, const float* recurrent, float* h, float* c,
                    void* h_typed, DataType type, cudaStream_t stream);
// GRU without linear-before-reset: reset * h in the activation type, input of the second product.
void launchResetHidden(const RecurrenceArgs& args, int64_t step, const float* recurrent, const float* h,
                       void* reset_hidden, DataType type, cudaStream_t stream);

// out = sum of the two direction halves of `concat` (T x N x 2H) -> T x N x H.
void launchSumDirections(const void* concat, void* out, int64_t rows, int64_t h, DataType type, cudaStream_t stream);

}  // namespace ds2rt::detail::cuda
