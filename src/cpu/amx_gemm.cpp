// GCC 12 warns about _mm512_undefined_*() inside its own intrinsics headers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "cpu/amx_gemm.h"

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cpu/bf16.h"
#include "ds2rt/error.h"

#define DS2RT_AMX __attribute__((target("amx-tile,amx-bf16,amx-int8,avx512f,avx512bw,avx512vl,avx512bf16")))

namespace ds2rt::detail::cpu {

namespace {

constexpr int64_t kTileRows = 16;
constexpr int64_t kStep = 32;                      // bf16 along K per tile row
constexpr int64_t kTileElements = kTileRows * kStep;  // 512 bf16: 1 KiB
constexpr int64_t kBlockRows = 2 * kTileRows;         // C block: 32 x 32, four tiles
constexpr int64_t kPairsPerPanel = 8;  // 256 columns: their W (1 MiB at K 1024) stays in L2 across A's rows
constexpr int64_t kRowsAtOnce = 2048;  // A is split this many rows at a time: the workspace stays small
constexpr int64_t kTileBytes = 1024;   // a tile: 16 rows of 64 bytes

constexpr int64_t roundUp(int64_t v, int64_t to) { return (v + to - 1) / to * to; }
constexpr size_t align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

bool detectAmx() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amx_bf16 = edx & (1u << 22), amx_tile = edx & (1u << 24);
  if (!amx_bf16 || !amx_tile || !haveBF16()) return false;
  // Linux hands out the 8 KiB tile state only to processes that ask (oneDNN asks too; asking again is harmless).
  constexpr long kRequestPermission = 0x1023, kTileData = 18;
  return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
}

std::atomic<int> forced{-1};  // -1: not forced

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

// Eight tiles of 16 rows x 64 bytes. A constant in memory, not built on the stack before each load:
// GCC 12 does not count ldtilecfg as a read of its operand and dropped some of the stores building a
// stack copy (bytes_per_row left zero: #GP, seen once the step's inlining changed).
constexpr TileConfig kTileConfig = [] {
  TileConfig config;
  for (int t = 0; t < 8; ++t) config.bytes_per_row[t] = 64, config.rows[t] = kTileRows;
  return config;
}();

DS2RT_AMX void configureTiles() { _tile_loadconfig(&kTileConfig); }

inline uint16_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return static_cast<uint16_t>(b >> 16);
}
inline float fromBits(uint16_t h) {
  const uint32_t b = uint32_t{h} << 16;
  float v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

// One row of `cols` floats into its bf16 high parts and (lo not null) remainders, zeros up to `padded`.
DS2RT_AMX void splitRow(const float* x, int64_t cols, int64_t padded, uint16_t* hi, uint16_t* lo) {
  int64_t c = 0;
  for (; c < cols; c += 16) {
    const __mmask16 mask = c + 16 <= cols ? __mmask16(0xFFFF) : __mmask16((1u << (cols - c)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(mask, x + c);
    const __m256bh h = _mm512_cvtneps_pbh(v);
    const __m512 h_as_float =
        _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(reinterpret_cast<const __m256i&>(h)), 16));
    const __m256bh l = _mm512_cvtneps_pbh(_mm512_sub_ps(v, h_as_float));
    _mm256_mask_storeu_epi16(hi + c, mask, reinterpret_cast<const __m256i&>(h));
    if (lo) _mm256_mask_storeu_epi16(lo + c, mask, reinterpret_cast<const __m256i&>(l));
  }
  for (c = cols; c < padded; ++c) hi[c] = 0;
  if (lo) std::fill(lo + cols, lo + padded, uint16_t{0});
}

// Row r of A (m x k; rows past m: zeros) into row r of the parts (row stride kp); a_lo null: no remainders.
void splitRow(const float* a, int64_t lda, int64_t m, int64_t k, int64_t r, int64_t kp, uint16_t* a_hi,
              uint16_t* a_lo) {
  const bool inside = r < m;
  splitRow(inside ? a + r * lda : nullptr, inside ? k : 0, kp, a_hi + r * kp, a_lo ? a_lo + r * kp : nullptr);
}

// Tiles 0-3 hold C's 2 x 2 block, 4-5 two 16-row tiles of A, 6-7 two 16-column tiles of W (bf16 or
// int8 alike: 64 bytes a tile row).
DS2RT_AMX inline void zeroAccumulators() {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
}
// C's 32 x 32 block of 4-byte sums (float or int32) at `c`, rows `stride_bytes` apart.
template <typename T>
DS2RT_AMX inline void storeAccumulators(T* c, int64_t stride_bytes) {
  const int64_t second = kTileRows * stride_bytes / static_cast<int64_t>(sizeof(T));
  _tile_stored(0, c, stride_bytes);
  _tile_stored(1, c + kTileRows, stride_bytes);
  _tile_stored(2, c + second, stride_bytes);
  _tile_stored(3, c + second + kTileRows, stride_bytes);
}
// A's two tiles from the block's first row, rows `stride_bytes` apart.
template <typename T>
DS2RT_AMX inline void loadA(const T* a, int64_t stride_bytes) {
  _tile_loadd(4, a, stride_bytes);
  _tile_loadd(5, reinterpret_cast<const char*>(a) + kTileRows * stride_bytes, stride_bytes);
}
// W's two tiles of a pair, one after the other.
template <typename T>
DS2RT_AMX inline void loadW(const T* w) {
  _tile_loadd(6, w, 64);
  _tile_loadd(7, reinterpret_cast<const char*>(w) + kTileBytes, 64);
}
DS2RT_AMX inline void accumulateProducts() {
  _tile_dpbf16ps(0, 4, 6);
  _tile_dpbf16ps(1, 4, 7);
  _tile_dpbf16ps(2, 5, 6);
  _tile_dpbf16ps(3, 5, 7);
}

// C block (32 rows from m0, the pair's 32 columns) = sum over K of the three products (Split) or of
// A_hi W_hi. `a_hi` / `a_lo`: the block's first row; `w`: the pair's first k step.
template <bool Split>
DS2RT_AMX void block(const uint16_t* a_hi, const uint16_t* a_lo, int64_t a_stride_bytes, const uint16_t* w,
                     int64_t k_steps, float* c, int64_t c_stride_bytes) {
  constexpr int64_t kTilesPerStep = Split ? 4 : 2;
  zeroAccumulators();
  for (int64_t s = 0; s < k_steps; ++s, w += kTilesPerStep * kTileElements) {
    loadA(a_hi + s * kStep, a_stride_bytes);
    loadW(w);
    accumulateProducts();  // A_hi W_hi
    if constexpr (Split) {
      loadW(w + 2 * kTileElements);
      accumulateProducts();  // A_hi W_lo
      loadA(a_lo + s * kStep, a_stride_bytes);
      loadW(w);
      accumulateProducts();  // A_lo W_hi
    }
  }
  storeAccumulators(c, c_stride_bytes);
}

// `compute(to, stride_bytes)` writes the 32 x 32 block at rows m0, columns n0 of C (m x n, row
// stride ldc): straight into C where the block lies inside, else into a scratch block of which C
// takes what lies inside.
template <typename T, typename Compute>
void intoC(const Compute& compute, int64_t m, int64_t n, int64_t m0, int64_t n0, T* c, int64_t ldc) {
  if (m0 + kBlockRows <= m && n0 + kBlockRows <= n) return compute(c + m0 * ldc + n0, ldc * sizeof(T));
  alignas(64) T edge[kBlockRows * kBlockRows];
  compute(edge, kBlockRows * sizeof(T));
  for (int64_t r = 0; r < std::min(kBlockRows, m - m0); ++r)
    std::copy_n(edge + r * kBlockRows, std::min(kBlockRows, n - n0), c + (m0 + r) * ldc + n0);
}

// Calls pair(p) for each pair of column tiles holding a column of units [unit_begin, unit_end) of
// one of `gates` groups of `units` columns.
template <typename Pair>
void forPairsOfUnits(int gates, int64_t units, int64_t unit_begin, int64_t unit_end, const Pair& pair) {
  for (int g = 0; g < gates; ++g)
    for (int64_t p = (g * units + unit_begin) / kBlockRows; p <= (g * units + unit_end - 1) / kBlockRows; ++p) pair(p);
}

}  // namespace

