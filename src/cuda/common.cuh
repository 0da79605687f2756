// Shared pieces of the CUDA backend: error checking around every CUDA, cuBLASLt and cuDNN
// call, element types, and device buffers owned by RAII handles.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "ds2rt/error.h"
#include "ds2rt/network.h"
#include "ds2rt/tensor.h"

namespace ds2rt::detail::cuda {

void throwCuda(cudaError_t status, const char* call, const char* file, int line);
void throwCublas(cublasStatus_t status, const char* call, const char* file, int line);

#define DS2RT_CUDA(call)                                                                      \
  do {                                                                                        \
    const cudaError_t status_ = (call);                                                       \
    if (status_ != cudaSuccess) ::ds2rt::detail::cuda::throwCuda(status_, #call, __FILE__, __LINE__); \
  } while (0)

#define DS2RT_CUBLAS(call)                                                                          \
  do {                                                                                              \
    const cublasStatus_t status_ = (call);                                                          \
    if (status_ != CUBLAS_STATUS_SUCCESS) ::ds2rt::detail::cuda::throwCublas(status_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, not at the next call.
#define DS2RT_CUDA_LAUNCHED() DS2RT_CUDA(cudaGetLastError())

// Device memory owned by a unique_ptr.
struct CudaFree {
  void operator()(void* p) const { cudaFree(p); }
};
using DeviceMemory = std::unique_ptr<void, CudaFree>;
DeviceMemory allocateDevice(size_t bytes);

// The GPU time, in ms, of the work `launch` puts on `stream` (between two events; waits for it). The
// caller runs a warm-up first where the first launch would pay for more than the work.
float gpuMs(cudaStream_t stream, const std::function<void()>& launch);

// A float32 host tensor uploaded to the device in `type` (float32, float16 or bfloat16).
DeviceMemory uploadAs(const HostTensor& tensor, DataType type);
DeviceMemory uploadFloats(const float* data, size_t count, DataType type);

template <typename T> struct TypeOf;
template <> struct TypeOf<float> { static constexpr DataType value = DataType::kFloat32; };
template <> struct TypeOf<__half> { static constexpr DataType value = DataType::kFloat16; };
template <> struct TypeOf<__nv_bfloat16> { static constexpr DataType value = DataType::kBFloat16; };

__device__ __forceinline__ float toFloat(float x) { return x; }
__device__ __forceinline__ float toFloat(__half x) { return __half2float(x); }
__device__ __forceinline__ float toFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T fromFloat(float x);
template <> __device__ __forceinline__ float fromFloat<float>(float x) { return x; }
template <> __device__ __forceinline__ __half fromFloat<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + __expf(-x)); }

// Calls `f` with a null pointer of the C++ type for `type`: dispatch from run-time type to templates.
template <typename F>
auto dispatchType(DataType type, F&& f) {
  switch (type) {
    case DataType::kFloat16: return f(static_cast<__half*>(nullptr));
    case DataType::kBFloat16: return f(static_cast<__nv_bfloat16*>(nullptr));
    default: return f(static_cast<float*>(nullptr));
  }
}

inline unsigned blocksFor(int64_t elements, unsigned threads = 256) {
  return static_cast<unsigned>((elements + threads - 1) / threads);
}

}  // namespace ds2rt::detail::cuda

namespace ds2rt::detail::cuda {

// ActivationDesc in a form kernels can take by value.
struct DeviceActivation {
  ActivationType type = ActivationType::kNone;
  float min = 0, max = 0;
  DeviceActivation() = default;
  explicit DeviceActivation(const ActivationDesc& a) : type(a.type), min(a.min), max(a.max) {}
  __device__ __forceinline__ float operator()(float x) const {
    switch (type) {
      case ActivationType::kRelu: return fmaxf(x, 0.0f);
      case ActivationType::kClip: return fminf(fmaxf(x, min), max);
      case ActivationType::kTanh: return tanhf(x);
      case ActivationType::kSigmoid: return 1.0f / (1.0f + expf(-x));
      default: return x;
    }
  }
};

}  // namespace ds2rt::detail::cuda
