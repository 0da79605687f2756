// bf16 on the CPU: the capability check, conversions, and a oneDNN bf16 x bf16 -> f32 matmul for
// the GEMMs of the bf16 precision (input projections, fully connected layers).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include <dnnl.hpp>

namespace ds2rt::detail::cpu {

// AVX512_BF16 in cpuid (ds2rt's own kernels) and in oneDNN's effective ISA (its bf16 primitives;
// DNNL_MAX_CPU_ISA may lower it).
bool haveBF16();
// Tests: makes haveBF16() say false, as on a CPU without AVX512_BF16. It can only hide the feature.
void hideBF16ForTesting(bool hide);

// float to bf16, round to nearest even (NaN stays NaN).
uint16_t toBF16(float value);
// rows x cols floats (row stride ld_x) to bf16 (row stride ld_out); columns cols..ld_out-1 get zeros.
// On the calling thread; needs haveBF16().
void convertToBF16(const float* x, int64_t rows, int64_t cols, int64_t ld_x, uint16_t* out, int64_t ld_out);

// C (M x N, f32, row stride N) = A (M x K, f32, converted to bf16 on the way in) * W^T, with W
// (N x K) held in bf16. Immutable; the per-context part is BF16MatmulState.
class BF16Matmul {
 public:
  BF16Matmul() = default;
  // `weights`: `count` row-major N x K float matrices stacked along N (the directions of a layer).
  BF16Matmul(const std::vector<const float*>& weights, int64_t n_each, int64_t k);
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }

  struct State {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    struct Compiled {
      dnnl::matmul primitive;
      dnnl::memory scratchpad;
    };
    std::map<int64_t, Compiled> cache;  // M -> primitive (fixed sizes: oneDNN's brgemm kernels)
    std::vector<uint16_t> a;  // A in bf16
  };
  void run(State& state, const float* a, int64_t m, float* c) const;

 private:
  int64_t n_ = 0, k_ = 0;
  std::vector<uint16_t> weights_;  // N x K
};

}  // namespace ds2rt::detail::cpu
