// The recurrent cells' fast activations (rnn_cell.cuh), which the persistent kernels use for
// layers with 16-bit products: their error must stay far below fp16's rounding of h (2^-11
// relative), saturate to the right limits where exp overflows, and carry NaN through.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cuda/rnn_cell.cuh"

namespace ds2rt::test {
namespace {

using detail::cuda::activationSigmoid;
using detail::cuda::activationTanh;

__global__ void evaluate(const float* x, int n, float* tanh_fast, float* sigmoid_fast) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  tanh_fast[i] = activationTanh<true>(x[i]);
  sigmoid_fast[i] = activationSigmoid<true>(x[i]);
}

struct Results {
  std::vector<float> tanh, sigmoid;
};

Results evaluateOnDevice(const std::vector<float>& x) {
  const int n = static_cast<int>(x.size());
  float *x_d = nullptr, *tanh_d = nullptr, *sigmoid_d = nullptr;
  EXPECT_EQ(cudaMalloc(&x_d, n * sizeof(float)), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&tanh_d, n * sizeof(float)), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&sigmoid_d, n * sizeof(float)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(x_d, x.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  evaluate<<<(n + 255) / 256, 256>>>(x_d, n, tanh_d, sigmoid_d);
  Results r{std::vector<float>(n), std::vector<float>(n)};
  EXPECT_EQ(cudaMemcpy(r.tanh.data(), tanh_d, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(r.sigmoid.data(), sigmoid_d, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  cudaFree(x_d), cudaFree(tanh_d), cudaFree(sigmoid_d);
  return r;
}

bool haveGpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

TEST(CudaActivations, FastFormsAreAccurateWellBelowHalfPrecision) {
  if (!haveGpu()) GTEST_SKIP() << "no CUDA device here: the CUDA tests run on a GPU machine (scripts/gpu-check.sh)";
  std::vector<float> x;
  for (float v = -60.0f; v <= 60.0f; v += 0.0037f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-6f, 88.0f, 89.0f, -89.0f, 1e30f, -1e30f}) x.push_back(v);
  const Results r = evaluateOnDevice(x);
  double worst_tanh = 0, worst_sigmoid = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = std::tanh(static_cast<double>(x[i])), s = 1.0 / (1.0 + std::exp(-static_cast<double>(x[i])));
    worst_tanh = std::max(worst_tanh, std::abs(r.tanh[i] - t));
    worst_sigmoid = std::max(worst_sigmoid, std::abs(r.sigmoid[i] - s));
  }
  // Absolute error: what the next step's products see. fp16 rounds h to within 2^-11 of |h| <= 1.
  EXPECT_LT(worst_tanh, 2e-6);
  EXPECT_LT(worst_sigmoid, 1e-6);
  EXPECT_EQ(r.tanh[x.size() - 2], 1.0f);   // exp overflows to inf: 1 - 2 / inf
  EXPECT_EQ(r.tanh[x.size() - 1], -1.0f);  // exp underflows to 0: 1 - 2 / 1
  EXPECT_EQ(r.sigmoid[x.size() - 2], 1.0f);
  EXPECT_EQ(r.sigmoid[x.size() - 1], 0.0f);
}

TEST(CudaActivations, FastFormsCarryNaN) {
  if (!haveGpu()) GTEST_SKIP() << "no CUDA device here: the CUDA tests run on a GPU machine (scripts/gpu-check.sh)";
  const Results r = evaluateOnDevice({std::numeric_limits<float>::quiet_NaN()});
  EXPECT_TRUE(std::isnan(r.tanh[0]));
  EXPECT_TRUE(std::isnan(r.sigmoid[0]));
}

}  // namespace
}  // namespace ds2rt::test
