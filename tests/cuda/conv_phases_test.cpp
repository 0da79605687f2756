// The space-to-depth form of a convolution (convolution_phases.h), on the host: a stride-1
// convolution of the input's phases with the rearranged filter, q outputs a position as channels,
// gives the original convolution's output, for DeepSpeech2's convolutions and smaller odd shapes;
// and the plan refuses what it cannot express. (The CUDA layer runs the same index map and filter through cuDNN.)
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "cuda/convolution_phases.h"
#include "cuda/tuning_bucket.h"

namespace ds2rt::test {
namespace {

using detail::cuda::phaseFilter;
using detail::cuda::PhaseGeometry;
using detail::cuda::phaseGeometry;
using detail::cuda::PhasePlan;
using detail::cuda::phaseSource;
using detail::cuda::planPhases;
using detail::cuda::tuningBucket;

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

// The stride-1 convolution on the input's phases (gathered as the CUDA layer does, with its padding),
// its q x output channels put back in place, gives the original convolution's output.
void expectPhasesMatch(int64_t channels, int64_t rows, int64_t cols, std::array<int, 2> kernel,
                       std::array<int, 2> stride, std::array<int, 2> out_phases,
                       std::array<int, 2> pad = {-1, -1}) {
  std::mt19937 rng(static_cast<unsigned>(rows * 31 + cols));
  std::uniform_real_distribution<float> uniform(-1, 1);
  const int64_t out_channels = 3;
  ConvolutionDesc d;
  d.out_channels = static_cast<int>(out_channels);
  d.kernel = kernel;
  d.stride = stride;
  d.padding = pad[0] < 0 ? std::array<int, 2>{(kernel[0] - 1) / 2, (kernel[1] - 1) / 2} : pad;
  std::vector<float> w(out_channels * channels * kernel[0] * kernel[1]);
  for (float& v : w) v = uniform(rng);
  d.weight = HostTensor::fromFloats({out_channels, channels, kernel[0], kernel[1]}, w);
  Image x{channels, rows, cols, std::vector<double>(channels * rows * cols)};
  for (double& v : x.v) v = uniform(rng);

  const PhasePlan p = planPhases(d, channels, out_phases);
  ASSERT_TRUE(p.usable);
  const int64_t out_rows = (rows + 2 * d.padding[0] - kernel[0]) / stride[0] + 1;
  const int64_t out_cols = (cols + 2 * d.padding[1] - kernel[1]) / stride[1] + 1;
  const Image expected = convolve(x, w, out_channels, kernel, stride, d.padding, out_rows, out_cols);

  const PhaseGeometry g = phaseGeometry(p, {rows, cols}, {out_rows, out_cols});
  Image phases{p.channels, g.lengths[0], g.lengths[1], std::vector<double>(p.channels * g.lengths[0] * g.lengths[1])};
  for (int c = 0; c < p.channels; ++c)
    for (int64_t i = 0; i < g.lengths[0]; ++i)
      for (int64_t j = 0; j < g.lengths[1]; ++j) {
        int source = 0;
        int64_t r = 0, col = 0;
        if (phaseSource(p, g, c, i, j, rows, cols, source, r, col))
          phases.v[(c * g.lengths[0] + i) * g.lengths[1] + j] = x.at(source, r, col);
      }
  const HostTensor filter = phaseFilter(p, d);
  ASSERT_EQ(filter.dim(0), p.phaseOutChannels());
  ASSERT_EQ(filter.dim(1), p.channels);
  const std::vector<float> w2(filter.floats().begin(), filter.floats().end());
  const Image got = convolve(phases, w2, p.phaseOutChannels(), p.kernel, {1, 1}, g.padding, g.outputs[0], g.outputs[1]);
  const int q0 = out_phases[0], q1 = out_phases[1];
  ASSERT_GE(g.outputs[0] * q0, out_rows);
  ASSERT_GE(g.outputs[1] * q1, out_cols);
  for (int64_t k = 0; k < out_channels; ++k)
    for (int64_t o = 0; o < out_rows; ++o)
      for (int64_t t = 0; t < out_cols; ++t) {
        const int64_t channel = (k * q0 + o % q0) * q1 + t % q1;
        ASSERT_NEAR(got.at(channel, o / q0, t / q1), expected.at(k, o, t), 1e-9) << k << " " << o << " " << t;
      }
}

TEST(ConvolutionPhases, DeepSpeechFirstConvolution) {
  for (const std::array<int, 2> q : {std::array<int, 2>{1, 1}, {1, 2}, {2, 1}, {2, 2}}) {
    expectPhasesMatch(1, 161, 37, {41, 11}, {2, 2}, q);
    expectPhasesMatch(1, 160, 38, {41, 11}, {2, 2}, q);  // even lengths
  }
  const ConvolutionDesc d{.out_channels = 32, .kernel = {41, 11}, .stride = {2, 2}, .padding = {20, 5}};
  const PhasePlan p = planPhases(d, 1);  // 4 phases -> 8 channels, a 21 x 6 filter
  EXPECT_EQ(p.channels, 8);
  EXPECT_EQ(p.kernel, (std::array<int, 2>{21, 6}));
  EXPECT_EQ(p.phaseOutChannels(), 32);
  const PhasePlan two = planPhases(d, 1, {1, 2});  // 8 phases, a 21 x 4 filter, 2 outputs a position
  EXPECT_EQ(two.channels, 8);
  EXPECT_EQ(two.kernel, (std::array<int, 2>{21, 4}));
  EXPECT_EQ(two.phaseOutChannels(), 64);
  // 161 x 1000 -> 81 x 500: cuDNN pads the 81 x 250 outputs' phases by 10 x 1.
  const PhaseGeometry g = phaseGeometry(two, {161, 1000}, {81, 500});
  EXPECT_EQ(g.outputs, (std::array<int64_t, 2>{81, 250}));
  EXPECT_EQ(g.padding, (std::array<int, 2>{10, 1}));
  EXPECT_EQ(g.lengths, (std::array<int64_t, 2>{81, 251}));
}

TEST(ConvolutionPhases, DeepSpeechSecondConvolution) {
  for (const std::array<int, 2> q : {std::array<int, 2>{1, 1}, {1, 2}, {2, 1}}) {
    expectPhasesMatch(32, 21, 9, {21, 11}, {2, 1}, q);
    expectPhasesMatch(32, 22, 10, {21, 11}, {2, 1}, q);
  }
  const ConvolutionDesc d{.out_channels = 32, .kernel = {21, 11}, .stride = {2, 1}, .padding = {10, 5}};
  const PhasePlan p = planPhases(d, 32, {1, 2});  // 128 channels, an 11 x 6 filter, 64 outputs
  EXPECT_EQ(p.channels, 128);
  EXPECT_EQ(p.kernel, (std::array<int, 2>{11, 6}));
  EXPECT_EQ(p.phaseOutChannels(), 64);
  EXPECT_FALSE(planPhases(d, 32, {2, 2}).usable);  // 256 phase channels
}

TEST(ConvolutionPhases, OddShapesStridesAndPaddings) {
  expectPhasesMatch(1, 16, 9, {5, 3}, {2, 2}, {1, 1});   // even rows, odd columns
  expectPhasesMatch(2, 11, 12, {3, 7}, {1, 3}, {1, 1});  // stride 1 on one axis, 3 on the other: 6 phases
  expectPhasesMatch(2, 9, 9, {7, 1}, {4, 1}, {1, 1});    // 8 channels exactly
  expectPhasesMatch(3, 13, 17, {3, 5}, {1, 1}, {1, 3});  // stride 1, three outputs a column
  expectPhasesMatch(2, 12, 11, {4, 6}, {2, 1}, {2, 2});  // even filters
  expectPhasesMatch(2, 12, 11, {5, 3}, {2, 2}, {1, 2}, {0, 0});  // no padding
  expectPhasesMatch(2, 12, 11, {5, 3}, {2, 2}, {2, 1}, {4, 2});  // padding over half the filter
  expectPhasesMatch(1, 3, 2, {5, 5}, {2, 2}, {2, 2});  // an input shorter than the filter
}

TEST(ConvolutionPhases, RefusesWhatItCannotExpress) {
  const auto plan = [](ConvolutionDesc d, int64_t channels, std::array<int, 2> q = {1, 1}) {
    return planPhases(d, channels, q).usable;
  };
  const ConvolutionDesc ds2{.out_channels = 32, .kernel = {41, 11}, .stride = {2, 2}, .padding = {20, 5}};
  EXPECT_TRUE(plan(ds2, 1));
  EXPECT_FALSE(plan(ds2, 64));  // 256 phase channels
  ConvolutionDesc unit_stride = ds2;
  unit_stride.stride = {1, 1};
  EXPECT_FALSE(plan(unit_stride, 1));  // nothing to rearrange
  EXPECT_TRUE(plan(unit_stride, 1, {1, 2}));
  EXPECT_FALSE(plan(ds2, 1, {0, 1}));
  ConvolutionDesc wide = ds2;
  wide.out_channels = 96;
  EXPECT_FALSE(plan(wide, 1, {2, 2}));  // 384 output channels
  ConvolutionDesc dilated = ds2;
  dilated.dilation = {2, 1};
  EXPECT_FALSE(plan(dilated, 1));
}

// The lengths that share a convolution's timed algorithm (tuning_bucket.h): buckets of the form
// m x 2^e (m 4 to 7), so a bucket is at most 25% wider than its smallest length.
TEST(ConvolutionTuningBucket, QuarterOctaveSteps) {
  for (int64_t n = 0; n < 8; ++n) EXPECT_EQ(tuningBucket(n), n);
  EXPECT_EQ(tuningBucket(8), 8);
  EXPECT_EQ(tuningBucket(9), 10);
  EXPECT_EQ(tuningBucket(97), 112);
  EXPECT_EQ(tuningBucket(1000), 1024);
  EXPECT_EQ(tuningBucket(1025), 1280);
  for (int64_t n = 1; n < 5000; ++n) {
    const int64_t b = tuningBucket(n);
    ASSERT_GE(b, n);
    ASSERT_LE(b * 4, (n + 1) * 5 + 4) << n;  // at most ~25% above n
    ASSERT_EQ(tuningBucket(b), b) << n;      // a bucket is its own
    ASSERT_LE(tuningBucket(n - 1), b) << n;  // monotone
  }
}

}  // namespace
}  // namespace ds2rt::test
