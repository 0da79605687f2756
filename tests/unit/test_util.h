// Shared helpers of the test suite: fixtures, random tensors and the relative L2 error.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

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

inline std::vector<float> toVector(const HostTensor& t) {
  const auto f = t.toFloat32();
  return {f.data<float>(), f.data<float>() + f.size()};
}

}  // namespace ds2rt::test
