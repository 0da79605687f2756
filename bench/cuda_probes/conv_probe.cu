// Probe: DeepSpeech2's two convolutions at 1 x 10 s and 64 x 15 s in fp16 through cuDNN, NCHW against NHWC tensors,
// every algorithm cudnnFind offers (256 MB workspace). Build here, run on the GPU machine:
//   nvcc -O2 -arch=sm_90 -o .gpu/probe/conv_probe bench/cuda_probes/conv_probe.cu -lcudnn
#include <cudnn.h>
#include <cuda_fp16.h>
#include <cstdio>
#define CK(x) do { auto e = (x); if (e != CUDNN_STATUS_SUCCESS) { printf("cudnn %s at %d\n", cudnnGetErrorString(e), __LINE__); return 1; } } while (0)
int run(cudnnHandle_t h, int n, int c, int hh, int w, int k, int r, int s, int sh, int sw, int ph, int pw, cudnnTensorFormat_t fmt, const char* name) {
  cudnnTensorDescriptor_t x, y; cudnnFilterDescriptor_t f; cudnnConvolutionDescriptor_t cv;
  cudnnCreateTensorDescriptor(&x); cudnnCreateTensorDescriptor(&y); cudnnCreateFilterDescriptor(&f); cudnnCreateConvolutionDescriptor(&cv);
  CK(cudnnSetTensor4dDescriptor(x, fmt, CUDNN_DATA_HALF, n, c, hh, w));
  CK(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_HALF, fmt, k, c, r, s));
  CK(cudnnSetConvolution2dDescriptor(cv, ph, pw, sh, sw, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  cudnnSetConvolutionMathType(cv, CUDNN_TENSOR_OP_MATH);
  int on, oc, oh, ow; CK(cudnnGetConvolution2dForwardOutputDim(cv, x, f, &on, &oc, &oh, &ow));
  CK(cudnnSetTensor4dDescriptor(y, fmt, CUDNN_DATA_HALF, on, oc, oh, ow));
  void *dx, *dy, *df, *ws; size_t wsb = 256 << 20;
  cudaMalloc(&dx, (size_t)n * c * hh * w * 2); cudaMalloc(&dy, (size_t)on * oc * oh * ow * 2); cudaMalloc(&df, (size_t)k * c * r * s * 2); cudaMalloc(&ws, wsb);
  cudaMemset(dx, 0, (size_t)n * c * hh * w * 2); cudaMemset(df, 0, (size_t)k * c * r * s * 2);
  cudnnConvolutionFwdAlgoPerf_t perf[10]; int found = 0;
  CK(cudnnFindConvolutionForwardAlgorithmEx(h, x, dx, f, df, cv, y, dy, 10, &found, perf, ws, wsb));
  for (int i = 0; i < found; ++i) if (perf[i].status == CUDNN_STATUS_SUCCESS)
    printf("%s %s: algo %d math %d %.3f ms ws %zu MB\n", name, fmt == CUDNN_TENSOR_NCHW ? "NCHW" : "NHWC", perf[i].algo, perf[i].mathType, perf[i].time, perf[i].memory >> 20);
  cudaFree(dx); cudaFree(dy); cudaFree(df); cudaFree(ws);
  return 0;
}
int main() {
  cudnnHandle_t h; cudnnCreate(&h);
  for (int n : {1, 64})
    for (auto fmt : {CUDNN_TENSOR_NCHW, CUDNN_TENSOR_NHWC}) {
      const int frames = n == 1 ? 1001 : 1501;  // 10 s, 15 s
      printf("batch %d x %d frames\n", n, frames);
      run(h, n, 1, 161, frames, 32, 41, 11, 2, 2, 20, 5, fmt, "conv1");
      run(h, n, 32, 81, (frames + 1) / 2, 32, 21, 11, 2, 1, 10, 5, fmt, "conv2");
    }
  return 0;
}
