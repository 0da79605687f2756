// Each non-recurrent layer on the CPU backend against a naive reference (plain loops, double
// accumulation), built with and without graph optimisation; plus the errors that name the
// layer, tensor or shape at fault.
#include <gmock/gmock.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <functional>

#include "cpu/rnn_cell.h"
#include "ds2rt/builder.h"
#include "ds2rt/engine.h"
#include "ds2rt/error.h"
#include "ds2rt/network.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;
using Outputs = std::map<std::string, HostTensor>;

Outputs runNetwork(const NetworkDefinition& net, bool optimize, const Outputs& inputs,
                   std::vector<std::string>* report = nullptr) {
  const Engine engine = Builder({.optimize = optimize}).build(net);
  if (report) *report = engine.buildReport();
  auto ctx = engine.createContext();
  return ctx.run(inputs);
}

bool reportMentions(const std::vector<std::string>& report, const std::string& text) {
  return std::any_of(report.begin(), report.end(), [&](const std::string& line) { return line.find(text) != std::string::npos; });
}

void expectClose(const HostTensor& actual, const Shape& shape, const std::vector<double>& expected,
                 const std::string& what) {
  ASSERT_EQ(actual.shape(), shape) << what;
  ASSERT_EQ(actual.dtype(), DataType::kFloat32) << what;
  const std::vector<float> e(expected.begin(), expected.end());
  EXPECT_LT(relativeL2(toVector(actual), e), fp32KernelTolerance()) << what;
}

double activate(const ActivationDesc& a, double x) {
  switch (a.type) {
    case ActivationType::kRelu: return x > 0 ? x : 0;
    case ActivationType::kClip: return std::min<double>(std::max<double>(x, a.min), a.max);
    case ActivationType::kTanh: return std::tanh(x);
    case ActivationType::kSigmoid: return 1.0 / (1.0 + std::exp(-x));
    case ActivationType::kNone: return x;
  }
  return x;
}

std::vector<ActivationDesc> allActivations() {
  return {{ActivationType::kRelu}, {ActivationType::kClip, -0.3f, 0.7f}, {ActivationType::kClip, 0.0f, 20.0f},
          {ActivationType::kTanh}, {ActivationType::kSigmoid}};
}

std::string activationName(const ActivationDesc& a) {
  return a.type == ActivationType::kClip ? cat("clip[", a.min, ",", a.max, "]") : toString(a.type);
}

int64_t floorDiv(int64_t a, int64_t b) { return static_cast<int64_t>(std::floor(static_cast<double>(a) / b)); }

// ---- Convolution -----------------------------------------------------------------------------

struct ConvCase {
  int in_channels, out_channels, features;
  std::array<int, 2> kernel, stride, padding, dilation;
  bool bias;
  std::array<int, 2> padding_end{-1, -1};
};

std::vector<double> referenceConv(const ConvolutionDesc& d, const HostTensor& x, Shape& out_shape) {
  const int64_t n = x.dim(0), cin = x.dim(1), fin = x.dim(2), tin = x.dim(3), cout = d.out_channels;
  const int64_t fout = (fin + d.padding[0] + d.paddingEnd(0) - d.dilation[0] * (d.kernel[0] - 1) - 1) / d.stride[0] + 1;
  const int64_t tout = (tin + d.padding[1] + d.paddingEnd(1) - d.dilation[1] * (d.kernel[1] - 1) - 1) / d.stride[1] + 1;
  out_shape = {n, cout, fout, tout};
  const float* in = x.data<float>();
  const float* w = d.weight.data<float>();
  std::vector<double> y(n * cout * fout * tout);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t o = 0; o < cout; ++o)
      for (int64_t fo = 0; fo < fout; ++fo)
        for (int64_t to = 0; to < tout; ++to) {
          double sum = d.bias.empty() ? 0.0 : d.bias.data<float>()[o];
          for (int64_t c = 0; c < cin; ++c)
            for (int64_t kf = 0; kf < d.kernel[0]; ++kf)
              for (int64_t kt = 0; kt < d.kernel[1]; ++kt) {
                const int64_t fi = fo * d.stride[0] - d.padding[0] + kf * d.dilation[0];
                const int64_t ti = to * d.stride[1] - d.padding[1] + kt * d.dilation[1];
                if (fi < 0 || fi >= fin || ti < 0 || ti >= tin) continue;
                sum += static_cast<double>(w[((o * cin + c) * d.kernel[0] + kf) * d.kernel[1] + kt]) *
                       in[((b * cin + c) * fin + fi) * tin + ti];
              }
          y[((b * cout + o) * fout + fo) * tout + to] = sum;
        }
  return y;
}

ConvolutionDesc makeConv(const ConvCase& c, std::mt19937& rng) {
  ConvolutionDesc d;
  d.out_channels = c.out_channels;
  d.kernel = c.kernel;
  d.stride = c.stride;
  d.padding = c.padding;
  d.padding_end = c.padding_end;
  d.dilation = c.dilation;
  d.weight = randomTensor({c.out_channels, c.in_channels, c.kernel[0], c.kernel[1]}, rng, 0.5f);
  if (c.bias) d.bias = randomTensor({c.out_channels}, rng);
  return d;
}

class ConvolutionTest : public testing::TestWithParam<ConvCase> {};