bool amxTilesUsable() {
  static const bool usable = detectAmx();
  return usable;
}

bool amxInt8Usable() {
  static const bool usable = [] {
    unsigned eax, ebx, ecx, edx;
    return amxTilesUsable() && __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx & (1u << 25));
  }();
  return usable;
}

bool useBF16x3Gemm() {
  const int f = forced.load(std::memory_order_relaxed);
  if (f >= 0) return f == 1;
  const char* choice = std::getenv("DS2RT_CPU_FP32_GEMM");
  const std::string mode = choice ? choice : "auto";
  check(mode == "auto" || mode == "sgemm" || mode == "bf16x3", "DS2RT_CPU_FP32_GEMM is '", mode,
        "': auto, sgemm or bf16x3");
  if (mode == "sgemm") return false;
  check(mode == "auto" || amxTilesUsable(),
        "DS2RT_CPU_FP32_GEMM=bf16x3 needs AMX tiles, which this CPU or system lacks");
  return amxTilesUsable();
}

void forceBF16x3GemmForTesting(std::optional<bool> use) {
  check(!use.value_or(false) || amxTilesUsable(), "internal: bf16x3 GEMMs forced on without AMX");
  forced.store(use ? (*use ? 1 : 0) : -1, std::memory_order_relaxed);
}

