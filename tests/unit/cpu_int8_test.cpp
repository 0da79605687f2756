// int8 on the CPU backend: the accuracy cost against fp32 (PyTorch's own outputs on the parity
// fixtures, and a larger random-weight model), and clear refusals where a precision is unavailable.
#include <gmock/gmock.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

#include "cpu/kernels.h"
#include "cpu/rnn_cell.h"
#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "ds2rt/network.h"
#include "engine_comparison.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

constexpr double kInt8Tolerance = 2e-2;  // relative L2 of the probabilities

bool cpuHasVnni() { return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512f"); }

class Int8ParityTest : public testing::TestWithParam<std::string> {};

TEST_P(Int8ParityTest, CloseToPyTorchFp32) {
  if (!cpuHasVnni()) GTEST_SKIP() << "no AVX512_VNNI";
  const std::string name = GetParam();
  const auto model = DeepSpeech2Model::load(dataPath("parity/" + name + "/model.safetensors"));
  const auto io = WeightStore::load(dataPath("parity/" + name + "/io.safetensors"));
  const Engine engine = Builder({.precision = Precision::kInt8}).build(model.createNetwork());
  auto out = engine.createContext().run({{"features", io.get("input")}, {"lengths", io.get("input_lengths")}});
  const HostTensor& lengths = out.at("output_lengths");
  ASSERT_EQ(toVector(lengths), toVector(io.get("output_lengths")));
  const double error = relativeL2(validFrames(out.at("probs"), lengths), validFrames(io.get("probs"), lengths));
  // One vanilla layer of 16 units with random weights passes every perturbation of its input
  // straight to the output: fp32 recurrences with bf16 convolutions alone (AMX CPUs) moved it from
  // 1.7e-2 to 2.3e-2, int8 convolutions (CPUs without AMX) to 2.3e-2 too. The others stay under 1.3e-2.
  const double tolerance = name == "rnn_bi_l1_h16" ? 3e-2 : kInt8Tolerance;
  EXPECT_LT(error, tolerance) << name;
  RecordProperty("int8_relative_l2", cat(error));
  std::printf("%s int8 vs PyTorch fp32 relative L2 %.3e\n", name.c_str(), error);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Int8ParityTest,
                         testing::Values("lstm_bi_l2_h32", "gru_bi_l3_h24", "rnn_bi_l1_h16", "lstm_uni_l2_h16_ctx3",
                                         "gru_uni_l1_h24_ctx2", "rnn_uni_l3_h16_ctx4"));

// deepspeech.pytorch's shapes at a width that keeps the test quick: int8 against fp32 ds2rt.
TEST(Int8, RandomWeightModelCloseToFp32) {
  if (!cpuHasVnni()) GTEST_SKIP() << "no AVX512_VNNI";
  for (const std::string type : {"lstm", "gru"}) {
    const auto network = [&] {
      return DeepSpeech2Model::withRandomWeights(randomModelConfig(type, 512, 3), 3).createNetwork();
    };
    const Engine fp32 = Builder().build(network());
    const Engine int8 = Builder({.precision = Precision::kInt8}).build(network());
    std::mt19937 rng(5);
    // The second batch has 3 x 900 frames after the convolutions: the input projection runs in
    // two chunks (2048 rows each at most).
    for (const auto& [frames, lengths] : std::vector<std::pair<int, std::vector<int32_t>>>{{300, {300, 211}},
                                                                                         {1800, {1800, 1500, 1777}}}) {
      const double error = probabilitiesDistance(int8, fp32, frames, lengths, rng);
      EXPECT_LT(error, kInt8Tolerance) << type << " " << lengths.size() << " x " << frames;
      RecordProperty(cat(type, "_", frames, "_int8_relative_l2"), cat(error));
      std::printf("%s 512x3 int8 vs fp32 relative L2 %.3e (%zu x %d frames)\n", type.c_str(), error,
                  lengths.size(), frames);
    }
  }
}

// A 5 x 256 biGRU with peaked posteriors (its output layer x 8, as in the parity fixtures), whose
// int8 error comes mostly from the per-row int8 input-projection weights. On AMX CPUs int8 engines
// run the projections as bf16 matmuls (as fast there) and the error must stay well inside the
// tolerance (0.28-0.56e-2 measured); without AMX (ctest's cpu_int8_bf16_without_amx) they are int8
// GEMMs, 0.69-1.69e-2 over these seeds with the squared-error scales (0.70-2.07e-2 with max / 127).
TEST(Int8, BidirectionalGruPeakedPosteriors) {
  if (!cpuHasVnni()) GTEST_SKIP() << "no AVX512_VNNI";
  DeepSpeech2Config c;
  c.rnn_type = "gru";
  c.hidden_size = 256;
  c.hidden_layers = 5;
  for (const char* l : {"_", "'", "A", "B", "C", "D", "E", "F", "G", "H", " "}) c.labels.emplace_back(l);
  std::mt19937 rng(11);
  const HostTensor features = randomTensor({2, 1, 161, 300}, rng);
  const HostTensor lengths = HostTensor::fromInts({2}, {300, 211});
  double worst = 0;
  for (const uint32_t seed : {1u, 2u, 3u, 4u}) {
    WeightStore weights = DeepSpeech2Model::withRandomWeights(c, seed).weights();
    std::vector<float> fc = toVector(weights.get("fc.0.module.1.weight"));
    for (float& w : fc) w *= 8.0f;
    weights.set("fc.0.module.1.weight", HostTensor::fromFloats(weights.get("fc.0.module.1.weight").shape(), fc));
    const DeepSpeech2Model model(c, weights);
    const auto a = Builder().build(model.createNetwork()).createContext().run({{"features", features}, {"lengths", lengths}});
    const auto b = Builder({.precision = Precision::kInt8})
                       .build(model.createNetwork())
                       .createContext()
                       .run({{"features", features}, {"lengths", lengths}});
    const double error = relativeL2(toVector(b.at("probs")), toVector(a.at("probs")));
    std::printf("gru 256x5 bidirectional, seed %u: int8 vs fp32 relative L2 %.3e\n", seed, error);
    worst = std::max(worst, error);
  }
  EXPECT_LT(worst, detail::cpu::haveAmx() ? 1e-2 : kInt8Tolerance);
}

// Row scales that minimise the squared error, between max / 127 and 3/4 of it: never worse than max /
// 127, and over many rows of Gaussian and heavy-tailed (Laplace) weights some clip their largest
// magnitudes; the int8 values are those of the chosen scale.
TEST(Int8, RowScalesMinimiseSquaredError) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::exponential_distribution<float> exponential(1.0f);
  const int64_t rows = 64, cols = 300;
  std::vector<float> w(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i)
    w[i] = i / cols % 2 ? normal(rng) : (rng() % 2 ? 1.0f : -1.0f) * exponential(rng);
  std::vector<int8_t> q(w.size());
  std::vector<float> scale(rows);
  detail::cpu::quantizeRows(w.data(), rows, cols, q.data(), scale.data());
  const auto squared_error = [&](int64_t row, float s) {
    double e = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = w[row * cols + c];
      const double d = std::clamp(std::nearbyint(v / s), -127.0f, 127.0f) * s - v;
      e += d * d;
    }
    return e;
  };
  int clipped = 0;
  for (int64_t r = 0; r < rows; ++r) {
    float peak = 0;
    for (int64_t c = 0; c < cols; ++c) peak = std::max(peak, std::abs(w[r * cols + c]));
    EXPECT_LE(squared_error(r, scale[r]), squared_error(r, peak / 127.0f) * (1 + 1e-6)) << r;
    EXPECT_LE(scale[r], peak / 127.0f) << r;
    EXPECT_GE(scale[r], 0.75f * peak / 127.0f * (1 - 1e-6f)) << r;
    clipped += scale[r] < peak / 127.0f;
    for (int64_t c = 0; c < cols; ++c)
      ASSERT_EQ(q[r * cols + c], std::clamp(std::nearbyint(w[r * cols + c] / scale[r]), -127.0f, 127.0f)) << r << " " << c;
  }
  EXPECT_GT(clipped, 0);
}