TEST_P(ConvolutionTest, MatchesReference) {
  const ConvCase c = GetParam();
  std::mt19937 rng(42);
  const ConvolutionDesc desc = makeConv(c, rng);
  NetworkDefinition net;
  const Tensor x = net.addImageInput("x", c.in_channels, c.features);
  net.markOutput(net.addConvolution("conv", x, desc), "y");
  for (const bool optimize : {false, true}) {
    const Engine engine = Builder({.optimize = optimize}).build(net);
    auto ctx = engine.createContext();
    // Several batch sizes and odd/even time extents through one context (primitive cache per shape).
    for (const auto& [n, t] : {std::pair<int64_t, int64_t>{2, 13}, {3, 10}, {2, 13}, {1, 17}}) {
      const HostTensor input = randomTensor({n, c.in_channels, c.features, t}, rng);
      Shape shape;
      const auto expected = referenceConv(desc, input, shape);
      expectClose(ctx.run({{"x", input}}).at("y"), shape, expected, cat("optimize=", optimize, " N=", n, " T=", t));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Configs, ConvolutionTest,
    testing::Values(
        // DeepSpeech2-like front end: one input channel, stride 2, "same"-style padding.
        ConvCase{1, 3, 9, {3, 5}, {2, 2}, {1, 2}, {1, 1}, true},
        ConvCase{2, 4, 8, {3, 3}, {1, 2}, {0, 1}, {2, 1}, false},
        ConvCase{3, 2, 7, {2, 4}, {3, 1}, {2, 0}, {1, 3}, true},
        // Stride 2 over an odd extent with no padding: the last input frame is never read.
        ConvCase{2, 3, 6, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false},
        ConvCase{4, 5, 5, {1, 1}, {1, 1}, {0, 0}, {1, 1}, true},
        ConvCase{1, 2, 11, {5, 3}, {2, 3}, {3, 2}, {2, 2}, true},
        // Uneven padding (TensorFlow's "same" with a stride): more after than before, and less.
        ConvCase{1, 3, 9, {3, 5}, {2, 2}, {1, 2}, {1, 1}, true, {2, 4}},
        ConvCase{2, 2, 8, {4, 4}, {1, 2}, {1, 1}, {1, 1}, false, {2, 0}},
        // Large filters over 8+ channels take the FFT convolution where the CPU has AVX-512 (see
        // FftConvolution below): DeepSpeech2's 21 x 11 with stride 2 x 1, an output count that is
        // not a multiple of 4, stride 1, uneven padding.
        ConvCase{9, 6, 30, {21, 11}, {2, 1}, {10, 5}, {1, 1}, true},
        ConvCase{8, 5, 12, {8, 8}, {1, 1}, {3, 3}, {1, 1}, false},
        ConvCase{8, 4, 12, {8, 8}, {1, 1}, {3, 3}, {1, 1}, true, {4, 2}}),
    [](const auto& info) { return cat("case", info.index); });

// Utterances longer than one FFT tile (54 frames with an 11-frame filter): the tiles' seams, a last
// tile partly past the end, and utterances of different lengths through one context. The engine
// reports which convolution ran; the comparison holds for either.
TEST(FftConvolution, ManyTilesMatchTheReference) {
  const ConvCase c{8, 5, 25, {21, 11}, {2, 1}, {10, 5}, {1, 1}, true};
  std::mt19937 rng(7);
  ConvolutionDesc desc = makeConv(c, rng);
  desc.activation = {ActivationType::kClip, 0.0f, 2.0f};
  NetworkDefinition net;
  net.markOutput(net.addConvolution("conv", net.addImageInput("x", c.in_channels, c.features), desc), "y");
  const Engine engine = Builder({.optimize = true}).build(net);
  // The filters' spectra are made at build for the input's height (known there), not at the first run.
  if (detail::cpu::haveAvx512() && !std::getenv("DS2RT_CPU_CONV"))
    EXPECT_NE(engine.describe().find(cat("FFT convolution (FFTW, tiles of 64 frames; filter spectra ready for height ",
                                         c.features, ")")),
              std::string::npos)
        << engine.describe();
  auto ctx = engine.createContext();
  ConvolutionDesc linear = desc;
  linear.activation = {};
  for (const int64_t t : {161, 54, 55, 200}) {
    const HostTensor input = randomTensor({2, c.in_channels, c.features, t}, rng);
    Shape shape;
    std::vector<double> expected = referenceConv(linear, input, shape);
    for (double& v : expected) v = std::clamp(v, 0.0, 2.0);
    expectClose(ctx.run({{"x", input}}).at("y"), shape, expected, cat("T=", t));
  }
}

// DS2RT_CPU_CONV=direct keeps oneDNN's direct convolution; a value it does not know is an error at build.
TEST(FftConvolution, ChoiceFromTheEnvironment) {
  const ConvCase c{8, 5, 25, {21, 11}, {2, 1}, {10, 5}, {1, 1}, true};
  std::mt19937 rng(8);
  NetworkDefinition net;
  net.markOutput(net.addConvolution("conv", net.addImageInput("x", c.in_channels, c.features), makeConv(c, rng)), "y");
  ASSERT_EQ(setenv("DS2RT_CPU_CONV", "direct", 1), 0);
  EXPECT_EQ(Builder({.optimize = true}).build(net).describe().find("FFT convolution"), std::string::npos);
  ASSERT_EQ(setenv("DS2RT_CPU_CONV", "sideways", 1), 0);
  try {
    Builder({.optimize = true}).build(net);
    ADD_FAILURE() << "an unknown DS2RT_CPU_CONV was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("DS2RT_CPU_CONV is 'sideways': auto or direct"));
  }
  unsetenv("DS2RT_CPU_CONV");
}

TEST(Convolution, FusedActivationThroughTheBuilder) {
  const ConvCase c{2, 3, 9, {3, 3}, {2, 1}, {1, 1}, {1, 1}, true};
  std::mt19937 rng(1);
  const ConvolutionDesc desc = makeConv(c, rng);
  const HostTensor input = randomTensor({2, 2, 9, 11}, rng);
  Shape shape;
  const auto linear = referenceConv(desc, input, shape);
  auto activations = allActivations();
  activations.push_back({ActivationType::kRelu, -0.5f, 3.0f});  // relu ignores min and max
  for (const ActivationDesc& act : activations) {
    NetworkDefinition net;
    const Tensor x = net.addImageInput("x", 2, 9);
    const Tensor y = net.addConvolution("conv", x, desc);
    net.markOutput(net.addActivation("act", y, act), "y");
    std::vector<double> expected;
    for (double v : linear) expected.push_back(activate(act, v));
    for (const bool optimize : {false, true}) {
      std::vector<std::string> report;
      const auto out = runNetwork(net, optimize, {{"x", input}}, &report);
      EXPECT_EQ(reportMentions(report, "fused activation act into conv"), optimize) << activationName(act);
      expectClose(out.at("y"), shape, expected, cat(activationName(act), " optimize=", optimize));
    }
  }
}

TEST(Convolution, ActivationSetOnTheDescriptor) {
  const ConvCase c{1, 2, 6, {3, 3}, {1, 1}, {1, 1}, {1, 1}, true};
  std::mt19937 rng(2);
  ConvolutionDesc desc = makeConv(c, rng);
  const HostTensor input = randomTensor({2, 1, 6, 9}, rng, 2.0f);
  Shape shape;
  const auto linear = referenceConv(desc, input, shape);
  desc.activation = {ActivationType::kClip, 0.0f, 0.5f};
  std::vector<double> expected;
  for (double v : linear) expected.push_back(std::clamp(v, 0.0, 0.5));
  NetworkDefinition net;
  net.markOutput(net.addConvolution("conv", net.addImageInput("x", 1, 6), desc), "y");
  for (const bool optimize : {false, true}) expectClose(runNetwork(net, optimize, {{"x", input}}).at("y"), shape, expected, "clip");
}

TEST(Convolution, BatchNormAfterConvolution) {
  // Folded into the filters when optimising; a separate layer otherwise.
  const ConvCase c{2, 3, 7, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true};
  for (const bool with_bias : {true, false}) {
    std::mt19937 rng(3);
    ConvolutionDesc desc = makeConv({c.in_channels, c.out_channels, c.features, c.kernel, c.stride, c.padding, c.dilation, with_bias}, rng);
    BatchNormDesc bn{randomTensor({3}, rng), randomTensor({3}, rng), randomTensor({3}, rng),
                     HostTensor::fromFloats({3}, {0.5f, 2.0f, 0.01f}), 1e-3f};
    const HostTensor input = randomTensor({2, 2, 7, 12}, rng);
    Shape shape;
    const auto linear = referenceConv(desc, input, shape);
    std::vector<double> expected(linear.size());
    const int64_t inner = shape[2] * shape[3];
    for (size_t i = 0; i < linear.size(); ++i) {
      const int64_t ch = (static_cast<int64_t>(i) / inner) % 3;
      const double y = (linear[i] - bn.mean.floats()[ch]) / std::sqrt(static_cast<double>(bn.variance.floats()[ch]) + bn.epsilon) *
                           bn.scale.floats()[ch] + bn.bias.floats()[ch];
      expected[i] = std::min(std::max(y, 0.0), 20.0);
    }
    NetworkDefinition net;
    const Tensor x = net.addImageInput("x", 2, 7);
    const Tensor y = net.addBatchNorm("bn", net.addConvolution("conv", x, desc), bn);
    net.markOutput(net.addActivation("clip", y, {ActivationType::kClip, 0.0f, 20.0f}), "y");
    for (const bool optimize : {false, true}) {
      std::vector<std::string> report;
      const auto out = runNetwork(net, optimize, {{"x", input}}, &report);
      EXPECT_EQ(reportMentions(report, "folded batch norm bn into convolution conv"), optimize);
      expectClose(out.at("y"), shape, expected, cat("bias=", with_bias, " optimize=", optimize));
    }
  }
}

// ---- BatchNorm ---------------------------------------------------------------------------------

BatchNormDesc randomBatchNorm(int channels, std::mt19937& rng) {
  BatchNormDesc bn{randomTensor({channels}, rng), randomTensor({channels}, rng), randomTensor({channels}, rng),
                   {}, 1e-5f};
  std::vector<float> var;
  for (int c = 0; c < channels; ++c) var.push_back(0.1f + 0.7f * c);
  bn.variance = HostTensor::fromFloats({channels}, var);
  return bn;
}

double batchNorm(const BatchNormDesc& bn, int64_t c, double x) {
  return (x - bn.mean.floats()[c]) / std::sqrt(static_cast<double>(bn.variance.floats()[c]) + bn.epsilon) *
             bn.scale.floats()[c] + bn.bias.floats()[c];
}

TEST(BatchNorm, ImageLayoutNormalisesAxisOne) {
  std::mt19937 rng(4);
  const BatchNormDesc bn = randomBatchNorm(3, rng);
  const HostTensor input = randomTensor({2, 3, 4, 5}, rng);
  std::vector<double> expected;
  for (int64_t i = 0; i < input.size(); ++i) expected.push_back(batchNorm(bn, (i / 20) % 3, input.data<float>()[i]));
  NetworkDefinition net;
  net.markOutput(net.addBatchNorm("bn", net.addImageInput("x", 3, 4), bn), "y");
  for (const bool optimize : {false, true})
    expectClose(runNetwork(net, optimize, {{"x", input}}).at("y"), input.shape(), expected, cat("optimize=", optimize));
}

TEST(BatchNorm, SequenceAndBatchMajorNormaliseTheLastAxis) {
  std::mt19937 rng(5);
  const BatchNormDesc bn = randomBatchNorm(6, rng);
  const HostTensor input = randomTensor({5, 2, 6}, rng);
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", 6);
  net.markOutput(net.addBatchNorm("bn_seq", x, bn), "seq");
  net.markOutput(net.addBatchNorm("bn_bm", net.addBatchMajor("bm", x), bn), "bm_out");
  std::vector<double> seq, bm(input.size());
  for (int64_t i = 0; i < input.size(); ++i) seq.push_back(batchNorm(bn, i % 6, input.data<float>()[i]));
  for (int64_t t = 0; t < 5; ++t)
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 6; ++h) bm[(b * 5 + t) * 6 + h] = seq[(t * 2 + b) * 6 + h];
  for (const bool optimize : {false, true}) {
    const auto out = runNetwork(net, optimize, {{"x", input}});
    expectClose(out.at("seq"), {5, 2, 6}, seq, cat("sequence optimize=", optimize));
    expectClose(out.at("bm_out"), {2, 5, 6}, bm, cat("batch-major optimize=", optimize));
  }
}

// ---- Activation --------------------------------------------------------------------------------

TEST(Activation, EveryTypeOnImageAndSequence) {
  std::mt19937 rng(6);
  const HostTensor image = randomTensor({2, 2, 3, 7}, rng, 3.0f);
  const HostTensor seq = randomTensor({7, 2, 5}, rng, 3.0f);
  const auto image_copy = toVector(image), seq_copy = toVector(seq);
  for (const ActivationDesc& act : allActivations()) {
    NetworkDefinition net;
    net.markOutput(net.addActivation("a_img", net.addImageInput("img", 2, 3), act), "img_out");
    net.markOutput(net.addActivation("a_seq", net.addSequenceInput("seq", 5), act), "seq_out");
    std::vector<double> e_img, e_seq;
    for (float v : image_copy) e_img.push_back(activate(act, v));
    for (float v : seq_copy) e_seq.push_back(activate(act, v));
    for (const bool optimize : {false, true}) {
      const auto out = runNetwork(net, optimize, {{"img", image}, {"seq", seq}});
      expectClose(out.at("img_out"), image.shape(), e_img, activationName(act));
      expectClose(out.at("seq_out"), seq.shape(), e_seq, activationName(act));
      // In-place kernels must never write into the caller's input.
      EXPECT_EQ(toVector(image), image_copy);
      EXPECT_EQ(toVector(seq), seq_copy);
    }
  }
}

TEST(Activation, ClipBoundsAreExact) {
  NetworkDefinition net;
  net.markOutput(net.addActivation("clip", net.addSequenceInput("x", 4), {ActivationType::kClip, -1.5f, 2.5f}), "y");
  const HostTensor x = HostTensor::fromFloats({1, 2, 4}, {-100, -1.5f, -1.4f, 0, 1, 2.5f, 2.6f, 1e9f});
  for (const bool optimize : {false, true})
    EXPECT_EQ(toVector(runNetwork(net, optimize, {{"x", x}}).at("y")),
              (std::vector<float>{-1.5f, -1.5f, -1.4f, 0, 1, 2.5f, 2.5f, 2.5f}));
}

TEST(Activation, ChainOfInPlaceLayers) {
  // relu -> clip -> sigmoid: the later layers run in place on the intermediate buffers.
  std::mt19937 rng(7);
  const HostTensor x = randomTensor({4, 3, 6}, rng, 2.0f);
  NetworkDefinition net;
  const Tensor a = net.addActivation("relu", net.addSequenceInput("x", 6), {ActivationType::kRelu});
  const Tensor b = net.addActivation("clip", a, {ActivationType::kClip, 0.0f, 1.0f});
  net.markOutput(a, "relu_out");
  net.markOutput(net.addActivation("sigmoid", b, {ActivationType::kSigmoid}), "y");
  std::vector<double> relu, y;
  for (float v : toVector(x)) {
    relu.push_back(std::max(0.0f, v));
    y.push_back(1.0 / (1.0 + std::exp(-std::clamp(static_cast<double>(v), 0.0, 1.0))));
  }
  for (const bool optimize : {false, true}) {
    const auto out = runNetwork(net, optimize, {{"x", x}});
    expectClose(out.at("y"), x.shape(), y, "chain");
    expectClose(out.at("relu_out"), x.shape(), relu, "intermediate output kept");
  }
}

// ---- SequenceMask ------------------------------------------------------------------------------

TEST(SequenceMask, ImageSequenceAndBatchMajor) {
  std::mt19937 rng(8);
  const int64_t n = 3, c = 2, f = 3, t = 7, h = 4;
  const std::vector<int32_t> lengths{4, 7, 1};
  const HostTensor image = randomTensor({n, c, f, t}, rng);
  const HostTensor seq = randomTensor({t, n, h}, rng);
  NetworkDefinition net;
  const Tensor len = net.addLengthsInput("lengths");
  net.markOutput(net.addSequenceMask("mask_img", net.addImageInput("img", c, f), len), "img_out");
  const Tensor s = net.addSequenceInput("seq", h);
  net.markOutput(net.addSequenceMask("mask_seq", s, len), "seq_out");
  net.markOutput(net.addSequenceMask("mask_bm", net.addBatchMajor("bm", s), len), "bm_out");

  std::vector<double> e_img(image.size()), e_seq(seq.size()), e_bm(seq.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t r = 0; r < c * f; ++r)
      for (int64_t k = 0; k < t; ++k) {
        const int64_t i = (b * c * f + r) * t + k;
        e_img[i] = k < lengths[b] ? image.data<float>()[i] : 0.0;
      }
  for (int64_t k = 0; k < t; ++k)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t j = 0; j < h; ++j) {
        const double v = k < lengths[b] ? seq.data<float>()[(k * n + b) * h + j] : 0.0;
        e_seq[(k * n + b) * h + j] = v;
        e_bm[(b * t + k) * h + j] = v;
      }
  for (const bool optimize : {false, true})
    for (const bool int64_lengths : {false, true}) {
      HostTensor lens = HostTensor::fromInts({n}, lengths);
      if (int64_lengths) {
        lens = HostTensor(DataType::kInt64, {n});
        for (int64_t b = 0; b < n; ++b) lens.mutableData<int64_t>()[b] = lengths[b];
      }
      const auto out = runNetwork(net, optimize, {{"img", image}, {"seq", seq}, {"lengths", lens}});
      // Masked frames are exactly zero and valid frames untouched: compare exactly.
      const std::string what = cat("optimize=", optimize, " int64=", int64_lengths);
      EXPECT_EQ(toVector(out.at("img_out")), std::vector<float>(e_img.begin(), e_img.end())) << what;
      EXPECT_EQ(toVector(out.at("seq_out")), std::vector<float>(e_seq.begin(), e_seq.end())) << what;
      EXPECT_EQ(out.at("bm_out").shape(), (Shape{n, t, h}));
      EXPECT_EQ(toVector(out.at("bm_out")), std::vector<float>(e_bm.begin(), e_bm.end())) << what;
    }
}

