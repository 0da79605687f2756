#include <mutex>

#include "cuda/context.cuh"
#include "cuda/gemm.cuh"

namespace ds2rt::detail::cuda {

namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;
constexpr int kCandidates = 8;  // algorithms timed for a tuned shape

cudaDataType_t cudaType(DataType t) {
  switch (t) {
    case DataType::kFloat16: return CUDA_R_16F;
    case DataType::kBFloat16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

cublasLtMatrixLayout_t layout(DataType type, int64_t rows, int64_t cols, int64_t ld, int batch, int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  DS2RT_CUBLAS(cublasLtMatrixLayoutCreate(&l, cudaType(type), rows, cols, ld));
  if (batch > 1) {
    DS2RT_CUBLAS(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof(batch)));
    DS2RT_CUBLAS(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return l;
}

}  // namespace

// Column-major view: C^T (N x M) = B (N x K) * A^T (K x M); B is stored K x N (ld K) and used
// transposed, A is stored K x M (ld K) and used as is.
struct GemmRunner::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

struct GemmChoices::Table {
  std::mutex mutex;
  std::map<decltype(GemmShape{}.key()), cublasLtMatmulAlgo_t> algos;
};

GemmChoices::GemmChoices() : table_(std::make_unique<Table>()) {}
GemmChoices::~GemmChoices() = default;

GemmRunner::GemmRunner(DataType input_type, DataType output_type, FloatMath math, GemmChoices* choices)
    : in_(input_type), out_(output_type), math_(math), choices_(choices) {}
GemmRunner::~GemmRunner() = default;

GemmRunner::Plan& GemmRunner::plan(CudaDeviceContext& device, const GemmShape& s, const Operands& operands) {
  const auto key = s.key();
  if (auto it = plans_.find(key); it != plans_.end()) return *it->second;
  auto p = std::make_unique<Plan>();
  // fp32 accumulation always; fp32 inputs are multiplied exactly unless TF32 was asked for.
  const bool tf32 = in_ == DataType::kFloat32 && math_ == FloatMath::kTF32;
  DS2RT_CUBLAS(cublasLtMatmulDescCreate(&p->desc, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
  DS2RT_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof(transpose)));
  DS2RT_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof(none)));
  if (s.bias) {  // one value per row of cuBLAS's column-major D (N x M): per column of our C
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    const cudaDataType_t bias_type = CUDA_R_32F;
    DS2RT_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    DS2RT_CUBLAS(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
  }
  p->a = layout(in_, s.k, s.n, s.ldb, s.batch, s.stride_b);  // the "A" of cuBLAS is our B
  p->b = layout(in_, s.k, s.m, s.lda, s.batch, s.stride_a);
  p->c = layout(out_, s.n, s.m, s.ldc, s.batch, s.stride_c);
  std::unique_lock<std::mutex> shared;
  if (choices_ && s.tune) {  // another context of the engine may have timed this shape already
    shared = std::unique_lock(choices_->table_->mutex);
    if (auto it = choices_->table_->algos.find(key); it != choices_->table_->algos.end()) {
      p->algo = it->second;
      return *(plans_[key] = std::move(p));
    }
  }
  cublasLtMatmulPreference_t pref = nullptr;
  DS2RT_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
  const size_t workspace = kWorkspaceBytes;
  DS2RT_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                    sizeof(workspace)));
  cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(device.cublas(), p->desc, p->a, p->b, p->c, p->c, pref,
                                                               s.tune ? kCandidates : 1, results, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  DS2RT_CUBLAS(status);
  check(found > 0, "cuBLASLt has no algorithm for a ", s.m, " x ", s.n, " x ", s.k, " GEMM");
  p->algo = results[0].algo;
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  DS2RT_CUDA(cudaStreamIsCapturing(device.stream(), &capturing));
  // The heuristic's first choice was up to 1.4x slower than the best candidate for the 64 x 4096 x
  // 1024 products of a batch-64 biLSTM step (H100). Timing runs on the caller's buffers: a
  // product without accumulation writes the same output whatever the algorithm.
  if (found > 1 && !s.accumulate && capturing == cudaStreamCaptureStatusNone) {
    float best = -1.0f;
    for (int i = 0; i < found; ++i) {
      // A candidate that refuses these buffers (the heuristic assumes 256-byte alignment) is skipped.
      if (tryLaunch(device, *p, results[i].algo, s, operands) != CUBLAS_STATUS_SUCCESS) continue;  // warm-up
      const float ms = gpuMs(device.stream(), [&] {
        for (int r = 0; r < 5; ++r) launch(device, *p, results[i].algo, s, operands);
      });
      if (best < 0.0f || ms < best) {
        best = ms;
        p->algo = results[i].algo;
      }
    }
    if (shared) choices_->table_->algos[key] = p->algo;
  }
  return *(plans_[key] = std::move(p));
}

cublasStatus_t GemmRunner::tryLaunch(CudaDeviceContext& device, const Plan& p, const cublasLtMatmulAlgo_t& algo,
                                     const GemmShape& s, const Operands& o) {
  if (s.bias) {  // the descriptor belongs to this runner (one per context): set per launch, captured with it
    check(o.bias != nullptr, "internal: a GEMM shape with a bias was run without one");
    const cublasStatus_t status =
        cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &o.bias, sizeof(o.bias));
    if (status != CUBLAS_STATUS_SUCCESS) return status;
  }
  const float alpha = 1.0f, beta = s.accumulate ? 1.0f : 0.0f;
  void* workspace = device.gemmWorkspace(kWorkspaceBytes);
  return cublasLtMatmul(device.cublas(), p.desc, &alpha, o.b, p.a, o.a, p.b, &beta, o.c, p.c, o.c, p.c, &algo,
                        workspace, kWorkspaceBytes, device.stream());
}

void GemmRunner::launch(CudaDeviceContext& device, const Plan& p, const cublasLtMatmulAlgo_t& algo, const GemmShape& s,
                        const Operands& operands) {
  DS2RT_CUBLAS(tryLaunch(device, p, algo, s, operands));
}

void GemmRunner::run(CudaDeviceContext& device, const GemmShape& s, const Operands& operands) {
  if (s.m == 0 || s.n == 0) return;
  const Plan& p = plan(device, s, operands);
  launch(device, p, p.algo, s, operands);
}

}  // namespace ds2rt::detail::cuda
