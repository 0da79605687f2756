// LayerNorm: the CPU kernel against a direct reference (double arithmetic) in both sequence
// layouts, with and without lengths; validation errors; a plan round trip.
#include <gmock/gmock.h>

#include <cmath>

#include "ds2rt/builder.h"
#include "ds2rt/engine.h"
#include "ds2rt/network.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

// y[f] = (x[f] - mean) / sqrt(var + eps) * scale + bias for each frame f of `frames` x h values.
std::vector<float> referenceLayerNorm(const HostTensor& x, const LayerNormDesc& d) {
  const int64_t h = x.shape().back(), frames = x.size() / h;
  std::vector<float> out;
  for (int64_t f = 0; f < frames; ++f) {
    const float* row = x.data<float>() + f * h;
    double mean = 0, var = 0;
    for (int64_t c = 0; c < h; ++c) mean += row[c];
    mean /= static_cast<double>(h);
    for (int64_t c = 0; c < h; ++c) var += (row[c] - mean) * (row[c] - mean);
    var /= static_cast<double>(h);
    for (int64_t c = 0; c < h; ++c) {
      const double scale = d.scale.empty() ? 1.0 : d.scale.floats()[c], bias = d.bias.empty() ? 0.0 : d.bias.floats()[c];
      out.push_back(static_cast<float>((row[c] - mean) / std::sqrt(var + d.epsilon) * scale + bias));
    }
  }
  return out;
}

LayerNormDesc randomLayerNorm(int64_t h, std::mt19937& rng) {
  return {randomTensor({h}, rng), randomTensor({h}, rng), 1e-5f};
}

TEST(LayerNorm, SequenceLayoutMatchesTheReference) {
  std::mt19937 rng(11);
  const LayerNormDesc ln = randomLayerNorm(7, rng);
  const HostTensor input = randomTensor({5, 3, 7}, rng, 3.0f);
  NetworkDefinition net;
  const Tensor y = net.addLayerNorm("ln", net.addSequenceInput("x", 7), ln);
  net.markOutput(y, "y");
  EXPECT_EQ(net.shape(y), (Shape{kDynamic, kDynamic, 7}));
  for (const bool optimize : {false, true}) {
    const auto out = Builder({.optimize = optimize}).build(net).createContext().run({{"x", input}});
    EXPECT_LT(relativeL2(toVector(out.at("y")), referenceLayerNorm(input, ln)), 1e-6) << "optimize=" << optimize;
  }
}

TEST(LayerNorm, WithoutScaleAndBiasIsPlainNormalisation) {
  std::mt19937 rng(12);
  const HostTensor input = randomTensor({4, 2, 33}, rng, 2.0f);
  const LayerNormDesc ln{{}, {}, 1e-3f};
  NetworkDefinition net;
  net.markOutput(net.addLayerNorm("ln", net.addSequenceInput("x", 33), ln), "y");
  const auto out = Builder().build(net).createContext().run({{"x", input}});
  EXPECT_LT(relativeL2(toVector(out.at("y")), referenceLayerNorm(input, ln)), 1e-6);
}

TEST(LayerNorm, LengthsZeroThePaddedFramesInBothLayouts) {
  std::mt19937 rng(13);
  const int64_t t = 6, n = 3, h = 5;
  const LayerNormDesc ln = randomLayerNorm(h, rng);
  const HostTensor input = randomTensor({t, n, h}, rng);
  const std::vector<int32_t> lengths{6, 2, 4};
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", h);
  const Tensor len = net.addLengthsInput("lengths");
  net.markOutput(net.addLayerNorm("ln_seq", x, len, ln), "seq");
  net.markOutput(net.addLayerNorm("ln_bm", net.addBatchMajor("bm", x), len, ln), "bm_out");
  std::vector<float> seq = referenceLayerNorm(input, ln), bm(seq.size());
  for (int64_t s = 0; s < t; ++s)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t c = 0; c < h; ++c) {
        float& v = seq[(s * n + b) * h + c];
        if (s >= lengths[b]) v = 0.0f;
        bm[(b * t + s) * h + c] = v;
      }
  for (const bool optimize : {false, true}) {
    const auto out = Builder({.optimize = optimize})
                         .build(net)
                         .createContext()
                         .run({{"x", input}, {"lengths", HostTensor::fromInts({n}, lengths)}});
    EXPECT_LT(relativeL2(toVector(out.at("seq")), seq), 1e-6);
    EXPECT_LT(relativeL2(toVector(out.at("bm_out")), bm), 1e-6);
    const auto values = toVector(out.at("seq"));
    EXPECT_EQ(values[(5 * n + 1) * h], 0.0f);  // frame 5 of the utterance of length 2
  }
}

TEST(LayerNorm, ValidationNamesTheLayer) {
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", 4);
  EXPECT_THAT(errorOf([&] { net.addLayerNorm("ln", x, {HostTensor::fromFloats({3}, {1, 1, 1}), {}, 1e-5f}); }),
              AllOf(HasSubstr("'ln'"), HasSubstr("scale"), HasSubstr("[3]"), HasSubstr("[4]")));
  EXPECT_THAT(errorOf([&] { net.addLayerNorm("ln", x, {{}, HostTensor::fromFloats({5}, {0, 0, 0, 0, 0}), 1e-5f}); }),
              AllOf(HasSubstr("'ln'"), HasSubstr("bias")));
  EXPECT_THAT(errorOf([&] { net.addLayerNorm("ln", x, {{}, {}, -1.0f}); }), HasSubstr("epsilon"));
  EXPECT_THAT(errorOf([&] { net.addLayerNorm("ln", net.addImageInput("img", 1, 4), {}); }),
              AllOf(HasSubstr("'ln'"), HasSubstr("image")));
  EXPECT_THAT(errorOf([&] { net.addLayerNorm("ln", x, x, {}); }), HasSubstr("lengths"));
}

TEST(LayerNorm, PlanRoundTripGivesIdenticalOutputs) {
  std::mt19937 rng(14);
  const LayerNormDesc ln = randomLayerNorm(6, rng);
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", 6);
  const Tensor len = net.addLengthsInput("lengths");
  const Tensor y = net.addLayerNorm("ln_plain", x, ln);
  net.markOutput(net.addLayerNorm("ln_masked", y, len, LayerNormDesc{{}, ln.bias, 1e-3f}), "y");
  const Engine engine = Builder().build(net);
  const Engine loaded = Engine::deserialize(engine.serialize(), "layer_norm.plan");
  const std::map<std::string, HostTensor> inputs{{"x", randomTensor({4, 2, 6}, rng)},
                                                 {"lengths", HostTensor::fromInts({2}, {4, 3})}};
  const auto a = toVector(engine.createContext().run(inputs).at("y"));
  const auto b = toVector(loaded.createContext().run(inputs).at("y"));
  EXPECT_EQ(a, b);
  EXPECT_THAT(loaded.describe(), HasSubstr("LayerNorm"));
}

}  // namespace
}  // namespace ds2rt::test
