// The recurrent step of int8, bf16 and fp32 layers for many utterances at once, on CPUs with AMX:
// the product h W^T of all active rows on the tiles, then the cell in AVX-512 as in the fused steps.
// The own tile kernels (amx_gemm.h; fp32 as three bf16 products, bf16, int8 with the fused step's
// integer sums) give each thread of a direction its own units; oneDNN's matmul (weights in its blocked
// layout) is the fallback where those cannot run, on the direction's first thread. The fused steps
// stream all of W through the vector units once per row group; from 16 rows the tiles do the same
// product faster (minRowsTiles; oneDNN: minRows). Below that, and without AMX, the fused steps are the faster.
#pragma once

#include <cstdint>
#include <map>

#include <dnnl.hpp>

#include "cpu/amx_gemm.h"
#include "cpu/rnn_cell.h"

namespace ds2rt::detail::cpu {

class MatmulRecurrent {
 public:
  // Rows from which a step takes this path, by how many threads share the direction (the matmul
  // runs on the first of them). Measured on an AMX Xeon with 2 threads: a thread per direction
  // (1024-unit biLSTM layer, alternating runs): bf16 8 rows 1.4x the fused step, 32 rows 3.4x; int8
  // level at 8 rows, 16 rows 1.2-1.7x, 32 rows 1.3-1.6x. Two threads on one direction (whole
  // uni-GRU model): bf16 8 rows 0.8-0.9x, 16 rows 1.15-1.3x, 32 rows 1.3-1.5x; int8 32 rows
  // 0.94-1.2x (so never). More threads split the fused step finer than one core runs the matmul:
  // never there (not measured).
  static int64_t minRows(bool int8, int threads_per_direction) {
    if (threads_per_direction == 1) return int8 ? 16 : 8;
    if (threads_per_direction == 2 && !int8) return 16;
    return INT64_MAX;
  }

  // The own tile kernels, each thread its units. Measured on an AMX Xeon, a 1024-unit direction a
  // thread (bench/cpu_probes/recurrent_step.cpp fp32x3, ms a step): fp32 GRU 16 rows 0.69 against the
  // fused step's 0.86, 32 rows 0.71 against 1.43; LSTM 16 rows 0.85-0.93 against 1.04, 32 rows 0.93
  // against 1.98; at 8 rows the fused step is as fast or faster (it reads W at 23 GB/s, the tiles at
  // 18). Whole uni-GRU 1024 x 5 models at 32 x 10 s (two threads on its one direction): bf16 2,356 ->
  // 1,237 ms, int8 1,281 -> 968-983 against the fused step or oneDNN's matmul.
  static int64_t minRowsTiles(int threads_per_direction) { return threads_per_direction <= 2 ? 16 : INT64_MAX; }

  MatmulRecurrent() = default;
  // int8: `quantized`, the G*H x H recurrent matrix (canonical gates) as quantizeRows gives it, the
  // rows packRecurrentInt8 packs, so that the packed matrix's scales and zero-point offsets apply;
  // `tiles`: on the own AMX kernel (Int8TileGemm, each thread its units), else one oneDNN matmul.
  MatmulRecurrent(const int8_t* quantized, int gates, int64_t hidden, bool tiles = false);
  bool onTiles() const { return !tiles_.empty() || !int8_tiles_.empty(); }
  // bf16: `weight`, the same matrix in fp32, for oneDNN's matmul or (kTilesBF16) the own AMX kernel;
  // fp32 (kTilesBF16x3): the matrix as BF16x3Gemm's bf16 parts.
  enum class Kernel { kOneDnn, kTilesBF16, kTilesBF16x3 };
  MatmulRecurrent(const float* weight, int gates, int64_t hidden, Kernel kernel = Kernel::kOneDnn);

  // Per thread: oneDNN's stream, the primitives compiled per row count, the products.
  struct State {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    struct Compiled {
      dnnl::matmul matmul;  // empty: no AMX primitive takes the weights' layout for this row count
      dnnl::memory::desc scratchpad;
    };
    std::map<int64_t, Compiled> primitives;  // per row count
    std::vector<float> products;                 // rows x G*H (int32 for int8)
    std::vector<uint8_t> scratchpad;  // oneDNN's; fp32: BF16x3Gemm's workspace
  };
  // One time step of a.rows rows over all units (a.block_begin/end are ignored; fp32: the step of
  // the units of blocks [a.block_begin, a.block_end), each thread of a direction its own). int8: `packed`
  // gives the scales and offsets, a.h_quantized/h_scale the room for h; bf16: a.h_bf16 (depths as
  // the packed matrices'). False, with nothing done, when oneDNN offers no AMX primitive for this
  // row count that takes the weights as laid out: the caller runs the fused step then.
  bool step(State& state, const StepArgs& a, const PackedRecurrentInt8* packed) const;

 private:
  // The own tile kernels' step: each thread the products of its units, gate by gate.
  void stepOnTiles(State& state, const StepArgs& a, const PackedRecurrentInt8* packed) const;
  const State::Compiled& primitive(State& state, int64_t rows) const;
  dnnl::memory::desc source(int64_t rows) const;
  void reorder(const void* plain);  // W itself ({K, N} as "ba") into weights_desc_'s layout

  int gates_ = 0;
  int64_t hidden_ = 0, depth_ = 0;
  bool int8_ = false;
  dnnl::memory::desc weights_desc_;
  std::vector<uint8_t> weights_;  // in weights_desc_'s layout
  BF16x3Gemm tiles_;              // kTilesBF16 / kTilesBF16x3
  Int8TileGemm int8_tiles_;       // int8 on tiles
};

}  // namespace ds2rt::detail::cpu