// ---- LengthsTransform --------------------------------------------------------------------------

TEST(LengthsTransform, FloorFormula) {
  for (int kernel : {1, 2, 3, 11})
    for (int stride : {1, 2, 3})
      for (int padding : {0, 1, 5})
        for (int dilation : {1, 2})
          for (int64_t length = 1; length <= 40; ++length) {
            const LengthsTransformDesc d{kernel, stride, padding, dilation};
            // Python's // as deepspeech.pytorch's get_seq_lens uses it: floor, also for negatives.
            const int64_t expected = floorDiv(length + 2 * padding - dilation * (kernel - 1) - 1, stride) + 1;
            ASSERT_EQ(d.apply(length), expected) << "k" << kernel << " s" << stride << " p" << padding << " d" << dilation
                                                 << " L" << length;
          }
  // Negative numerators round down, not towards zero: (2 - 3 - 1) // 3 + 1 = 0, not 1.
  EXPECT_EQ((LengthsTransformDesc{4, 3, 0, 1}.apply(2)), 0);
  EXPECT_EQ((LengthsTransformDesc{11, 2, 0, 1}.apply(1)), -4);
}

TEST(LengthsTransform, DeepSpeechPyTorchConvolutions) {
  // Conv2d(1, 32, (41, 11), stride (2, 2), padding (20, 5)) then Conv2d(32, 32, (21, 11), stride (2, 1), padding (10, 5)):
  // along time L -> (L + 10 - 10 - 1) // 2 + 1 -> unchanged.
  NetworkDefinition net;
  const Tensor len = net.addLengthsInput("lengths");
  const Tensor l1 = net.addLengthsTransform("conv1_lengths", len, {11, 2, 5, 1});
  net.markOutput(l1, "after_conv1");
  net.markOutput(net.addLengthsTransform("conv2_lengths", l1, {11, 1, 5, 1}), "after_conv2");
  EXPECT_EQ(net.layout(l1), TensorLayout::kLengths);
  const std::vector<int32_t> lengths{1, 2, 3, 100, 101, 1000, 1001, 7};
  std::vector<float> expected;
  for (int32_t l : lengths) expected.push_back(static_cast<float>(floorDiv(l - 1, 2) + 1));
  for (const bool optimize : {false, true}) {
    const auto out = runNetwork(net, optimize, {{"lengths", HostTensor::fromInts({8}, lengths)}});
    EXPECT_EQ(out.at("after_conv1").dtype(), DataType::kInt32);
    EXPECT_EQ(toVector(out.at("after_conv1")), expected);
    EXPECT_EQ(toVector(out.at("after_conv2")), expected);
  }
}

