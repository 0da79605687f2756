// The CUDA tests need a GPU: without one each is skipped with the reason (CI compiles them only).
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#define REQUIRE_GPU()                                                                      \
  do {                                                                                     \
    int count = 0;                                                                         \
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)                           \
      GTEST_SKIP() << "no CUDA device here: the CUDA tests run on a GPU machine "          \
                      "(scripts/gpu-check.sh)";                                            \
  } while (0)

// The current device's compute capability as major * 10 + minor (0 without a device).
inline int computeCapability() {
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
    return 0;
  return major * 10 + minor;
}
