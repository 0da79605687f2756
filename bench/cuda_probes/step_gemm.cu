// Probe: the per-step recurrent product of the large-batch path (64 x 4096 x 1024, both directions),
// every algorithm cuBLASLt's heuristic offers, 750 steps replayed from a CUDA graph, with and without
// a trivial cell kernel after each product. Build here, run on the GPU machine:
//   nvcc -O2 -arch=sm_90 -o .gpu/probe/step_gemm bench/cuda_probes/step_gemm.cu -lcublasLt
#include <cublasLt.h>
#include <cuda_fp16.h>
#include <cstdio>
#include <vector>
#define CK(x) do { auto e = (x); if (e != 0) { printf("error %d at %s:%d\n", (int)e, __FILE__, __LINE__); return 1; } } while (0)
__global__ void cell(const float* rec, __half* h, int n) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) h[i] = __float2half(tanhf(rec[i]) * 0.5f); }
int main() {
  cublasLtHandle_t lt; CK(cublasLtCreate(&lt));
  struct S { int m, n, k, batch; const char* name; };
  for (S s : {S{64, 4096, 1024, 2, "lstm b64"}, S{64, 3072, 1024, 2, "gru b64"}, S{32, 4096, 1024, 2, "lstm b32"}, S{16, 4096, 1024, 2, "lstm b16"}}) {
    __half *a, *b; float* c; void* ws; size_t wsb = 32 << 20;
    CK(cudaMalloc(&a, (size_t)s.batch * s.m * s.k * 2)); CK(cudaMalloc(&b, (size_t)s.batch * s.n * s.k * 2));
    CK(cudaMalloc(&c, (size_t)s.batch * s.m * s.n * 4)); CK(cudaMalloc(&ws, wsb));
    cudaMemset(a, 0, (size_t)s.batch * s.m * s.k * 2); cudaMemset(b, 0, (size_t)s.batch * s.n * s.k * 2);
    cublasLtMatmulDesc_t d; CK(cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t t = CUBLAS_OP_T, nn = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t); cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSB, &nn, sizeof nn);
    auto lay = [&](cudaDataType_t ty, int r, int cc, int ld, long long stride) { cublasLtMatrixLayout_t l; cublasLtMatrixLayoutCreate(&l, ty, r, cc, ld);
      int bc = s.batch; cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc);
      cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride); return l; };
    auto A = lay(CUDA_R_16F, s.k, s.n, s.k, (long long)s.n * s.k), B = lay(CUDA_R_16F, s.k, s.m, s.k, (long long)s.m * s.k), C = lay(CUDA_R_32F, s.n, s.m, s.n, (long long)s.m * s.n);
    cublasLtMatmulPreference_t p; cublasLtMatmulPreferenceCreate(&p); cublasLtMatmulPreferenceSetAttribute(p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
    cublasLtMatmulHeuristicResult_t r[32]; int found = 0; CK(cublasLtMatmulAlgoGetHeuristic(lt, d, A, B, C, C, p, 32, r, &found));
    cudaStream_t st; cudaStreamCreate(&st); cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    float alpha = 1, beta = 0;
    printf("%s (M %d N %d K %d batch %d): %d algorithms\n", s.name, s.m, s.n, s.k, s.batch, found);
    for (int i = 0; i < found; ++i) {
      for (int fused = 0; fused < 2; ++fused) {
        // 750 steps captured in a graph, as the engine replays them
        cudaGraph_t g; cudaGraphExec_t ge;
        cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal);
        for (int step = 0; step < 750; ++step) {
          cublasLtMatmul(lt, d, &alpha, b, A, a, B, &beta, c, C, c, C, &r[i].algo, ws, wsb, st);
          if (fused) cell<<<(s.batch * s.m * 1024 + 255) / 256, 256, 0, st>>>(c, a, s.batch * s.m * 1024);
        }
        if (cudaStreamEndCapture(st, &g) != cudaSuccess || cudaGraphInstantiate(&ge, g, 0) != cudaSuccess) { printf("  algo %d: capture failed\n", i); cudaGetLastError(); break; }
        cudaGraphLaunch(ge, st); cudaStreamSynchronize(st);
        cudaEventRecord(e0, st); cudaGraphLaunch(ge, st); cudaEventRecord(e1, st); cudaEventSynchronize(e1);
        float ms; cudaEventElapsedTime(&ms, e0, e1);
        int tile = 0, splitk = 0, stages = 0; size_t w;
        cublasLtMatmulAlgoConfigGetAttribute(&r[i].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &w);
        cublasLtMatmulAlgoConfigGetAttribute(&r[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &w);
        cublasLtMatmulAlgoConfigGetAttribute(&r[i].algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &w);
        printf("  algo %2d tile %3d splitk %2d stages %3d %s: %.2f us per step\n", i, tile, splitk, stages, fused ? "gemm+cell" : "gemm     ", ms * 1000 / 750);
        cudaGraphExecDestroy(ge); cudaGraphDestroy(g);
      }
    }
    cudaFree(a); cudaFree(b); cudaFree(c); cudaFree(ws);
  }
  return 0;
}
