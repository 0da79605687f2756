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
