#include "cpu/bf16.h"

#include <immintrin.h>

#include <atomic>
#include <cstring>

#include <dnnl.h>

#include "cpu/kernels.h"
#include "ds2rt/error.h"

namespace ds2rt::detail::cpu {

namespace {

std::atomic<bool> hidden_for_testing{false};

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

uint16_t toBF16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

BF16Matmul::BF16Matmul(const std::vector<const float*>& weights, int64_t n_each, int64_t k)
    : n_(n_each * static_cast<int64_t>(weights.size())), k_(k), weights_(static_cast<size_t>(n_ * k)) {
  for (size_t i = 0; i < weights.size(); ++i)
    for (int64_t j = 0; j < n_each * k; ++j) weights_[i * n_each * k + j] = toBF16(weights[i][j]);
}

void BF16Matmul::run(State& s, const float* a, int64_t m, float* c) const {
  if (m == 0 || n_ == 0) return;
  using dnnl::memory;
  using dt = memory::data_type;
  using tag = memory::format_tag;
  const memory::desc a_md({m, k_}, dt::bf16, tag::ab), c_md({m, n_}, dt::f32, tag::ab);
  // W^T as K x N over the N x K rows: oneDNN's "ba" (measured faster here than its own blocked layout).
  const memory::desc w_md({k_, n_}, dt::bf16, tag::ba);
  auto it = s.cache.find(m);
  if (it == s.cache.end()) {
    if (s.cache.size() >= 64) s.cache.clear();  // many lengths (a long eval): keep the cache bounded
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // a context may move between threads
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, w_md, c_md), attr, s.engine);
    it = s.cache.emplace(m, State::Compiled{dnnl::matmul(pd), memory(pd.scratchpad_desc(), s.engine)}).first;
  }
  s.a.resize(static_cast<size_t>(m * k_));
#pragma omp parallel for if (m * k_ > kParallelMinElements)
  for (int64_t r = 0; r < m; ++r) convertToBF16(a + r * k_, 1, k_, k_, s.a.data() + r * k_, k_);
  memory a_mem(a_md, s.engine, s.a.data()), c_mem(c_md, s.engine, c);
  memory w_mem(w_md, s.engine, const_cast<uint16_t*>(weights_.data()));
  it->second.primitive.execute(s.stream, {{DNNL_ARG_SRC, a_mem},
                                          {DNNL_ARG_WEIGHTS, w_mem},
                                          {DNNL_ARG_DST, c_mem},
                                          {DNNL_ARG_SCRATCHPAD, it->second.scratchpad}});
  s.stream.wait();
}

}  // namespace ds2rt::detail::cpu
