// cuBLASLt is opened on first use, not at start (src/cuda/cublaslt_loader.cpp): a process that never
// makes a CUDA context does not pay its ~210 MB of resident pages. Host-only: runs without a GPU.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "cuda/cublaslt_loader.h"

namespace ds2rt::test {
namespace {

bool mapped(const std::string& library) {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);)
    if (line.find(library) != std::string::npos) return true;
  return false;
}

// Before main and every test, whatever order they run in.
const bool kMappedAtStart = mapped("libcublasLt");

TEST(CublasLtLoading, NotMappedAtStart) { EXPECT_FALSE(kMappedAtStart); }

TEST(CublasLtLoading, OpenedWhenRequired) {
  EXPECT_NO_THROW(detail::cuda::requireCublasLt());  // the toolkit that built this has it
  EXPECT_TRUE(mapped("libcublasLt"));
}

}  // namespace
}  // namespace ds2rt::test
