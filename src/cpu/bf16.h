// bf16 on the CPU: the capability check, conversions, and a oneDNN bf16 x bf16 -> f32 matmul for
// the GEMMs of the bf16 precision (input projections, fully connected layers), where it is faster
// than fp32's sgemm on this CPU.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include <dnnl.hpp>

namespace ds2rt::detail::cpu {

// AVX512_BF16 in cpuid (ds2rt's own kernels) and in oneDNN's effective ISA (its bf16 primitives;
// DNNL_MAX_CPU_ISA may lower it).
bool haveBF16();
// Tests: makes haveBF16() say false, as on a CPU without AVX512_BF16. It can only hide the feature.
void hideBF16ForTesting(bool hide);

// Whether oneDNN's bf16 matmul computes an input-projection-sized GEMM faster than its fp32 sgemm
// on this CPU. It depends on the core, not on the shape: measured 2x faster on an AMD EPYC (Zen 4,
// AVX512_BF16) for every projection and batch, 1.7x slower on an Intel Xeon without AMX. So it is
// measured, once per process (~10 ms, the first time a bf16 engine is built or loaded); bf16
// engines run their GEMMs in fp32 where sgemm wins (more accurate too), keeping the bf16
// recurrent step either way. Needs haveBF16().
bool bf16MatmulFaster();
// Tests: pins bf16MatmulFaster()'s answer (nullopt: measure again).
void forceBF16MatmulForTesting(std::optional<bool> faster);

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
  // `weights`: a row-major N x K float matrix.
  BF16Matmul(const float* weights, int64_t n, int64_t k);
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }

  struct State {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    struct Compiled {
      dnnl::matmul primitive;
      dnnl::memory::desc scratchpad;
    };
    std::map<int64_t, Compiled> cache;  // rows -> primitive (fixed sizes: oneDNN's brgemm kernels)
  };
  // Bytes of workspace run() needs for `m` rows (compiles the primitive for m, if new): A in bf16
  // and oneDNN's scratchpad, held by the caller so that they need not outlive a run.
  size_t workspaceBytes(State& state, int64_t m) const;
  // `workspace`: workspaceBytes(state, m) bytes, 64-byte aligned.
  void run(State& state, const float* a, int64_t m, float* c, void* workspace) const;

 private:
  const State::Compiled& compiled(State& state, int64_t m) const;  // the primitive for m rows

  int64_t n_ = 0, k_ = 0;
  std::vector<uint16_t> weights_;  // N x K
};

}  // namespace ds2rt::detail::cpu