TEST(LengthsTransform, NoFramesLeftNamesTheLayer) {
  NetworkDefinition net;
  net.markOutput(net.addLengthsTransform("shrink", net.addLengthsInput("lengths"), {5, 1, 0, 1}), "out");
  auto ctx = Builder().build(net).createContext();
  try {
    ctx.run({{"lengths", HostTensor::fromInts({2}, {9, 3})}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("shrink"));
    EXPECT_THAT(e.what(), HasSubstr("length 3"));
  }
}

// ---- ReshapeToSequence / BatchMajor --------------------------------------------------------------

class ReshapeToSequence : public testing::TestWithParam<std::array<int64_t, 4>> {};

// Within one of the CPU kernel's 32 x 32 tiles, and over several with part-filled last ones.
INSTANTIATE_TEST_SUITE_P(Shapes, ReshapeToSequence,
                         testing::Values(std::array<int64_t, 4>{2, 3, 4, 5}, std::array<int64_t, 4>{3, 5, 9, 70}));

TEST_P(ReshapeToSequence, ChannelMajorFlattening) {
  std::mt19937 rng(9);
  const auto [n, c, f, t] = GetParam();
  const HostTensor x = randomTensor({n, c, f, t}, rng);
  NetworkDefinition net;
  const Tensor y = net.addReshapeToSequence("flatten", net.addImageInput("x", c, f));
  EXPECT_EQ(net.shape(y), (Shape{kDynamic, kDynamic, c * f}));
  EXPECT_EQ(net.layout(y), TensorLayout::kSequence);
  net.markOutput(y, "y");
  // deepspeech.pytorch: x.view(N, C * F, T).transpose(1, 2).transpose(0, 1) -> y[t][b][c * F + f] = x[b][c][f][t].
  std::vector<float> expected(x.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < f; ++k)
        for (int64_t s = 0; s < t; ++s)
          expected[(s * n + b) * c * f + ch * f + k] = x.data<float>()[((b * c + ch) * f + k) * t + s];
  for (const bool optimize : {false, true}) {
    const HostTensor out = runNetwork(net, optimize, {{"x", x}}).at("y");
    EXPECT_EQ(out.shape(), (Shape{t, n, c * f}));
    EXPECT_EQ(toVector(out), expected);
  }
}

TEST(BatchMajor, TransposesTimeAndBatch) {
  std::mt19937 rng(10);
  const int64_t t = 6, n = 3, h = 4;
  const HostTensor x = randomTensor({t, n, h}, rng);
  NetworkDefinition net;
  const Tensor y = net.addBatchMajor("bm", net.addSequenceInput("x", h));
  EXPECT_EQ(net.layout(y), TensorLayout::kBatchMajor);
  net.markOutput(y, "y");
  std::vector<float> expected(x.size());
  for (int64_t s = 0; s < t; ++s)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t j = 0; j < h; ++j) expected[(b * t + s) * h + j] = x.data<float>()[(s * n + b) * h + j];
  for (const bool optimize : {false, true}) {
    const HostTensor out = runNetwork(net, optimize, {{"x", x}}).at("y");
    EXPECT_EQ(out.shape(), (Shape{n, t, h}));
    EXPECT_EQ(toVector(out), expected);
  }
}