// DeepSpeech2's two convolutions (fewer channels) with its Hardtanh, int8 engines against fp32: each
// utterance gets its own input scale, so a loud and a quiet one in one batch both stay close, and an
// all-zero utterance gives the activation of the bias, not NaNs.
TEST(Int8, ConvolutionsCloseToFp32) {
  if (!cpuHasVnni()) GTEST_SKIP() << "no AVX512_VNNI";
  std::mt19937 rng(7);
  const auto conv = [&](int64_t in, int64_t out, std::array<int, 2> kernel, std::array<int, 2> stride,
                        std::array<int, 2> padding) {
    ConvolutionDesc d;
    d.out_channels = out;
    d.kernel = kernel;
    d.stride = stride;
    d.padding = padding;
    d.weight = randomTensor({out, in, kernel[0], kernel[1]}, rng, 0.05f);
    d.bias = randomTensor({out}, rng);
    d.activation = {ActivationType::kClip, 0.0f, 20.0f};
    return d;
  };
  NetworkDefinition net;
  const Tensor x = net.addImageInput("x", 1, 161);
  const Tensor y = net.addConvolution("conv1", x, conv(1, 8, {41, 11}, {2, 2}, {20, 5}));
  net.markOutput(net.addConvolution("conv2", y, conv(8, 8, {21, 11}, {2, 1}, {10, 5})), "y");
  const Engine fp32 = Builder().build(net);
  const Engine int8 = Builder({.precision = Precision::kInt8}).build(net);
  // The first convolution (one input channel) is never int8; the second is where the CPU has no AMX.
  EXPECT_THAT(int8.describe(), HasSubstr(detail::cpu::haveAmx() ? "bf16 convolution" : "int8 convolution"));
  HostTensor input = randomTensor({3, 1, 161, 120}, rng, 3.0f);
  float* frames = input.mutableData<float>();
  const int64_t per_utterance = 161 * 120;
  for (int64_t i = 0; i < per_utterance; ++i) frames[per_utterance + i] *= 1e-3f;  // a quiet one
  std::fill(frames + 2 * per_utterance, frames + 3 * per_utterance, 0.0f);       // silence
  const HostTensor a = fp32.createContext().run({{"x", input}}).at("y");
  const HostTensor b = int8.createContext().run({{"x", input}}).at("y");
  ASSERT_EQ(a.shape(), b.shape());
  const int64_t per_output = a.size() / 3;
  for (int64_t n = 0; n < 3; ++n) {
    const std::vector<float> want(a.data<float>() + n * per_output, a.data<float>() + (n + 1) * per_output);
    const std::vector<float> got(b.data<float>() + n * per_output, b.data<float>() + (n + 1) * per_output);
    const double error = relativeL2(got, want);
    EXPECT_LT(error, 1e-2) << "utterance " << n;
    std::printf("convolutions int8 vs fp32, utterance %ld: relative L2 %.3e\n", static_cast<long>(n), error);
  }
}

