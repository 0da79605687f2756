#include "cpu/bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>

#include <dnnl.h>

#include "cpu/kernels.h"
#include "ds2rt/error.h"

namespace ds2rt::detail::cpu {

namespace {

std::atomic<bool> hidden_for_testing{false};

std::mutex matmul_choice_mutex;
std::optional<bool> matmul_faster;  // measured or forced; guarded by matmul_choice_mutex

constexpr size_t align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

// Times both GEMMs on one projection-sized problem, alternating so that a burst of other load
// hits both; the best of three each.
bool measureBF16MatmulFaster() {
  constexpr int64_t m = 256, n = 2048, k = 1024;
  std::vector<float> a(m * k), w(n * k), c(m * n);
  for (int64_t i = 0; i < m * k; ++i) a[i] = static_cast<float>(i % 7) * 0.25f - 0.75f;
  for (int64_t i = 0; i < n * k; ++i) w[i] = static_cast<float>(i % 5) * 0.01f - 0.02f;
  const BF16Matmul matmul(w.data(), n, k);
  BF16Matmul::State state;
  std::vector<uint8_t> workspace(matmul.workspaceBytes(state, m) + 64);
  void* aligned = workspace.data() + (64 - reinterpret_cast<uintptr_t>(workspace.data()) % 64) % 64;
  using Clock = std::chrono::steady_clock;
  const auto time = [](const auto& f) {
    const auto start = Clock::now();
    f();
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  const auto sgemm = [&] { gemmABt(m, n, k, a.data(), k, w.data(), k, c.data(), n); };
  const auto bf16 = [&] { matmul.run(state, a.data(), m, c.data(), aligned); };
  sgemm();  // warm-up: oneDNN's JIT kernels, pages
  bf16();
  double best_sgemm = 1e9, best_bf16 = 1e9;
  for (int round = 0; round < 3; ++round) {
    best_sgemm = std::min(best_sgemm, time(sgemm));
    best_bf16 = std::min(best_bf16, time(bf16));
  }
  return best_bf16 < best_sgemm;
}

bool detectBF16() {
  const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  const auto isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  const auto bf16_isa = static_cast<unsigned>(dnnl_cpu_isa_avx512_core_bf16);
  return cpu && (isa & bf16_isa) == bf16_isa;
}

}  // namespace

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void convertToBF16(const float* x, int64_t rows,
                                                                                   int64_t cols, int64_t ld_x,
                                                                                   uint16_t* out, int64_t ld_out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * ld_x;
    uint16_t* o = out + r * ld_out;
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 mask = c + 16 <= cols ? __mmask16(0xFFFF) : __mmask16((1u << (cols - c)) - 1);
      const __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, in + c));
      _mm256_mask_storeu_epi16(o + c, mask, reinterpret_cast<const __m256i&>(v));
    }
    for (int64_t c = cols; c < ld_out; ++c) o[c] = 0;
  }
}

bool haveBF16() {
  static const bool have = detectBF16();
  return have && !hidden_for_testing.load(std::memory_order_relaxed);
}

void hideBF16ForTesting(bool hide) { hidden_for_testing.store(hide, std::memory_order_relaxed); }

bool bf16MatmulFaster() {
  std::lock_guard lock(matmul_choice_mutex);
  if (!matmul_faster) matmul_faster = measureBF16MatmulFaster();
  return *matmul_faster;
}

void forceBF16MatmulForTesting(std::optional<bool> faster) {
  std::lock_guard lock(matmul_choice_mutex);
  matmul_faster = faster;
}

uint16_t toBF16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

BF16Matmul::BF16Matmul(const float* weights, int64_t n, int64_t k)
    : n_(n), k_(k), weights_(static_cast<size_t>(n * k)) {
  for (int64_t j = 0; j < n * k; ++j) weights_[j] = toBF16(weights[j]);
}

namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

// W^T as K x N over the N x K rows: oneDNN's "ba" (measured faster here than its own blocked layout).
memory::desc weightsDesc(int64_t n, int64_t k) { return memory::desc({k, n}, dt::bf16, tag::ba); }

}  // namespace

namespace {

// oneDNN 2.6's brgemm matmul runs some row counts up to 10x slower than their neighbours (1952 =
// 32 x 61: 70 GFLOP/s against ~730 for 1920 or 2048 on an AMX Xeon; 976, 488 and 61 too), while
// every multiple of 64 measured fast: the rows run as one such block and a remainder below 64.
constexpr int64_t kRowBlock = 64;
std::array<int64_t, 2> rowPieces(int64_t m) { return {m - m % kRowBlock, m % kRowBlock}; }

}  // namespace

const BF16Matmul::State::Compiled& BF16Matmul::compiled(State& s, int64_t m) const {
  auto it = s.cache.find(m);
  if (it == s.cache.end()) {
    if (s.cache.size() >= 64) s.cache.clear();  // many lengths (a long eval): keep the cache bounded
    const memory::desc a_md({m, k_}, dt::bf16, tag::ab), c_md({m, n_}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // a context may move between threads
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, weightsDesc(n_, k_), c_md), attr, s.engine);
    it = s.cache.emplace(m, State::Compiled{dnnl::matmul(pd), pd.scratchpad_desc()}).first;
  }
  return it->second;
}

size_t BF16Matmul::workspaceBytes(State& s, int64_t m) const {
  if (m == 0 || n_ == 0) return 0;
  size_t scratchpad = 0;
  for (const int64_t rows : rowPieces(m))
    if (rows > 0) scratchpad = std::max(scratchpad, compiled(s, rows).scratchpad.get_size());
  return align64(static_cast<size_t>(m * k_) * sizeof(uint16_t)) + align64(scratchpad);
}

void BF16Matmul::run(State& s, const float* a, int64_t m, float* c, void* workspace) const {
  if (m == 0 || n_ == 0) return;
  auto* a_bf16 = static_cast<uint16_t*>(workspace);
  void* scratchpad = static_cast<char*>(workspace) + align64(static_cast<size_t>(m * k_) * sizeof(uint16_t));
#pragma omp parallel for if (m * k_ > kParallelMinElements)
  for (int64_t r = 0; r < m; ++r) convertToBF16(a + r * k_, 1, k_, k_, a_bf16 + r * k_, k_);
  memory w_mem(weightsDesc(n_, k_), s.engine, const_cast<uint16_t*>(weights_.data()));
  int64_t first = 0;
  for (const int64_t rows : rowPieces(m)) {
    if (rows == 0) continue;
    const State::Compiled& piece = compiled(s, rows);
    memory a_mem({{rows, k_}, dt::bf16, tag::ab}, s.engine, a_bf16 + first * k_);
    memory c_mem({{rows, n_}, dt::f32, tag::ab}, s.engine, c + first * n_);
    memory scratchpad_mem(piece.scratchpad, s.engine, scratchpad);
    piece.primitive.execute(s.stream, {{DNNL_ARG_SRC, a_mem},
                                       {DNNL_ARG_WEIGHTS, w_mem},
                                       {DNNL_ARG_DST, c_mem},
                                       {DNNL_ARG_SCRATCHPAD, scratchpad_mem}});
    first += rows;
  }
  s.stream.wait();
}

}  // namespace ds2rt::detail::cpu