// ---- Lookahead ---------------------------------------------------------------------------------

std::vector<double> referenceLookahead(const HostTensor& w /* H x ctx */, const HostTensor& x,
                                       const std::vector<int32_t>& lengths) {
  const int64_t t = x.dim(0), n = x.dim(1), h = x.dim(2), ctx = w.dim(1);
  std::vector<double> y(x.size(), 0.0);
  for (int64_t s = 0; s < t; ++s)
    for (int64_t b = 0; b < n; ++b) {
      if (s >= lengths[b]) continue;
      for (int64_t f = 0; f < h; ++f) {
        double sum = 0;
        for (int64_t k = 0; k < ctx && s + k < lengths[b]; ++k)
          sum += static_cast<double>(w.data<float>()[f * ctx + k]) * x.data<float>()[((s + k) * n + b) * h + f];
        y[(s * n + b) * h + f] = sum;
      }
    }
  return y;
}

TEST(Lookahead, FramesPastEachLengthReadAsZero) {
  std::mt19937 rng(11);
  const int64_t t = 9, n = 4, h = 5;
  const std::vector<int32_t> lengths{9, 3, 6, 1};
  for (const int context : {1, 3, 12}) {
    HostTensor x = randomTensor({t, n, h}, rng);
    // Garbage in padded frames: the kernel must not read them.
    for (int64_t s = 0; s < t; ++s)
      for (int64_t b = 0; b < n; ++b)
        if (s >= lengths[b])
          for (int64_t f = 0; f < h; ++f) x.mutableData<float>()[(s * n + b) * h + f] = 1e6f;
    const HostTensor w = randomTensor({h, context}, rng);
    const auto expected = referenceLookahead(w, x, lengths);
    for (const bool pytorch_shape : {false, true}) {
      NetworkDefinition net;
      LookaheadDesc desc;
      desc.weight = pytorch_shape ? w.reshaped({h, 1, context}) : w;  // depthwise Conv1d weight H x 1 x ctx
      const Tensor y = net.addLookahead("lookahead", net.addSequenceInput("x", h), net.addLengthsInput("lengths"), desc);
      net.markOutput(y, "y");
      for (const bool optimize : {false, true}) {
        const HostTensor out = runNetwork(net, optimize, {{"x", x}, {"lengths", HostTensor::fromInts({n}, lengths)}}).at("y");
        const std::string what = cat("context=", context, " pytorch_shape=", pytorch_shape, " optimize=", optimize);
        expectClose(out, {t, n, h}, expected, what);
        for (int64_t s = 0; s < t; ++s)
          for (int64_t b = 0; b < n; ++b)
            if (s >= lengths[b])
              for (int64_t f = 0; f < h; ++f) ASSERT_EQ(out.data<float>()[(s * n + b) * h + f], 0.0f) << what;
      }
    }
  }
}

TEST(Lookahead, FusedActivationMatchesSeparateLayer) {
  std::mt19937 rng(12);
  const int64_t t = 7, n = 3, h = 4;
  const std::vector<int32_t> lengths{7, 2, 5};
  const HostTensor x = randomTensor({t, n, h}, rng);
  const HostTensor w = randomTensor({h, 3}, rng);
  const auto linear = referenceLookahead(w, x, lengths);
  for (const ActivationDesc& act : allActivations()) {
    NetworkDefinition net;
    const Tensor y = net.addLookahead("lookahead", net.addSequenceInput("x", h), net.addLengthsInput("lengths"), {w});
    net.markOutput(net.addActivation("act", y, act), "y");
    // The activation layer applies to every frame, including the zeros past each length.
    std::vector<double> expected;
    for (double v : linear) expected.push_back(activate(act, v));
    for (const bool optimize : {false, true}) {
      std::vector<std::string> report;
      const HostTensor out =
          runNetwork(net, optimize, {{"x", x}, {"lengths", HostTensor::fromInts({n}, lengths)}}, &report).at("y");
      expectClose(out, {t, n, h}, expected, cat(activationName(act), " optimize=", optimize));
      // Fusing is exact only where act(0) == 0 (sigmoid stays a separate layer).
      EXPECT_EQ(reportMentions(report, "fused activation act into lookahead"), optimize && activate(act, 0.0) == 0.0)
          << activationName(act);
    }
  }
}

// ---- FullyConnected ----------------------------------------------------------------------------

std::vector<double> referenceLinear(const HostTensor& x, const HostTensor& w, const HostTensor& bias) {
  const int64_t in = w.dim(1), out = w.dim(0), rows = x.size() / in;
  std::vector<double> y(rows * out);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double sum = bias.empty() ? 0.0 : bias.data<float>()[o];
      for (int64_t i = 0; i < in; ++i) sum += static_cast<double>(x.data<float>()[r * in + i]) * w.data<float>()[o * in + i];
      y[r * out + o] = sum;
    }
  return y;
}

TEST(FullyConnected, WithAndWithoutBiasOnSequenceAndBatchMajor) {
  std::mt19937 rng(13);
  const int64_t t = 5, n = 3, in = 7, out = 4;
  const HostTensor x = randomTensor({t, n, in}, rng);
  for (const bool with_bias : {true, false}) {
    FullyConnectedDesc fc{static_cast<int>(out), randomTensor({out, in}, rng), with_bias ? randomTensor({out}, rng) : HostTensor{}};
    NetworkDefinition net;
    const Tensor seq = net.addSequenceInput("x", in);
    const Tensor y_seq = net.addFullyConnected("fc_seq", seq, fc);
    EXPECT_EQ(net.layout(y_seq), TensorLayout::kSequence);
    net.markOutput(y_seq, "seq");
    const Tensor y_bm = net.addFullyConnected("fc_bm", net.addBatchMajor("bm", seq), fc);
    EXPECT_EQ(net.layout(y_bm), TensorLayout::kBatchMajor);
    net.markOutput(y_bm, "bm_out");
    const auto expected = referenceLinear(x, fc.weight, fc.bias);
    std::vector<double> expected_bm(expected.size());
    for (int64_t s = 0; s < t; ++s)
      for (int64_t b = 0; b < n; ++b)
        for (int64_t o = 0; o < out; ++o) expected_bm[(b * t + s) * out + o] = expected[(s * n + b) * out + o];
    for (const bool optimize : {false, true}) {
      const auto result = runNetwork(net, optimize, {{"x", x}});
      expectClose(result.at("seq"), {t, n, out}, expected, cat("bias=", with_bias, " optimize=", optimize));
      expectClose(result.at("bm_out"), {n, t, out}, expected_bm, cat("bias=", with_bias, " optimize=", optimize));
    }
  }
}

