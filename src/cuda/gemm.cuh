// Row-major GEMMs through cuBLASLt: C[M x N] = A[M x K] * B[N x K]^T (+ C) (+ a bias per column),
// fp32 accumulation, optionally a strided batch. Descriptors and the chosen algorithm are cached per
// shape.
#pragma once

#include <map>
#include <memory>
#include <tuple>

#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace ds2rt::detail::cuda {

class CudaDeviceContext;

struct GemmShape {
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  bool accumulate = false;
  bool bias = false;  // add a float vector of N (cuBLASLt's bias epilogue): `bias` of run()
  // Run many times with this shape (the recurrent product of every step): on first use, outside
  // graph capture, cuBLASLt's candidate algorithms are timed and the fastest kept.
  bool tune = false;
  auto key() const {
    return std::make_tuple(m, n, k, lda, ldb, ldc, batch, stride_a, stride_b, stride_c, accumulate, bias);
  }
};

// The algorithms timed for tuned shapes, shared by the runners of one kernel's contexts: every
// context then computes bit-identical results. Thread-safe.
class GemmChoices {
 public:
  GemmChoices();
  ~GemmChoices();
  GemmChoices(const GemmChoices&) = delete;
  GemmChoices& operator=(const GemmChoices&) = delete;

 private:
  friend class GemmRunner;
  struct Table;
  std::unique_ptr<Table> table_;
};

// Per-context cache of cuBLASLt plans for one kernel; not thread-safe (one per context).
class GemmRunner {
 public:
  // `choices`: where tuned shapes take their algorithm from (the first runner to meet one times it).
  // `math` matters for fp32 inputs only: exact fp32 products or TF32 tensor-core ones.
  GemmRunner(DataType input_type, DataType output_type, FloatMath math, GemmChoices* choices = nullptr);
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;
  // The operands of one product: A, B, C as above, `bias` (float, N) when the shape has one.
  struct Operands {
    const void* a;
    const void* b;
    void* c;
    const float* bias = nullptr;
  };
  void run(CudaDeviceContext& device, const GemmShape& shape, const Operands& operands);

 private:
  struct Plan;
  Plan& plan(CudaDeviceContext& device, const GemmShape& shape, const Operands& operands);
  cublasStatus_t tryLaunch(CudaDeviceContext& device, const Plan& plan, const cublasLtMatmulAlgo_t& algo,
                           const GemmShape& shape, const Operands& operands);
  void launch(CudaDeviceContext& device, const Plan& plan, const cublasLtMatmulAlgo_t& algo, const GemmShape& shape,
              const Operands& operands);
  DataType in_, out_;
  FloatMath math_;
  GemmChoices* choices_;
  std::map<decltype(GemmShape{}.key()), std::unique_ptr<Plan>> plans_;
};

}  // namespace ds2rt::detail::cuda