BF16x3Gemm::BF16x3Gemm(const float* weights, int64_t n, int64_t k, bool split)
    : n_(n), k_(k), split_(split), k_steps_(roundUp(k, kStep) / kStep), pairs_(roundUp(n, kBlockRows) / kBlockRows) {
  check(amxTilesUsable(), "internal: bf16x3 GEMMs need AMX tiles, which this CPU or system lacks");
  const int64_t tiles = split ? 4 : 2;  // a k step's
  packed_.assign(static_cast<size_t>(pairs_ * k_steps_ * tiles * kTileElements), 0);
  for (int64_t p = 0; p < pairs_; ++p)
    for (int64_t s = 0; s < k_steps_; ++s) {
      uint16_t* step = packed_.data() + (p * k_steps_ + s) * tiles * kTileElements;
      for (int64_t col = 0; col < kBlockRows; ++col) {
        const int64_t row_n = p * kBlockRows + col;
        if (row_n >= n) continue;
        uint16_t* tile = step + (col / kTileRows) * kTileElements;
        for (int64_t i = 0; i < kStep; ++i) {
          const int64_t kk = s * kStep + i;
          if (kk >= k) break;
          const float v = weights[row_n * k + kk];
          const uint16_t hi = toBF16(v), lo = toBF16(v - fromBits(hi));
          const int64_t at = (i / 2) * kStep + (col % kTileRows) * 2 + i % 2;
          tile[at] = hi;
          if (split) tile[2 * kTileElements + at] = lo;
        }
      }
    }
}

size_t BF16x3Gemm::workspaceBytes(int64_t m) const {
  m = std::min(m, kRowsAtOnce);
  const size_t part = align64(static_cast<size_t>(roundUp(m, kBlockRows) * k_steps_ * kStep) * sizeof(uint16_t));
  return split_ ? 2 * part : part;
}

void BF16x3Gemm::run(const float* a, int64_t lda, int64_t m, float* c, int64_t ldc, void* workspace,
                     bool parallel) const {
  for (int64_t r = 0; r < m; r += kRowsAtOnce)
    runRows(a + r * lda, lda, std::min(kRowsAtOnce, m - r), c + r * ldc, ldc, workspace, parallel);
}

DS2RT_AMX void BF16x3Gemm::pairBlock(const uint16_t* a_hi, const uint16_t* a_lo, int64_t m, int64_t m0, int64_t p,
                                     float* c, int64_t ldc) const {
  const int64_t kp = k_steps_ * kStep, n0 = p * kBlockRows;
  const uint16_t* w = packed_.data() + p * k_steps_ * (split_ ? 4 : 2) * kTileElements;
  const auto compute = [&](float* to, int64_t stride_bytes) {
    if (split_) block<true>(a_hi + m0 * kp, a_lo + m0 * kp, kp * 2, w, k_steps_, to, stride_bytes);
    else block<false>(a_hi + m0 * kp, nullptr, kp * 2, w, k_steps_, to, stride_bytes);
  };
  intoC(compute, m, n_, m0, n0, c, ldc);
}

DS2RT_AMX void BF16x3Gemm::runRows(const float* a, int64_t lda, int64_t m, float* c, int64_t ldc, void* workspace,
                                   bool parallel) const {
  if (m == 0 || n_ == 0) return;
  const int64_t kp = k_steps_ * kStep, mp = roundUp(m, kBlockRows);
  auto* a_hi = static_cast<uint16_t*>(workspace);
  auto* a_lo = split_ ? a_hi + align64(static_cast<size_t>(mp * kp) * sizeof(uint16_t)) / sizeof(uint16_t) : nullptr;
  const int64_t blocks = mp / kBlockRows, panels = (pairs_ + kPairsPerPanel - 1) / kPairsPerPanel;
#pragma omp parallel if (parallel)
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < mp; ++r) splitRow(a, lda, m, k_, r, kp, a_hi, a_lo);
    configureTiles();
    // Threads take whole panels of columns where there are enough (their W stays in their L2), rows otherwise.
#pragma omp for collapse(2) schedule(static)
    for (int64_t panel = 0; panel < panels; ++panel)
      for (int64_t b = 0; b < blocks; ++b)
        for (int64_t p = panel * kPairsPerPanel; p < std::min(pairs_, (panel + 1) * kPairsPerPanel); ++p)
          pairBlock(a_hi, a_lo, m, b * kBlockRows, p, c, ldc);
    _tile_release();
  }
}