TEST(FullyConnected, FusedActivationAndFoldedBatchNorm) {
  std::mt19937 rng(14);
  const int64_t t = 4, n = 2, in = 6, out = 5;
  const HostTensor x = randomTensor({t, n, in}, rng);
  const BatchNormDesc bn = randomBatchNorm(static_cast<int>(in), rng);
  for (const bool with_bias : {true, false})
    for (const ActivationDesc& act : allActivations()) {
      FullyConnectedDesc fc{static_cast<int>(out), randomTensor({out, in}, rng), with_bias ? randomTensor({out}, rng) : HostTensor{}};
      NetworkDefinition net;
      const Tensor normed = net.addBatchNorm("bn", net.addSequenceInput("x", in), bn);
      net.markOutput(net.addActivation("act", net.addFullyConnected("fc", normed, fc), act), "y");
      HostTensor xn(DataType::kFloat32, x.shape());
      for (int64_t i = 0; i < x.size(); ++i)
        xn.mutableData<float>()[i] = static_cast<float>(batchNorm(bn, i % in, x.data<float>()[i]));
      std::vector<double> expected;
      for (double v : referenceLinear(xn, fc.weight, fc.bias)) expected.push_back(activate(act, v));
      for (const bool optimize : {false, true}) {
        std::vector<std::string> report;
        const auto result = runNetwork(net, optimize, {{"x", x}}, &report);
        EXPECT_EQ(reportMentions(report, "folded batch norm bn into the input projection of fc"), optimize);
        EXPECT_EQ(reportMentions(report, "fused activation act into fc"), optimize);
        expectClose(result.at("y"), {t, n, out}, expected, cat(activationName(act), " bias=", with_bias, " optimize=", optimize));
      }
    }
}

// ---- Softmax -------------------------------------------------------------------------------------

TEST(Softmax, SoftmaxAndLogSoftmaxOverTheLastAxis) {
  std::mt19937 rng(15);
  const int64_t t = 4, n = 3, classes = 29;
  for (const float scale : {1.0f, 40.0f}) {  // large logits test the max subtraction
    const HostTensor x = randomTensor({t, n, classes}, rng, scale);
    NetworkDefinition net;
    const Tensor seq = net.addSequenceInput("x", classes);
    net.markOutput(net.addSoftmax("softmax", seq), "probs");
    net.markOutput(net.addLogSoftmax("log_softmax", seq), "log_probs");
    net.markOutput(net.addSoftmax("softmax_bm", net.addBatchMajor("bm", seq)), "probs_bm");
    std::vector<double> probs, log_probs, probs_bm(x.size());
    for (int64_t r = 0; r < t * n; ++r) {
      const float* row = x.data<float>() + r * classes;
      double peak = *std::max_element(row, row + classes), sum = 0;
      for (int64_t c = 0; c < classes; ++c) sum += std::exp(row[c] - peak);
      for (int64_t c = 0; c < classes; ++c) {
        probs.push_back(std::exp(row[c] - peak) / sum);
        log_probs.push_back(row[c] - peak - std::log(sum));
      }
    }
    for (int64_t s = 0; s < t; ++s)
      for (int64_t b = 0; b < n; ++b)
        for (int64_t c = 0; c < classes; ++c) probs_bm[(b * t + s) * classes + c] = probs[(s * n + b) * classes + c];
    for (const bool optimize : {false, true}) {
      const auto out = runNetwork(net, optimize, {{"x", x}});
      expectClose(out.at("probs"), {t, n, classes}, probs, cat("softmax scale=", scale));
      expectClose(out.at("log_probs"), {t, n, classes}, log_probs, cat("log_softmax scale=", scale));
      expectClose(out.at("probs_bm"), {n, t, classes}, probs_bm, cat("batch-major softmax scale=", scale));
      const float* p = out.at("probs").data<float>();
      for (int64_t r = 0; r < t * n; ++r) {
        double sum = 0;
        for (int64_t c = 0; c < classes; ++c) sum += p[r * classes + c];
        EXPECT_NEAR(sum, 1.0, 1e-5);
      }
    }
  }
}

// ---- A small front end end to end: conv -> mask -> reshape -> FC -> softmax, batch-major --------

TEST(Composition, ConvMaskReshapeFullyConnectedSoftmax) {
  std::mt19937 rng(16);
  const ConvCase c{1, 2, 6, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true};
  const ConvolutionDesc conv = makeConv(c, rng);
  const LengthsTransformDesc lt{3, 2, 1, 1};
  const int64_t n = 3, t = 11;
  const std::vector<int32_t> lengths{11, 4, 7};
  const HostTensor x = randomTensor({n, 1, 6, t}, rng);
  NetworkDefinition net;
  const Tensor len = net.addLengthsTransform("conv_lengths", net.addLengthsInput("lengths"), lt);
  const Tensor y = net.addSequenceMask("mask", net.addConvolution("conv", net.addImageInput("x", 1, 6), conv), len);
  const Tensor seq = net.addReshapeToSequence("flatten", y);  // T' x N x 2*3
  FullyConnectedDesc fc{5, randomTensor({5, 6}, rng), randomTensor({5}, rng)};
  net.markOutput(net.addSoftmax("softmax", net.addBatchMajor("bm", net.addFullyConnected("fc", seq, fc))), "probs");
  net.markOutput(len, "out_lengths");

  Shape shape;
  auto conv_out = referenceConv(conv, x, shape);  // N x 2 x 3 x T'
  const int64_t t2 = shape[3];
  std::vector<int32_t> out_lengths;
  for (int32_t l : lengths) out_lengths.push_back(static_cast<int32_t>(floorDiv(l + 2 - 2 - 1, 2) + 1));
  std::vector<double> expected;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t s = 0; s < t2; ++s) {
      std::vector<double> logits(5);
      for (int64_t o = 0; o < 5; ++o) {
        logits[o] = fc.bias.data<float>()[o];
        for (int64_t k = 0; k < 6; ++k) {
          const double v = s < out_lengths[b] ? conv_out[(b * 6 + k) * t2 + s] : 0.0;
          logits[o] += fc.weight.data<float>()[o * 6 + k] * v;
        }
      }
      double sum = 0;
      for (double l : logits) sum += std::exp(l);
      for (double l : logits) expected.push_back(std::exp(l) / sum);
    }
  for (const bool optimize : {false, true}) {
    const auto out = runNetwork(net, optimize, {{"x", x}, {"lengths", HostTensor::fromInts({n}, lengths)}});
    EXPECT_EQ(toVector(out.at("out_lengths")), std::vector<float>(out_lengths.begin(), out_lengths.end()));
    expectClose(out.at("probs"), {n, t2, 5}, expected, cat("optimize=", optimize));
  }
}

// ---- Errors --------------------------------------------------------------------------------------


