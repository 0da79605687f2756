// Shared helpers of the test suite: fixtures, random tensors and the relative L2 error.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cpu/amx_gemm.h"
#include "ds2rt/error.h"
#include "ds2rt/tensor.h"

namespace ds2rt::test {

inline std::string dataPath(const std::string& relative) { return std::string(DS2RT_TEST_DATA) + "/" + relative; }

inline std::string tempPath(const std::string& name) {
  return testing::TempDir() + "ds2rt_" + std::to_string(::getpid()) + "_" + name;
}

// A temporary path for this test program; everything made there is removed when it exits.
inline std::string scratch(const std::string& name) {
  static struct Registry {
    std::vector<std::string> paths;
    ~Registry() {
      for (const auto& p : paths) {
        std::error_code ignored;
        std::filesystem::remove_all(p, ignored);
      }
    }
  } registry;
  registry.paths.push_back(tempPath(name));
  return registry.paths.back();
}


// What an fp32 layer owes a double-precision reference: 1e-5 where its GEMMs are oneDNN's sgemm; on
// CPUs with AMX fp32 GEMMs run as three bf16 products (src/cpu/amx_gemm.h, ~5e-6 relative a
// product), which the small random layers of these tests compound to 1-2e-5.
inline double fp32KernelTolerance() { return detail::cpu::useBF16x3Gemm() ? 5e-5 : 1e-5; }

// ||a - b|| / ||b||
inline double relativeL2(const float* a, const float* b, size_t n) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < n; ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    ref += static_cast<double>(b[i]) * b[i];
  }
  return ref == 0 ? std::sqrt(diff) : std::sqrt(diff / ref);
}

inline double relativeL2(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return relativeL2(a.data(), b.data(), std::min(a.size(), b.size()));
}

inline HostTensor randomTensor(Shape shape, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(numElements(shape)));
  for (float& x : v) x = normal(rng);
  return HostTensor::fromFloats(std::move(shape), std::move(v));
}

// Runs `body`, expects a ds2rt::Error and returns its message.
inline std::string errorOf(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ds2rt::Error, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected ds2rt::Error, nothing was thrown";
  return "";
}

inline std::vector<float> toVector(const HostTensor& t) {
  const auto f = t.toFloat32();
  return {f.data<float>(), f.data<float>() + f.size()};
}

// The frames of an N x T x C output that lie within each utterance's length.
inline std::vector<float> validFrames(const HostTensor& t, const HostTensor& lengths) {
  std::vector<float> out;
  const HostTensor f = t.toFloat32();
  const int64_t frames = t.dim(1), classes = t.dim(2);
  for (int64_t b = 0; b < t.dim(0); ++b)
    for (int64_t i = 0; i < lengths.data<int32_t>()[b] * classes; ++i) out.push_back(f.data<float>()[b * frames * classes + i]);
  return out;
}

}  // namespace ds2rt::test