DS2RT_AMX void BF16x3Gemm::runColumns(const float* a, int64_t lda, int64_t m, float* c, int64_t ldc, void* workspace,
                                      int gates, int64_t units, int64_t unit_begin, int64_t unit_end) const {
  check(m <= kRowsAtOnce && gates * units == n_, "internal: BF16x3Gemm::runColumns over ", m, " rows, ", gates, " x ",
        units, " columns of ", n_);
  if (m == 0 || unit_begin >= unit_end) return;
  const int64_t kp = k_steps_ * kStep, mp = roundUp(m, kBlockRows);
  auto* a_hi = static_cast<uint16_t*>(workspace);
  auto* a_lo = split_ ? a_hi + align64(static_cast<size_t>(mp * kp) * sizeof(uint16_t)) / sizeof(uint16_t) : nullptr;
  for (int64_t r = 0; r < mp; ++r) splitRow(a, lda, m, k_, r, kp, a_hi, a_lo);
  configureTiles();
  forPairsOfUnits(gates, units, unit_begin, unit_end, [&](int64_t p) {
    for (int64_t m0 = 0; m0 < mp; m0 += kBlockRows) pairBlock(a_hi, a_lo, m, m0, p, c, ldc);
  });
  _tile_release();
}

namespace {

constexpr int64_t kInt8Step = 64;  // u8/s8 along K per tile row

// C block of 32 x 32 int32 = A (u8, a block's first row) times W (the pair's first k step).
DS2RT_AMX void int8Block(const uint8_t* a, int64_t a_stride, const int8_t* w, int64_t k_steps, int32_t* c,
                         int64_t c_stride_bytes) {
  zeroAccumulators();
  for (int64_t s = 0; s < k_steps; ++s, w += 2 * kTileBytes) {
    loadA(a + s * kInt8Step, a_stride);
    loadW(w);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
  storeAccumulators(c, c_stride_bytes);
}

}  // namespace

Int8TileGemm::Int8TileGemm(const int8_t* weights, int64_t n, int64_t k)
    : n_(n), k_(k), k_steps_(roundUp(k, kInt8Step) / kInt8Step), pairs_(roundUp(n, kBlockRows) / kBlockRows) {
  check(amxInt8Usable(), "internal: int8 tile GEMMs need AMX-INT8, which this CPU or system lacks");
  packed_.assign(static_cast<size_t>(pairs_ * k_steps_ * 2 * kTileBytes), 0);
  for (int64_t p = 0; p < pairs_; ++p)
    for (int64_t s = 0; s < k_steps_; ++s) {
      int8_t* step = packed_.data() + (p * k_steps_ + s) * 2 * kTileBytes;
      for (int64_t col = 0; col < kBlockRows && p * kBlockRows + col < n; ++col)
        for (int64_t i = 0; i < kInt8Step && s * kInt8Step + i < k; ++i)
          step[(col / kTileRows) * kTileBytes + (i / 4) * 64 + (col % kTileRows) * 4 + i % 4] =
              weights[(p * kBlockRows + col) * k + s * kInt8Step + i];
    }
}

size_t Int8TileGemm::workspaceBytes(int64_t m) const {
  return align64(static_cast<size_t>(roundUp(std::min(m, kRowsAtOnce), kBlockRows) * k_steps_ * kInt8Step));
}

DS2RT_AMX void Int8TileGemm::runColumns(const uint8_t* a, int64_t lda, int64_t m, int32_t* c, int64_t ldc,
                                        void* workspace, int gates, int64_t units, int64_t unit_begin,
                                        int64_t unit_end) const {
  check(m <= kRowsAtOnce && gates * units == n_, "internal: Int8TileGemm::runColumns over ", m, " rows, ", gates,
        " x ", units, " columns of ", n_);
  if (m == 0 || unit_begin >= unit_end) return;
  const int64_t kp = k_steps_ * kInt8Step, mp = roundUp(m, kBlockRows);
  auto* rows = static_cast<uint8_t*>(workspace);  // A in whole tiles: K padded (W is zero there), rows past m zero
  for (int64_t r = 0; r < mp; ++r) {
    const int64_t copied = r < m ? std::min(k_, lda) : 0;
    if (copied > 0) std::memcpy(rows + r * kp, a + r * lda, static_cast<size_t>(copied));
    std::fill(rows + r * kp + copied, rows + (r + 1) * kp, uint8_t{0});
  }
  configureTiles();
  forPairsOfUnits(gates, units, unit_begin, unit_end, [&](int64_t p) {
    const int8_t* w = packed_.data() + p * k_steps_ * 2 * kTileBytes;
    for (int64_t m0 = 0; m0 < mp; m0 += kBlockRows) {
      const auto compute = [&](int32_t* to, int64_t stride_bytes) {
        int8Block(rows + m0 * kp, kp, w, k_steps_, to, stride_bytes);
      };
      intoC(compute, m, n_, m0, p * kBlockRows, c, ldc);
    }
  });
  _tile_release();
}

}  // namespace ds2rt::detail::cpu