// The int8 convolution's epilogue (input scale, bias, then the activation) for every activation
// kind, on a signed input (s8) and, after conv1's Hardtanh, a non-negative one (u8).
TEST(Int8, ConvolutionActivationsCloseToFp32) {
  if (!cpuHasVnni()) GTEST_SKIP() << "no AVX512_VNNI";
  for (const ActivationDesc& act : std::vector<ActivationDesc>{{ActivationType::kNone},
                                                               {ActivationType::kRelu},
                                                               {ActivationType::kClip, -1.0f, 2.0f},
                                                               {ActivationType::kTanh},
                                                               {ActivationType::kSigmoid}}) {
    std::mt19937 rng(9);
    const auto conv = [&](int64_t in, std::array<int, 2> kernel, ActivationDesc activation) {
      ConvolutionDesc d;
      d.out_channels = 8;
      d.kernel = kernel;
      d.stride = {2, 1};
      d.padding = {kernel[0] / 2, kernel[1] / 2};
      d.weight = randomTensor({8, in, kernel[0], kernel[1]}, rng, 0.1f);
      d.bias = randomTensor({8}, rng, 0.5f);
      d.activation = activation;
      return d;
    };
    NetworkDefinition net;
    const Tensor x = net.addImageInput("x", 8, 40);
    const Tensor signed_in = net.addConvolution("signed", x, conv(8, {5, 3}, act));
    const Tensor clipped = net.addConvolution("clipped", x, conv(8, {5, 3}, {ActivationType::kClip, 0.0f, 20.0f}));
    net.markOutput(signed_in, "a");
    net.markOutput(net.addConvolution("unsigned", clipped, conv(8, {3, 3}, act)), "b");
    const HostTensor input = randomTensor({2, 8, 40, 30}, rng, 2.0f);
    const auto want = Builder().build(net).createContext().run({{"x", input}});
    const auto got = Builder({.precision = Precision::kInt8}).build(net).createContext().run({{"x", input}});
    // Int8 (CPUs without AMX) measured 1.0e-2 to 1.4e-2 here: a random input's largest value is ~4.5
    // standard deviations, so one step of 127 is ~1% of its spread, and 120 taps average little
    // of it away. bf16 (with AMX): ~2e-3.
    for (const char* name : {"a", "b"})
      EXPECT_LT(relativeL2(toVector(got.at(name)), toVector(want.at(name))), kInt8Tolerance)
          << name << " " << toString(act.type);
  }
}

TEST(Int8, RefusedWhereUnavailable) {
  // Without the CUDA backend the message names that instead.
  EXPECT_THAT(errorOf([] { BuilderConfig{.device = Device::kCUDA, .precision = Precision::kInt8}.validate(); }),
              testing::AnyOf(HasSubstr("int8"), HasSubstr("no CUDA backend")));
  EXPECT_THAT(errorOf([] { BuilderConfig{.device = Device::kCPU, .precision = Precision::kFP16}.validate(); }),
              HasSubstr("fp16"));
  EXPECT_EQ(precisionFromString("int8"), Precision::kInt8);
  EXPECT_STREQ(toString(Precision::kInt8), "int8");
}

}  // namespace
}  // namespace ds2rt::test