TEST(LayerErrors, ConvolutionWeightShape) {
  NetworkDefinition net;
  const Tensor x = net.addImageInput("spect", 1, 16);
  ConvolutionDesc d;
  d.out_channels = 4;
  d.kernel = {3, 3};
  std::mt19937 rng(1);
  d.weight = randomTensor({4, 2, 3, 3}, rng);
  std::string msg = errorOf([&] { net.addConvolution("conv_front", x, d); });
  EXPECT_THAT(msg, HasSubstr("conv_front"));
  EXPECT_THAT(msg, HasSubstr("[4, 2, 3, 3]"));
  EXPECT_THAT(msg, HasSubstr("[4, 1, 3, 3]"));
  EXPECT_EQ(net.layerCount(), 0u);  // nothing was added

  d.weight = randomTensor({4, 1, 3, 3}, rng);
  d.bias = randomTensor({5}, rng);
  msg = errorOf([&] { net.addConvolution("conv_bias", x, d); });
  EXPECT_THAT(msg, HasSubstr("conv_bias"));
  EXPECT_THAT(msg, HasSubstr("bias has shape [5]"));

  d.bias = {};
  d.weight = {};
  msg = errorOf([&] { net.addConvolution("conv_empty", x, d); });
  EXPECT_THAT(msg, HasSubstr("conv_empty"));
  EXPECT_THAT(msg, HasSubstr("weight is missing"));

  ConvolutionDesc big;
  big.out_channels = 2;
  big.kernel = {17, 3};
  big.weight = randomTensor({2, 1, 17, 3}, rng);
  msg = errorOf([&] { net.addConvolution("conv_big", x, big); });
  EXPECT_THAT(msg, HasSubstr("conv_big"));
  EXPECT_THAT(msg, HasSubstr("16 frequency bins"));

  ConvolutionDesc strided = big;
  strided.kernel = {3, 3};
  strided.weight = randomTensor({2, 1, 3, 3}, rng);
  strided.stride = {0, 1};
  msg = errorOf([&] { net.addConvolution("conv_stride", x, strided); });
  EXPECT_THAT(msg, HasSubstr("conv_stride"));
  EXPECT_THAT(msg, HasSubstr("stride"));
}

TEST(LayerErrors, OtherWeightShapes) {
  std::mt19937 rng(2);
  NetworkDefinition net;
  const Tensor img = net.addImageInput("img", 3, 4);
  const Tensor seq = net.addSequenceInput("seq", 6);
  const Tensor len = net.addLengthsInput("lengths");

  BatchNormDesc bn = randomBatchNorm(4, rng);
  std::string msg = errorOf([&] { net.addBatchNorm("bn_img", img, bn); });
  EXPECT_THAT(msg, HasSubstr("bn_img"));
  EXPECT_THAT(msg, HasSubstr("scale has shape [4], expected [3]"));
  msg = errorOf([&] { net.addBatchNorm("bn_seq", seq, bn); });
  EXPECT_THAT(msg, HasSubstr("bn_seq"));
  EXPECT_THAT(msg, HasSubstr("expected [6]"));
  BatchNormDesc negative = randomBatchNorm(6, rng);
  negative.variance = HostTensor::fromFloats({6}, {1, 1, -1, 1, 1, 1});
  msg = errorOf([&] { net.addBatchNorm("bn_neg", seq, negative); });
  EXPECT_THAT(msg, HasSubstr("bn_neg"));
  EXPECT_THAT(msg, HasSubstr("variance"));

  FullyConnectedDesc fc{3, randomTensor({3, 5}, rng)};
  msg = errorOf([&] { net.addFullyConnected("fc_out", seq, fc); });
  EXPECT_THAT(msg, HasSubstr("fc_out"));
  EXPECT_THAT(msg, HasSubstr("[3, 5]"));
  EXPECT_THAT(msg, HasSubstr("[3, 6]"));
  fc.weight = randomTensor({3, 6}, rng);
  fc.bias = randomTensor({6}, rng);
  msg = errorOf([&] { net.addFullyConnected("fc_bias", seq, fc); });
  EXPECT_THAT(msg, HasSubstr("fc_bias"));
  EXPECT_THAT(msg, HasSubstr("[6]"));

  msg = errorOf([&] { net.addLookahead("look", seq, len, {randomTensor({5, 3}, rng)}); });
  EXPECT_THAT(msg, HasSubstr("look"));
  EXPECT_THAT(msg, HasSubstr("[5, 3]"));
  msg = errorOf([&] { net.addLookahead("look3d", seq, len, {randomTensor({6, 2, 3}, rng)}); });
  EXPECT_THAT(msg, HasSubstr("look3d"));
  EXPECT_THAT(msg, HasSubstr("[6, 2, 3]"));

  msg = errorOf([&] { net.addActivation("clip_empty", seq, {ActivationType::kClip, 2.0f, 1.0f}); });
  EXPECT_THAT(msg, HasSubstr("clip_empty"));
  EXPECT_THAT(msg, HasSubstr("clip range"));
  msg = errorOf([&] { net.addActivation("no_act", seq, {ActivationType::kNone}); });
  EXPECT_THAT(msg, HasSubstr("no_act"));
  EXPECT_EQ(net.layerCount(), 0u);
}

TEST(LayerErrors, WrongInputLayout) {
  std::mt19937 rng(3);
  NetworkDefinition net;
  const Tensor img = net.addImageInput("img", 1, 4);
  const Tensor seq = net.addSequenceInput("seq", 4);
  const Tensor len = net.addLengthsInput("lengths");
  ConvolutionDesc conv;
  conv.out_channels = 1;
  conv.weight = randomTensor({1, 1, 1, 1}, rng);
  std::string msg = errorOf([&] { net.addConvolution("conv_on_seq", seq, conv); });
  EXPECT_THAT(msg, HasSubstr("conv_on_seq"));
  EXPECT_THAT(msg, HasSubstr("'seq' is a sequence"));
  EXPECT_THAT(msg, HasSubstr("expected image"));

  msg = errorOf([&] { net.addFullyConnected("fc_on_img", img, {2, randomTensor({2, 4}, rng)}); });
  EXPECT_THAT(msg, HasSubstr("fc_on_img"));
  EXPECT_THAT(msg, HasSubstr("'img' is a image"));
  msg = errorOf([&] { net.addLookahead("look_on_img", img, len, {randomTensor({4, 2}, rng)}); });
  EXPECT_THAT(msg, HasSubstr("look_on_img"));
  msg = errorOf([&] { net.addSequenceMask("mask_float_lengths", seq, seq); });
  EXPECT_THAT(msg, HasSubstr("mask_float_lengths"));
  EXPECT_THAT(msg, HasSubstr("expected lengths"));
  msg = errorOf([&] { net.addReshapeToSequence("reshape_seq", seq); });
  EXPECT_THAT(msg, HasSubstr("reshape_seq"));
  msg = errorOf([&] { net.addLengthsTransform("lt_on_seq", seq, {}); });
  EXPECT_THAT(msg, HasSubstr("lt_on_seq"));
  msg = errorOf([&] { net.addSoftmax("softmax_img", img); });
  EXPECT_THAT(msg, HasSubstr("softmax_img"));
  const Tensor bm = net.addBatchMajor("bm", seq);
  msg = errorOf([&] { net.addBatchMajor("bm_twice", bm); });
  EXPECT_THAT(msg, HasSubstr("bm_twice"));
  EXPECT_THAT(msg, HasSubstr("batch-major"));
  msg = errorOf([&] { net.addActivation("act_on_lengths", len, {ActivationType::kRelu}); });
  EXPECT_THAT(msg, HasSubstr("act_on_lengths"));
  EXPECT_THAT(msg, HasSubstr("lengths"));
  EXPECT_EQ(net.layerCount(), 1u);
}

