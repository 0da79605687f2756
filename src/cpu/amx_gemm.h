// The own AMX tile GEMMs: BF16x3Gemm (fp32 as three bf16 products, or one bf16 product) and
// Int8TileGemm (int8 with exact int32 sums).
//
// fp32 GEMMs on AMX tiles: each fp32 operand is split into a bf16 high part and a bf16 remainder,
// x = x_hi + x_lo, and C = A_hi W_hi + A_lo W_hi + A_hi W_lo with fp32 sums (the dropped A_lo W_lo
// and the remainders' rounding are each ~2^-18 of a product). On an AMX core the three bf16 products
// run about twice as fast as oneDNN's fp32 sgemm, at 4.4e-6 relative L2 against double (sgemm
// 3.4e-7): fp32 engines use it where the CPU has AMX for LSTM/GRU input projections, fully connected
// layers and recurrent steps of many utterances (bench/RESULTS.md, "fp32 GEMMs as three bf16
// products on AMX tiles"; bench/cpu_probes/bf16x3_gemm.cpp).
// DS2RT_CPU_FP32_GEMM=sgemm keeps oneDNN's IEEE sgemm (auto and bf16x3 are the other values).
// Without the split (one bf16 product) the same kernel is a bf16 GEMM for the int8 and bf16 engines'
// input projections on AMX (faster than oneDNN 2.6's bf16 matmul there: RESULTS), and bf16 engines'
// recurrent steps of many utterances; Int8TileGemm is its int8 sibling for int8 engines' steps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace ds2rt::detail::cpu {

// AMX-BF16 in cpuid, the tiles granted to this process by the kernel, and not turned off by
// DS2RT_CPU_FP32_GEMM=sgemm (any value but auto, sgemm and bf16x3 is an error).
bool useBF16x3Gemm();
// Tests: pins useBF16x3Gemm()'s answer (false always works; true only where the CPU has AMX;
// nullopt: the environment's again).
void forceBF16x3GemmForTesting(std::optional<bool> use);
bool amxTilesUsable();
// GEMMs shallower than this (K) gain nothing on the tiles, whose K step is 32: they keep sgemm.
constexpr int64_t kTileMinDepth = 64;
bool amxInt8Usable();  // and AMX-INT8 (Int8TileGemm)

// C (M x N, row stride ldc) = A (M x K, row stride lda) * W^T, W (N x K) packed at construction.
// Immutable; run() may be called from several contexts at once.
class BF16x3Gemm {
 public:
  BF16x3Gemm() = default;
  // `weights`: a row-major N x K float matrix (copied). `split` false: W and A in bf16, one product.
  BF16x3Gemm(const float* weights, int64_t n, int64_t k, bool split = true);
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  bool empty() const { return n_ == 0; }

  // Bytes of workspace run() needs for `m` rows (A's two bf16 parts, at most 2048 rows at a time).
  size_t workspaceBytes(int64_t m) const;
  // On OpenMP's threads, or on the calling thread alone (`parallel` false: a recurrent step inside
  // its direction's thread). `workspace`: workspaceBytes(m) bytes, 64-byte aligned.
  void run(const float* a, int64_t lda, int64_t m, float* c, int64_t ldc, void* workspace, bool parallel = true) const;
  // On the calling thread, the columns of units [unit_begin, unit_end) of each of `gates` groups of
  // `units` columns (a recurrent step's share of a direction; others may be computed too).
  void runColumns(const float* a, int64_t lda, int64_t m, float* c, int64_t ldc, void* workspace, int gates,
                  int64_t units, int64_t unit_begin, int64_t unit_end) const;

 private:
  void runRows(const float* a, int64_t lda, int64_t m, float* c, int64_t ldc, void* workspace, bool parallel) const;
  // C's 32 rows from m0 and 32 columns of pair p, from A's parts (row stride kp).
  void pairBlock(const uint16_t* a_hi, const uint16_t* a_lo, int64_t m, int64_t m0, int64_t p, float* c,
                 int64_t ldc) const;

  int64_t n_ = 0, k_ = 0;
  bool split_ = true;
  int64_t k_steps_ = 0;  // K in steps of 32 (a tile row of bf16 pairs)
  int64_t pairs_ = 0;    // N in pairs of 16-column tiles
  // Per pair of column tiles, per k step: W_hi's two tiles then (split) W_lo's two, 1 KiB each, in
  // AMX's pair-interleaved layout (tile row r holds W[n][k0 + 2r], W[n][k0 + 2r + 1] for 16 columns n).
  std::vector<uint16_t> packed_;
};

// int8 on the same tiles: C (int32) = A (u8) * W^T (s8), exact integer sums (TDPBUSD), for the int8
// recurrent step of many utterances (the fused VNNI step's own sums, so an utterance comes out the same
// in any batch). The columns of units [unit_begin, unit_end) of each of `gates` groups of `units`
// columns, on the calling thread. Immutable.
class Int8TileGemm {
 public:
  Int8TileGemm() = default;
  // `weights`: a row-major N x K int8 matrix (copied).
  Int8TileGemm(const int8_t* weights, int64_t n, int64_t k);
  bool empty() const { return n_ == 0; }
  size_t workspaceBytes(int64_t m) const;  // A copied into whole tiles (at most 2048 rows)
  void runColumns(const uint8_t* a, int64_t lda, int64_t m, int32_t* c, int64_t ldc, void* workspace, int gates,
                  int64_t units, int64_t unit_begin, int64_t unit_end) const;

 private:
  int64_t n_ = 0, k_ = 0, k_steps_ = 0, pairs_ = 0;  // k steps of 64
  // Per pair of 16-column tiles, per k step: two tiles, tile row r holding W[n][k0 + 4r .. 4r + 3].
  std::vector<int8_t> packed_;
};

}  // namespace ds2rt::detail::cpu
