// The space-to-depth form of a strided convolution (convolution_phases.h), on the host: a stride-1
// convolution of the input's phases with the rearranged filter gives the original convolution's
// output, for DeepSpeech2's first convolution and smaller odd shapes; and the plan refuses what it
// cannot express. (The CUDA layer runs the same index map and filter through cuDNN.)
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "cuda/convolution_phases.h"

namespace ds2rt::test {
namespace {

using detail::cuda::phaseFilter;
using detail::cuda::phaseLength;
using detail::cuda::PhasePlan;
using detail::cuda::phaseSource;
using detail::cuda::planPhases;

struct Image {
  int64_t c, rows, cols;
  std::vector<double> v;
  double at(int64_t ch, int64_t r, int64_t col) const {
    return r < 0 || col < 0 || r >= rows || col >= cols ? 0.0 : v[(ch * rows + r) * cols + col];
  }
};

// Cross-correlation, N = 1: out[k][o][q] = sum w[k][c][a][b] x[c][s o + a - p][s q + b - p].
Image convolve(const Image& x, const std::vector<float>& w, int64_t out_channels, std::array<int, 2> kernel,
               std::array<int, 2> stride, std::array<int, 2> pad, int64_t out_rows, int64_t out_cols) {
  Image y{out_channels, out_rows, out_cols, std::vector<double>(out_channels * out_rows * out_cols, 0.0)};
  for (int64_t k = 0; k < out_channels; ++k)
    for (int64_t o = 0; o < out_rows; ++o)
      for (int64_t q = 0; q < out_cols; ++q) {
        double sum = 0;
        for (int64_t c = 0; c < x.c; ++c)
          for (int a = 0; a < kernel[0]; ++a)
            for (int b = 0; b < kernel[1]; ++b)
              sum += w[((k * x.c + c) * kernel[0] + a) * kernel[1] + b] *
                     x.at(c, stride[0] * o + a - pad[0], stride[1] * q + b - pad[1]);
        y.v[(k * out_rows + o) * out_cols + q] = sum;
      }
  return y;
}

void expectPhasesMatch(int64_t channels, int64_t rows, int64_t cols, std::array<int, 2> kernel,
                       std::array<int, 2> stride) {
  std::mt19937 rng(static_cast<unsigned>(rows * 31 + cols));
  std::uniform_real_distribution<float> uniform(-1, 1);
  const int64_t out_channels = 3;
  ConvolutionDesc d;
  d.out_channels = static_cast<int>(out_channels);
  d.kernel = kernel;
  d.stride = stride;
  d.padding = {(kernel[0] - 1) / 2, (kernel[1] - 1) / 2};
  std::vector<float> w(out_channels * channels * kernel[0] * kernel[1]);
  for (float& v : w) v = uniform(rng);
  d.weight = HostTensor::fromFloats({out_channels, channels, kernel[0], kernel[1]}, w);
  Image x{channels, rows, cols, std::vector<double>(channels * rows * cols)};
  for (double& v : x.v) v = uniform(rng);

  const PhasePlan p = planPhases(d, channels);
  ASSERT_TRUE(p.usable);
  const int64_t out_rows = (rows + 2 * d.padding[0] - kernel[0]) / stride[0] + 1;
  const int64_t out_cols = (cols + 2 * d.padding[1] - kernel[1]) / stride[1] + 1;
  ASSERT_EQ(phaseLength(rows, stride[0]), out_rows);
  ASSERT_EQ(phaseLength(cols, stride[1]), out_cols);
  const Image expected = convolve(x, w, out_channels, kernel, stride, d.padding, out_rows, out_cols);

  Image phases{p.channels, out_rows, out_cols, std::vector<double>(p.channels * out_rows * out_cols, 0.0)};
  for (int c = 0; c < p.channels; ++c)
    for (int64_t i = 0; i < out_rows; ++i)
      for (int64_t j = 0; j < out_cols; ++j) {
        int source = 0;
        int64_t r = 0, col = 0;
        if (phaseSource(p, c, i, j, rows, cols, source, r, col))
          phases.v[(c * out_rows + i) * out_cols + j] = x.at(source, r, col);
      }
  const HostTensor filter = phaseFilter(p, d);
  ASSERT_EQ(filter.dim(1), p.channels);
  const std::vector<float> w2(filter.floats().begin(), filter.floats().end());
  const Image got = convolve(phases, w2, out_channels, p.kernel, {1, 1}, p.padding, out_rows, out_cols);
  for (size_t i = 0; i < got.v.size(); ++i) ASSERT_NEAR(got.v[i], expected.v[i], 1e-9) << "output " << i;
}

TEST(ConvolutionPhases, DeepSpeechFirstConvolution) {
  expectPhasesMatch(1, 161, 37, {41, 11}, {2, 2});  // 4 phases -> 8 channels, a 21 x 7 filter, padding 10 x 3
  const ConvolutionDesc d{.out_channels = 32, .kernel = {41, 11}, .stride = {2, 2}, .padding = {20, 5}};
  const PhasePlan p = planPhases(d, 1);
  EXPECT_EQ(p.channels, 8);
  EXPECT_EQ(p.kernel, (std::array<int, 2>{21, 7}));
  EXPECT_EQ(p.padding, (std::array<int, 2>{10, 3}));
}

TEST(ConvolutionPhases, OddShapesAndStrides) {
  expectPhasesMatch(1, 16, 9, {5, 3}, {2, 2});   // even rows, odd columns
  expectPhasesMatch(2, 11, 12, {3, 7}, {1, 3});  // stride 1 on one axis, 3 on the other: 6 phases
  expectPhasesMatch(2, 9, 9, {7, 1}, {4, 1});    // 8 channels exactly
}

TEST(ConvolutionPhases, RefusesWhatItCannotExpress) {
  const auto plan = [](ConvolutionDesc d, int64_t channels) { return planPhases(d, channels).usable; };
  const ConvolutionDesc ds2{.out_channels = 32, .kernel = {41, 11}, .stride = {2, 2}, .padding = {20, 5}};
  EXPECT_TRUE(plan(ds2, 1));
  EXPECT_FALSE(plan(ds2, 32));  // DeepSpeech2's second convolution: 64 phase channels
  ConvolutionDesc unit_stride = ds2;
  unit_stride.stride = {1, 1};
  EXPECT_FALSE(plan(unit_stride, 1));
  ConvolutionDesc other_padding = ds2;
  other_padding.padding = {0, 5};  // the output is then shorter than a phase
  EXPECT_FALSE(plan(other_padding, 1));
  ConvolutionDesc dilated = ds2;
  dilated.dilation = {2, 1};
  EXPECT_FALSE(plan(dilated, 1));
}

}  // namespace
}  // namespace ds2rt::test