TEST(LayerErrors, DuplicateAndEmptyNames) {
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", 3);
  std::string msg = errorOf([&] { net.addSequenceInput("x", 4); });
  EXPECT_THAT(msg, HasSubstr("'x' is already used"));
  msg = errorOf([&] { net.addActivation("x", x, {ActivationType::kRelu}); });
  EXPECT_THAT(msg, HasSubstr("'x' is already used"));
  const Tensor a = net.addActivation("relu", x, {ActivationType::kRelu});
  msg = errorOf([&] { net.addActivation("relu", a, {ActivationType::kTanh}); });
  EXPECT_THAT(msg, HasSubstr("'relu' is already used"));
  const Tensor b = net.addActivation("tanh", a, {ActivationType::kTanh});
  msg = errorOf([&] { net.markOutput(b, "relu"); });
  EXPECT_THAT(msg, HasSubstr("'relu' is already used"));
  msg = errorOf([&] { net.addActivation("", x, {ActivationType::kRelu}); });
  EXPECT_THAT(msg, HasSubstr("needs a name"));
  EXPECT_EQ(net.layerCount(), 2u);
}

TEST(LayerErrors, BuildWithoutOutputs) {
  NetworkDefinition net;
  net.addActivation("relu", net.addSequenceInput("x", 3), {ActivationType::kRelu});
  EXPECT_THAT(errorOf([&] { Builder().build(net); }), HasSubstr("no outputs"));
}

// conv (kT = 3) -> mask, with its lengths transform.
NetworkDefinition runtimeNetwork() {
  std::mt19937 rng(4);
  NetworkDefinition net;
  const Tensor x = net.addImageInput("features", 1, 4);
  const Tensor len = net.addLengthsInput("lengths");
  ConvolutionDesc conv;
  conv.out_channels = 2;
  conv.kernel = {1, 3};
  conv.weight = randomTensor({2, 1, 1, 3}, rng);
  const Tensor y = net.addConvolution("conv", x, conv);
  const Tensor l = net.addLengthsTransform("conv_lengths", len, {3, 1, 0, 1});
  net.markOutput(net.addSequenceMask("mask", y, l), "out");
  return net;
}

TEST(RunErrors, InputsAreChecked) {
  const NetworkDefinition net = runtimeNetwork();
  const Engine engine = Builder().build(net);
  std::mt19937 rng(5);
  const HostTensor good = randomTensor({2, 1, 4, 10}, rng);
  const HostTensor lengths = HostTensor::fromInts({2}, {10, 6});
  const auto run = [&](const Outputs& inputs) { return errorOf([&] { engine.createContext().run(inputs); }); };

  // Sanity: the good inputs run.
  EXPECT_EQ(engine.createContext().run({{"features", good}, {"lengths", lengths}}).at("out").shape(), (Shape{2, 2, 4, 8}));

  std::string msg = run({{"features", good}});
  EXPECT_THAT(msg, HasSubstr("input 'lengths' was not set"));
  msg = run({{"features", good}, {"lengths", lengths}, {"spectrogram", good}});
  EXPECT_THAT(msg, HasSubstr("no input 'spectrogram'"));
  EXPECT_THAT(msg, HasSubstr("features"));

  msg = run({{"features", good.reshaped({2, 4, 10})}, {"lengths", lengths}});
  EXPECT_THAT(msg, HasSubstr("'features'"));
  EXPECT_THAT(msg, HasSubstr("rank 4"));
  EXPECT_THAT(msg, HasSubstr("[2, 4, 10]"));
  msg = run({{"features", randomTensor({2, 1, 5, 10}, rng)}, {"lengths", lengths}});
  EXPECT_THAT(msg, HasSubstr("'features'"));
  EXPECT_THAT(msg, HasSubstr("[2, 1, 5, 10]"));
  EXPECT_THAT(msg, HasSubstr("[?, 1, 4, ?]"));
  msg = run({{"features", HostTensor(DataType::kFloat64, {2, 1, 4, 10})}, {"lengths", lengths}});
  EXPECT_THAT(msg, HasSubstr("'features' must be float32"));
  EXPECT_THAT(msg, HasSubstr("F64"));
  msg = run({{"features", good}, {"lengths", HostTensor::fromFloats({2}, {10, 6})}});
  EXPECT_THAT(msg, HasSubstr("'lengths' must be int32"));
  msg = run({{"features", good}, {"lengths", HostTensor::fromInts({2, 1}, {10, 6})}});
  EXPECT_THAT(msg, HasSubstr("'lengths' must have rank 1"));
  msg = run({{"features", good}, {"lengths", HostTensor::fromInts({3}, {10, 6, 5})}});
  EXPECT_THAT(msg, HasSubstr("batch 3"));
  EXPECT_THAT(msg, HasSubstr("batch 2"));
}

TEST(RunErrors, LengthsOutOfRange) {
  const Engine engine = Builder().build(runtimeNetwork());
  std::mt19937 rng(6);
  const HostTensor x = randomTensor({3, 1, 4, 10}, rng);
  for (const std::vector<int32_t>& bad : {std::vector<int32_t>{10, 0, 5}, {10, 11, 5}, {-3, 5, 5}}) {
    const std::string msg = errorOf([&] { engine.createContext().run({{"features", x}, {"lengths", HostTensor::fromInts({3}, bad)}}); });
    EXPECT_THAT(msg, HasSubstr("'lengths'"));
    EXPECT_THAT(msg, HasSubstr("outside 1..10"));
  }
  // Lengths 1 and T are fine for the input, but length 1 leaves no frame after the kT = 3 convolution.
  const std::string msg = errorOf([&] { engine.createContext().run({{"features", x}, {"lengths", HostTensor::fromInts({3}, {10, 1, 5})}}); });
  EXPECT_THAT(msg, HasSubstr("conv_lengths"));
  EXPECT_THAT(msg, HasSubstr("utterance 1 of length 1"));
}

TEST(RunErrors, InputTooShortForTheConvolution) {
  const Engine engine = Builder().build(runtimeNetwork());
  std::mt19937 rng(7);
  const std::string msg = errorOf([&] {
    engine.createContext().run({{"features", randomTensor({1, 1, 4, 2}, rng)}, {"lengths", HostTensor::fromInts({1}, {2})}});
  });
  EXPECT_THAT(msg, HasSubstr("conv"));
  EXPECT_THAT(msg, HasSubstr("empty output"));
}

TEST(RunErrors, ContextRecoversAfterAnError) {
  const Engine engine = Builder().build(runtimeNetwork());
  auto ctx = engine.createContext();
  std::mt19937 rng(8);
  const HostTensor x = randomTensor({2, 1, 4, 9}, rng);
  const auto first = ctx.run({{"features", x}, {"lengths", HostTensor::fromInts({2}, {9, 4})}});
  EXPECT_THROW(ctx.run({{"features", x}, {"lengths", HostTensor::fromInts({2}, {9, 0})}}), Error);
  const auto again = ctx.run({{"features", x}, {"lengths", HostTensor::fromInts({2}, {9, 4})}});
  EXPECT_EQ(toVector(again.at("out")), toVector(first.at("out")));
}

}  // namespace
}  // namespace ds2rt::test
