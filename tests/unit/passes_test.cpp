// Graph passes, each on its own (structure and build log), and numerically: every network gives
// the same outputs built with and without optimisation.
#include <gmock/gmock.h>

#include <algorithm>
#include <functional>

#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "passes/passes.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using detail::BuildLog;
using detail::Graph;
using testing::HasSubstr;

std::string joined(const BuildLog& log) {
  std::string s;
  for (const auto& line : log) s += line + "\n";
  return s;
}

int layerIndex(const Graph& g, const std::string& name) {
  for (size_t i = 0; i < g.layers.size(); ++i)
    if (g.layers[i].name == name) return static_cast<int>(i);
  return -1;
}

const detail::Layer& layer(const Graph& g, const std::string& name) {
  const int i = layerIndex(g, name);
  if (i < 0) throw std::runtime_error("no layer " + name);
  return g.layers[i];
}

// Every graph output and every layer input is produced by a layer or is a graph input.
void expectWellFormed(const Graph& g) {
  const auto produced = [&](int id) {
    return g.producer(id) >= 0 || std::find(g.inputs.begin(), g.inputs.end(), id) != g.inputs.end();
  };
  for (const auto& l : g.layers)
    for (int id : l.inputs) EXPECT_TRUE(produced(id)) << "input of " << l.name << " has no producer";
  for (int id : g.outputs) EXPECT_TRUE(produced(id)) << "output " << g.tensors[id].name << " has no producer";
}

BatchNormDesc randomBatchNorm(int64_t channels, std::mt19937& rng) {
  std::uniform_real_distribution<float> positive(0.5f, 1.5f);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<float> scale, bias, mean, var;
  for (int64_t c = 0; c < channels; ++c) {
    scale.push_back(positive(rng));
    bias.push_back(normal(rng));
    mean.push_back(normal(rng));
    var.push_back(positive(rng));
  }
  return {HostTensor::fromFloats({channels}, scale), HostTensor::fromFloats({channels}, bias),
          HostTensor::fromFloats({channels}, mean), HostTensor::fromFloats({channels}, var), 1e-5f};
}

ConvolutionDesc randomConv(int in, int out, std::mt19937& rng, bool bias = true) {
  ConvolutionDesc c;
  c.out_channels = out;
  c.kernel = {3, 3};
  c.padding = {1, 1};
  c.weight = randomTensor({out, in, 3, 3}, rng, 0.3f);
  if (bias) c.bias = randomTensor({out}, rng, 0.2f);
  return c;
}

FullyConnectedDesc randomFC(int in, int out, std::mt19937& rng, bool bias = true) {
  FullyConnectedDesc f;
  f.out_features = out;
  f.weight = randomTensor({out, in}, rng, 0.4f);
  if (bias) f.bias = randomTensor({out}, rng, 0.2f);
  return f;
}

RNNDesc randomRNN(RNNCell cell, int input, int hidden, int layers, RNNDirection direction, std::mt19937& rng,
                  bool input_bias = true) {
  RNNDesc r;
  r.cell = cell;
  r.hidden_size = hidden;
  r.num_layers = layers;
  r.direction = direction;
  const int64_t gh = static_cast<int64_t>(gateCount(cell)) * hidden;
  for (int l = 0; l < layers; ++l)
    for (int d = 0; d < r.directions(); ++d) {
      const int64_t in = l == 0 ? input : static_cast<int64_t>(hidden) * r.directions();
      r.setWeights(l, d, GateLayout::kCanonical, randomTensor({gh, in}, rng, 0.3f), randomTensor({gh, hidden}, rng, 0.3f),
                   input_bias ? randomTensor({gh}, rng, 0.1f) : HostTensor(), randomTensor({gh}, rng, 0.1f));
    }
  return r;
}

const ActivationDesc kClip{ActivationType::kClip, -0.3f, 0.4f};
const ActivationDesc kRelu{ActivationType::kRelu};

using Inputs = std::map<std::string, HostTensor>;

// Builds the network twice (optimize off and on), runs both on `inputs`, and expects every
// output to agree within 1e-5 relative L2. Returns the optimised engine's build report.
std::string expectSameWithAndWithoutOptimisation(const std::function<NetworkDefinition()>& make, const Inputs& inputs) {
  const Engine plain = Builder({.optimize = false}).build(make());
  const Engine optimized = Builder({.optimize = true}).build(make());
  EXPECT_EQ(plain.outputNames(), optimized.outputNames());
  auto a = plain.createContext().run(inputs);
  auto b = optimized.createContext().run(inputs);
  for (const auto& name : plain.outputNames()) {
    const auto expected = toVector(a.at(name)), actual = toVector(b.at(name));
    EXPECT_EQ(a.at(name).shape(), b.at(name).shape()) << name;
    double norm = 0;
    for (float v : expected) norm += std::abs(v);
    EXPECT_GT(norm, 0) << name << " is all zeros: the comparison would prove nothing";
    EXPECT_LT(relativeL2(actual, expected), 1e-5) << name;
  }
  return joined(optimized.buildReport());
}

// T x N x H with garbage in the padded frames, and its lengths.
Inputs sequenceInputs(int64_t t, int64_t h, std::vector<int32_t> lengths, std::mt19937& rng) {
  const auto n = static_cast<int64_t>(lengths.size());
  HostTensor x = randomTensor({t, n, h}, rng);
  for (int64_t s = 0; s < t; ++s)
    for (int64_t b = 0; b < n; ++b)
      if (s >= lengths[b])
        for (int64_t k = 0; k < h; ++k) x.mutableData<float>()[(s * n + b) * h + k] = 1e3f * (k % 2 ? 1.0f : -1.0f);
  return {{"x", x}, {"len", HostTensor::fromInts({n}, lengths)}};
}

// ---- removeRedundantMasks --------------------------------------------------------------------

TEST(RemoveRedundantMasks, RemovesMaskBeforePerFrameOpAndSameMask) {
  std::mt19937 rng(1);
  NetworkDefinition net;
  const Tensor x = net.addImageInput("x", 2, 3);
  const Tensor len = net.addLengthsInput("len");
  Tensor y = net.addSequenceMask("m1", x, len);
  y = net.addBatchNorm("bn", y, randomBatchNorm(2, rng));
  y = net.addSequenceMask("m2", y, len);
  y = net.addActivation("act", y, kClip);
  y = net.addSequenceMask("m3", y, len);
  net.markOutput(y, "y");
  Graph g = net.graph();
  ASSERT_EQ(g.layers.size(), 5u);
  BuildLog log;
  detail::removeRedundantMasks(g, log);
  EXPECT_EQ(g.layers.size(), 3u);
  EXPECT_EQ(layerIndex(g, "m1"), -1);
  EXPECT_EQ(layerIndex(g, "m2"), -1);
  EXPECT_GE(layerIndex(g, "m3"), 0);
  EXPECT_EQ(layer(g, "bn").inputs[0], g.findTensor("x"));
  EXPECT_EQ(layer(g, "act").inputs[0], layer(g, "bn").output);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_THAT(joined(log), HasSubstr("removed mask m1: m2 masks the same frames after bn"));
  EXPECT_THAT(joined(log), HasSubstr("removed mask m2: m3 masks the same frames after act"));
  expectWellFormed(g);
}

TEST(RemoveRedundantMasks, KeepsMaskWhenTheNextMaskUsesOtherLengths) {
  std::mt19937 rng(2);
  NetworkDefinition net;
  const Tensor x = net.addImageInput("x", 2, 3);
  const Tensor len = net.addLengthsInput("len");
  const Tensor longer = net.addLengthsTransform("len2", len, {.kernel = 1, .stride = 1, .padding = 1});  // L + 2
  Tensor y = net.addSequenceMask("m1", x, len);
  y = net.addBatchNorm("bn", y, randomBatchNorm(2, rng));
  y = net.addSequenceMask("m2", y, longer);
  net.markOutput(y, "y");
  Graph g = net.graph();
  BuildLog log;
  detail::removeRedundantMasks(g, log);
  EXPECT_EQ(g.layers.size(), 4u);
  EXPECT_GE(layerIndex(g, "m1"), 0);
  EXPECT_TRUE(log.empty()) << joined(log);
}

TEST(RemoveRedundantMasks, KeepsMasksThatMatter) {
  std::mt19937 rng(3);
  // mask -> convolution (mixes frames) -> mask
  {
    NetworkDefinition net;
    const Tensor x = net.addImageInput("x", 2, 3);
    const Tensor len = net.addLengthsInput("len");
    Tensor y = net.addSequenceMask("m1", x, len);
    y = net.addConvolution("conv", y, randomConv(2, 2, rng));
    net.markOutput(net.addSequenceMask("m2", y, len), "y");
    Graph g = net.graph();
    BuildLog log;
    detail::removeRedundantMasks(g, log);
    EXPECT_EQ(g.layers.size(), 3u);
    EXPECT_TRUE(log.empty());
  }
  // mask -> batch norm -> mask, but the first mask's output is also a network output
  {
    NetworkDefinition net;
    const Tensor x = net.addImageInput("x", 2, 3);
    const Tensor len = net.addLengthsInput("len");
    const Tensor m1 = net.addSequenceMask("m1", x, len);
    net.markOutput(m1, "masked");
    net.markOutput(net.addSequenceMask("m2", net.addBatchNorm("bn", m1, randomBatchNorm(2, rng)), len), "y");
    Graph g = net.graph();
    BuildLog log;
    detail::removeRedundantMasks(g, log);
    EXPECT_EQ(g.layers.size(), 3u);
  }
  // mask -> batch norm whose output is read by a second layer as well
  {
    NetworkDefinition net;
    const Tensor x = net.addImageInput("x", 2, 3);
    const Tensor len = net.addLengthsInput("len");
    const Tensor bn = net.addBatchNorm("bn", net.addSequenceMask("m1", x, len), randomBatchNorm(2, rng));
    net.markOutput(net.addSequenceMask("m2", bn, len), "y");
    net.markOutput(net.addActivation("act", bn, kRelu), "z");
    Graph g = net.graph();
    BuildLog log;
    detail::removeRedundantMasks(g, log);
    EXPECT_EQ(g.layers.size(), 4u);
    EXPECT_GE(layerIndex(g, "m1"), 0);
  }
}

TEST(RemoveRedundantMasks, SameOutputsWithGarbagePadding) {
  std::mt19937 rng(4);
  HostTensor x = randomTensor({3, 2, 3, 9}, rng, 100.0f);
  const Inputs inputs{{"x", x}, {"len", HostTensor::fromInts({3}, {9, 4, 1})}};
  const auto make = [](bool other_lengths) {
    return [other_lengths] {
      std::mt19937 r(5);
      NetworkDefinition net;
      const Tensor x = net.addImageInput("x", 2, 3);
      const Tensor len = net.addLengthsInput("len");
      const Tensor second = other_lengths ? net.addLengthsTransform("len2", len, {.kernel = 1, .stride = 1, .padding = 1}) : len;
      Tensor y = net.addSequenceMask("m1", x, len);
      y = net.addBatchNorm("bn", y, randomBatchNorm(2, r));
      y = net.addSequenceMask("m2", y, second);
      net.markOutput(y, "y");
      return net;
    };
  };
  EXPECT_THAT(expectSameWithAndWithoutOptimisation(make(false), inputs), HasSubstr("removed mask m1"));
  EXPECT_THAT(expectSameWithAndWithoutOptimisation(make(true), inputs), testing::Not(HasSubstr("removed mask")));
}

// ---- foldBatchNormIntoConvolution ------------------------------------------------------------

NetworkDefinition convBnClip(bool conv_bias) {
  std::mt19937 rng(6);
  NetworkDefinition net;
  const Tensor x = net.addImageInput("x", 3, 10);
  Tensor y = net.addConvolution("conv", x, randomConv(3, 4, rng, conv_bias));
  y = net.addBatchNorm("bn", y, randomBatchNorm(4, rng));
  y = net.addActivation("act", y, kClip);
  net.markOutput(y, "y");
  return net;
}

TEST(FoldBatchNormIntoConvolution, FoldsAndLogs) {
  for (const bool conv_bias : {true, false}) {
    NetworkDefinition net = convBnClip(conv_bias);
    Graph g = net.graph();
    const HostTensor original_weight = std::get<ConvolutionDesc>(layer(g, "conv").desc).weight;
    BuildLog log;
    detail::foldBatchNormIntoConvolution(g, log);
    ASSERT_EQ(g.layers.size(), 2u);
    EXPECT_EQ(layerIndex(g, "bn"), -1);
    const auto& conv = std::get<ConvolutionDesc>(layer(g, "conv").desc);
    EXPECT_FALSE(conv.bias.empty());
    EXPECT_EQ(conv.bias.shape(), (Shape{4}));
    EXPECT_NE(toVector(conv.weight), toVector(original_weight));
    EXPECT_THAT(layer(g, "conv").fused, testing::ElementsAre("batch norm bn"));
    EXPECT_EQ(layer(g, "act").inputs[0], layer(g, "conv").output);
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0], "folded batch norm bn into convolution conv");
    expectWellFormed(g);
  }
}

TEST(FoldBatchNormIntoConvolution, LeavesConvolutionWithActivationOrSharedOutput) {
  std::mt19937 rng(7);
  {
    NetworkDefinition net;
    ConvolutionDesc c = randomConv(3, 4, rng);
    c.activation = kRelu;  // bn(relu(conv)) cannot be folded into the filters
    const Tensor y = net.addBatchNorm("bn", net.addConvolution("conv", net.addImageInput("x", 3, 10), c), randomBatchNorm(4, rng));
    net.markOutput(y, "y");
    Graph g = net.graph();
    BuildLog log;
    detail::foldBatchNormIntoConvolution(g, log);
    EXPECT_EQ(g.layers.size(), 2u);
    EXPECT_TRUE(log.empty());
  }
  {
    NetworkDefinition net;
    const Tensor conv = net.addConvolution("conv", net.addImageInput("x", 3, 10), randomConv(3, 4, rng));
    net.markOutput(net.addBatchNorm("bn", conv, randomBatchNorm(4, rng)), "y");
    net.markOutput(net.addActivation("act", conv, kRelu), "z");  // the unnormalised output is read too
    Graph g = net.graph();
    BuildLog log;
    detail::foldBatchNormIntoConvolution(g, log);
    EXPECT_EQ(g.layers.size(), 3u);
    EXPECT_TRUE(log.empty());
  }
}

TEST(FoldBatchNormIntoConvolution, SameOutputs) {
  std::mt19937 rng(8);
  const Inputs inputs{{"x", randomTensor({2, 3, 10, 7}, rng)}};
  for (const bool bias : {true, false}) {
    const std::string report = expectSameWithAndWithoutOptimisation([bias] { return convBnClip(bias); }, inputs);
    EXPECT_THAT(report, HasSubstr("folded batch norm bn into convolution conv"));
    EXPECT_THAT(report, HasSubstr("fused activation act into conv"));
  }
}

// ---- foldBatchNormIntoProjection -------------------------------------------------------------

TEST(FoldBatchNormIntoProjection, FoldsIntoFullyConnected) {
  std::mt19937 rng(9);
  for (const bool fc_bias : {true, false}) {
    NetworkDefinition net;
    Tensor y = net.addBatchNorm("bn", net.addSequenceInput("x", 6), randomBatchNorm(6, rng));
    y = net.addFullyConnected("fc", y, randomFC(6, 5, rng, fc_bias));
    net.markOutput(y, "y");
    Graph g = net.graph();
    BuildLog log;
    detail::foldBatchNormIntoProjection(g, log);
    ASSERT_EQ(g.layers.size(), 1u);
    EXPECT_EQ(g.layers[0].name, "fc");
    EXPECT_EQ(g.layers[0].inputs[0], g.findTensor("x"));
    EXPECT_FALSE(std::get<FullyConnectedDesc>(g.layers[0].desc).bias.empty());
    EXPECT_THAT(g.layers[0].fused, testing::ElementsAre(HasSubstr("batch norm bn")));
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0], "folded batch norm bn into the input projection of fc");
  }
}

TEST(FoldBatchNormIntoProjection, FoldsIntoRNN) {
  std::mt19937 rng(10);
  NetworkDefinition net;
  const Tensor len = net.addLengthsInput("len");
  Tensor y = net.addBatchNorm("bn", net.addSequenceInput("x", 6), randomBatchNorm(6, rng));
  y = net.addRNN("rnn", y, len, randomRNN(RNNCell::kLSTM, 6, 4, 2, RNNDirection::kBidirectional, rng, false));
  net.markOutput(y, "y");
  Graph g = net.graph();
  const RNNDesc before = std::get<RNNDesc>(layer(g, "rnn").desc);
  BuildLog log;
  detail::foldBatchNormIntoProjection(g, log);
  ASSERT_EQ(g.layers.size(), 1u);
  const auto& rnn = std::get<RNNDesc>(g.layers[0].desc);
  // Both directions of the first layer change; the second layer does not.
  for (int d = 0; d < 2; ++d) {
    EXPECT_NE(toVector(rnn.weights[d].input_weight), toVector(before.weights[d].input_weight)) << d;
    EXPECT_FALSE(rnn.weights[d].input_bias.empty()) << d;
    EXPECT_EQ(rnn.weights[d].recurrent_weight.data(), before.weights[d].recurrent_weight.data()) << d;
    EXPECT_EQ(rnn.weights[2 + d].input_weight.data(), before.weights[2 + d].input_weight.data()) << d;
  }
  EXPECT_EQ(log.size(), 1u);
  EXPECT_THAT(joined(log), HasSubstr("folded batch norm bn into the input projection of rnn"));
}

TEST(FoldBatchNormIntoProjection, LeavesOtherConsumersAndImages) {
  std::mt19937 rng(11);
  // BN whose output is also a network output.
  {
    NetworkDefinition net;
    const Tensor bn = net.addBatchNorm("bn", net.addSequenceInput("x", 6), randomBatchNorm(6, rng));
    net.markOutput(bn, "normalised");
    net.markOutput(net.addFullyConnected("fc", bn, randomFC(6, 5, rng)), "y");
    Graph g = net.graph();
    BuildLog log;
    detail::foldBatchNormIntoProjection(g, log);
    EXPECT_EQ(g.layers.size(), 2u);
    EXPECT_TRUE(log.empty());
  }
  // BN -> softmax (not a projection).
  {
    NetworkDefinition net;
    net.markOutput(net.addSoftmax("sm", net.addBatchNorm("bn", net.addSequenceInput("x", 6), randomBatchNorm(6, rng))), "y");
    Graph g = net.graph();
    BuildLog log;
    detail::foldBatchNormIntoProjection(g, log);
    EXPECT_EQ(g.layers.size(), 2u);
  }
  // BN over an image (channel axis 1) is left to the convolution pass.
  {
    NetworkDefinition net;
    Tensor y = net.addBatchNorm("bn", net.addImageInput("x", 2, 3), randomBatchNorm(2, rng));
    net.markOutput(net.addFullyConnected("fc", net.addReshapeToSequence("reshape", y), randomFC(6, 5, rng)), "y");
    Graph g = net.graph();
    BuildLog log;
    detail::foldBatchNormIntoProjection(g, log);
    EXPECT_EQ(g.layers.size(), 3u);
  }
}

TEST(FoldBatchNormIntoProjection, SameOutputsForFullyConnected) {
  std::mt19937 rng(12);
  const Inputs inputs{{"x", randomTensor({5, 3, 6}, rng)}};
  for (const bool fc_bias : {true, false}) {
    const std::string report = expectSameWithAndWithoutOptimisation(
        [fc_bias] {
          std::mt19937 r(13);
          NetworkDefinition net;
          Tensor y = net.addBatchNorm("bn", net.addSequenceInput("x", 6), randomBatchNorm(6, r));
          net.markOutput(net.addFullyConnected("fc", y, randomFC(6, 5, r, fc_bias)), "y");
          return net;
        },
        inputs);
    EXPECT_THAT(report, HasSubstr("folded batch norm bn into the input projection of fc"));
  }
}

TEST(FoldBatchNormIntoProjection, SameOutputsForRNNs) {
  struct Case {
    RNNCell cell;
    int layers;
    RNNDirection direction;
    bool input_bias;
  };
  const Case cases[] = {{RNNCell::kGRU, 1, RNNDirection::kForward, true},
                        {RNNCell::kGRU, 2, RNNDirection::kBidirectional, false},
                        {RNNCell::kLSTM, 1, RNNDirection::kBidirectional, true},
                        {RNNCell::kLSTM, 2, RNNDirection::kForward, false},
                        {RNNCell::kRNNTanh, 1, RNNDirection::kReverse, true}};
  std::mt19937 rng(14);
  const Inputs inputs = sequenceInputs(7, 6, {7, 3, 5}, rng);
  for (const Case& c : cases) {
    SCOPED_TRACE(cat(toString(c.cell), " layers ", c.layers, " ", toString(c.direction)));
    const std::string report = expectSameWithAndWithoutOptimisation(
        [&c] {
          std::mt19937 r(15);
          NetworkDefinition net;
          const Tensor len = net.addLengthsInput("len");
          Tensor y = net.addBatchNorm("bn", net.addSequenceInput("x", 6), randomBatchNorm(6, r));
          net.markOutput(net.addRNN("rnn", y, len, randomRNN(c.cell, 6, 5, c.layers, c.direction, r, c.input_bias)), "y");
          return net;
        },
        inputs);
    EXPECT_THAT(report, HasSubstr("folded batch norm bn into the input projection of rnn"));
  }
}

TEST(FoldBatchNormIntoProjection, BatchNormThatIsAlsoAnOutputIsNotFolded) {
  std::mt19937 rng(16);
  const Inputs inputs = sequenceInputs(6, 6, {6, 2}, rng);
  const std::string report = expectSameWithAndWithoutOptimisation(
      [] {
        std::mt19937 r(17);
        NetworkDefinition net;
        const Tensor len = net.addLengthsInput("len");
        const Tensor bn = net.addBatchNorm("bn", net.addSequenceInput("x", 6), randomBatchNorm(6, r));
        net.markOutput(bn, "normalised");
        const Tensor fc = net.addFullyConnected("fc", bn, randomFC(6, 6, r));
        net.markOutput(net.addRNN("rnn", fc, len, randomRNN(RNNCell::kGRU, 6, 4, 1, RNNDirection::kForward, r)), "y");
        return net;
      },
      inputs);
  EXPECT_THAT(report, testing::Not(HasSubstr("folded")));
}

// ---- stackRecurrentLayers --------------------------------------------------------------------

// rnn0 -> bn -> rnn1 -> rnn2 (forward, the same cell and size), then `tail` -> y.
NetworkDefinition recurrentChain(RNNCell cell, RNNDirection second_direction, bool rnn1_also_output,
                                 bool second_lengths) {
  std::mt19937 r(30);
  NetworkDefinition net;
  const Tensor len = net.addLengthsInput("len");
  const Tensor other_len = second_lengths ? net.addLengthsInput("len2") : len;
  Tensor y = net.addRNN("rnn0", net.addSequenceInput("x", 6), len, randomRNN(cell, 6, 5, 1, RNNDirection::kForward, r));
  y = net.addBatchNorm("bn", y, randomBatchNorm(5, r));
  y = net.addRNN("rnn1", y, len, randomRNN(cell, 5, 5, 1, second_direction, r));
  if (rnn1_also_output) net.markOutput(y, "middle");
  const int64_t width = second_direction == RNNDirection::kBidirectional ? 10 : 5;
  y = net.addRNN("rnn2", y, other_len, randomRNN(cell, width, 5, 2, RNNDirection::kForward, r));
  net.markOutput(y, "y");
  return net;
}

TEST(StackRecurrentLayers, ForwardLayersBecomeOneStackWithTheSameOutputs) {
  for (const RNNCell cell : {RNNCell::kGRU, RNNCell::kLSTM}) {
    SCOPED_TRACE(toString(cell));
    Graph g = recurrentChain(cell, RNNDirection::kForward, false, false).graph();
    BuildLog log;
    detail::foldBatchNormIntoProjection(g, log);
    detail::stackRecurrentLayers(g, log);
    ASSERT_EQ(g.layers.size(), 1u);
    const auto& stack = std::get<RNNDesc>(g.layers[0].desc);
    EXPECT_EQ(stack.num_layers, 4);  // 1 + 1 + the 2 of rnn2
    EXPECT_EQ(stack.weights.size(), 4u);
    EXPECT_EQ(stack.weights[1].input_weight.dim(1), 5);
    EXPECT_EQ(g.tensors[g.layers[0].output].name, "y");
    EXPECT_THAT(joined(log), HasSubstr("stacked recurrent layer rnn1 onto rnn0"));
    EXPECT_THAT(joined(log), HasSubstr("stacked recurrent layer rnn2 onto rnn0"));
    EXPECT_THAT(g.layers[0].fused, testing::Contains("batch norm bn (folded into the input projection)"));
    expectWellFormed(g);

    std::mt19937 rng(31);
    const std::string report = expectSameWithAndWithoutOptimisation(
        [cell] { return recurrentChain(cell, RNNDirection::kForward, false, false); }, sequenceInputs(7, 6, {7, 2, 5}, rng));
    EXPECT_THAT(report, HasSubstr("stacked recurrent layer rnn2 onto rnn0"));
  }
}

TEST(StackRecurrentLayers, LeavesLayersThatAreNotAPlainForwardChain) {
  struct Case {
    const char* what;
    RNNDirection second_direction;
    bool also_output, second_lengths;
    int expected_layers;  // RNN layers left
  };
  const Case cases[] = {{"a bidirectional layer between", RNNDirection::kBidirectional, false, false, 3},
                        {"a middle layer that is also an output", RNNDirection::kForward, true, false, 2},
                        {"another lengths tensor", RNNDirection::kForward, false, true, 2}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Graph g = recurrentChain(RNNCell::kGRU, c.second_direction, c.also_output, c.second_lengths).graph();
    BuildLog log;
    detail::runAllPasses(g, log);
    const auto rnns = std::count_if(g.layers.begin(), g.layers.end(),
                                    [](const detail::Layer& l) { return std::holds_alternative<RNNDesc>(l.desc); });
    EXPECT_EQ(rnns, c.expected_layers);
    expectWellFormed(g);
  }
  // Extras (here a clip) keep a layer on its own: a stack's layers share one description.
  std::mt19937 r(32);
  NetworkDefinition net;
  const Tensor len = net.addLengthsInput("len");
  Tensor y = net.addRNN("a", net.addSequenceInput("x", 6), len, randomRNN(RNNCell::kGRU, 6, 5, 1, RNNDirection::kForward, r));
  RNNDesc clipped = randomRNN(RNNCell::kGRU, 5, 5, 1, RNNDirection::kForward, r);
  clipped.clip = 2.0f;
  net.markOutput(net.addRNN("b", y, len, std::move(clipped)), "y");
  Graph g = net.graph();
  BuildLog log;
  detail::stackRecurrentLayers(g, log);
  EXPECT_EQ(g.layers.size(), 2u);
  EXPECT_TRUE(log.empty());
}

// ---- fuseActivations -------------------------------------------------------------------------

TEST(FuseActivations, FusesIntoConvolutionFullyConnectedAndLookahead) {
  std::mt19937 rng(18);
  NetworkDefinition net;
  const Tensor len = net.addLengthsInput("len");
  Tensor y = net.addConvolution("conv", net.addImageInput("x", 1, 4), randomConv(1, 2, rng));
  y = net.addActivation("conv_act", y, kClip);
  y = net.addReshapeToSequence("reshape", y);
  y = net.addFullyConnected("fc", y, randomFC(8, 5, rng));
  y = net.addActivation("fc_act", y, kRelu);
  y = net.addLookahead("look", y, len, {.weight = randomTensor({5, 3}, rng)});
  y = net.addActivation("look_act", y, {ActivationType::kTanh});
  y = net.addRNN("rnn", y, len, randomRNN(RNNCell::kGRU, 5, 3, 1, RNNDirection::kForward, rng));
  y = net.addActivation("rnn_act", y, kRelu);  // an RNN has no activation slot
  net.markOutput(y, "y");
  Graph g = net.graph();
  ASSERT_EQ(g.layers.size(), 9u);
  BuildLog log;
  detail::fuseActivations(g, log);
  EXPECT_EQ(g.layers.size(), 6u);
  for (const char* gone : {"conv_act", "fc_act", "look_act"}) EXPECT_EQ(layerIndex(g, gone), -1) << gone;
  EXPECT_GE(layerIndex(g, "rnn_act"), 0);
  const auto& conv = std::get<ConvolutionDesc>(layer(g, "conv").desc).activation;
  EXPECT_EQ(conv.type, ActivationType::kClip);
  EXPECT_EQ(conv.min, -0.3f);
  EXPECT_EQ(conv.max, 0.4f);
  EXPECT_EQ(std::get<FullyConnectedDesc>(layer(g, "fc").desc).activation.type, ActivationType::kRelu);
  EXPECT_EQ(std::get<LookaheadDesc>(layer(g, "look").desc).activation.type, ActivationType::kTanh);
  EXPECT_THAT(layer(g, "fc").fused, testing::ElementsAre("relu activation fc_act"));
  EXPECT_EQ(layer(g, "reshape").inputs[0], layer(g, "conv").output);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[0], "fused activation conv_act into conv");
  EXPECT_EQ(log[1], "fused activation fc_act into fc");
  EXPECT_EQ(log[2], "fused activation look_act into look");
  expectWellFormed(g);
}

TEST(FuseActivations, FusedActivationThatIsTheNetworkOutput) {
  std::mt19937 rng(19);
  NetworkDefinition net;
  net.markOutput(net.addActivation("act", net.addFullyConnected("fc", net.addSequenceInput("x", 4), randomFC(4, 3, rng)), kRelu),
                 "y");
  Graph g = net.graph();
  BuildLog log;
  detail::fuseActivations(g, log);
  ASSERT_EQ(g.layers.size(), 1u);
  // The output tensor keeps its name and is produced by the fused layer.
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.tensors[g.outputs[0]].name, "y");
  EXPECT_EQ(g.producer(g.outputs[0]), 0);
  expectWellFormed(g);
}

TEST(FuseActivations, LeavesActivationsWithOtherReaders) {
  std::mt19937 rng(20);
  NetworkDefinition net;
  const Tensor fc = net.addFullyConnected("fc", net.addSequenceInput("x", 4), randomFC(4, 3, rng));
  net.markOutput(net.addActivation("act", fc, kRelu), "y");
  net.markOutput(fc, "pre_activation");
  Graph g = net.graph();
  BuildLog log;
  detail::fuseActivations(g, log);
  EXPECT_EQ(g.layers.size(), 2u);
  EXPECT_TRUE(log.empty());
}

TEST(FuseActivations, SameOutputsForFullyConnectedRelu) {
  std::mt19937 rng(21);
  const Inputs inputs{{"x", randomTensor({4, 3, 6}, rng)}};
  const std::string report = expectSameWithAndWithoutOptimisation(
      [] {
        std::mt19937 r(22);
        NetworkDefinition net;
        Tensor y = net.addFullyConnected("fc", net.addSequenceInput("x", 6), randomFC(6, 8, r));
        y = net.addActivation("relu", y, kRelu);
        net.markOutput(net.addFullyConnected("fc2", y, randomFC(8, 3, r)), "y");
        return net;
      },
      inputs);
  EXPECT_THAT(report, HasSubstr("fused activation relu into fc"));
}

TEST(FuseActivations, SameOutputsWhenTheActivationIsTheOutput) {
  std::mt19937 rng(23);
  const Inputs inputs = sequenceInputs(6, 5, {6, 4, 1}, rng);
  // FullyConnected -> relu and lookahead -> clip, each the network output.
  const std::string fc_report = expectSameWithAndWithoutOptimisation(
      [] {
        std::mt19937 r(24);
        NetworkDefinition net;
        net.addLengthsInput("len");
        Tensor y = net.addFullyConnected("fc", net.addSequenceInput("x", 5), randomFC(5, 7, r));
        net.markOutput(net.addActivation("relu", y, kRelu), "y");
        return net;
      },
      inputs);
  EXPECT_THAT(fc_report, HasSubstr("fused activation relu into fc"));
  const std::string look_report = expectSameWithAndWithoutOptimisation(
      [] {
        std::mt19937 r(25);
        NetworkDefinition net;
        const Tensor len = net.addLengthsInput("len");
        Tensor y = net.addLookahead("look", net.addSequenceInput("x", 5), len, {.weight = randomTensor({5, 1, 3}, r)});
        net.markOutput(net.addActivation("clip", y, kClip), "y");
        return net;
      },
      inputs);
  EXPECT_THAT(look_report, HasSubstr("fused activation clip into look"));
  // sigmoid(0) = 0.5: the padded frames differ between the lookahead (zeros) and the activation
  // layer, so the result must stay the same whether or not the builder fuses.
  expectSameWithAndWithoutOptimisation(
      [] {
        std::mt19937 r(25);
        NetworkDefinition net;
        const Tensor len = net.addLengthsInput("len");
        Tensor y = net.addLookahead("look", net.addSequenceInput("x", 5), len, {.weight = randomTensor({5, 3}, r)});
        net.markOutput(net.addActivation("sigmoid", y, {ActivationType::kSigmoid}), "y");
        return net;
      },
      inputs);
}

TEST(FuseActivations, SameOutputsForLookaheadClipInsideANetwork) {
  std::mt19937 rng(26);
  const Inputs inputs = sequenceInputs(8, 5, {8, 5, 2}, rng);
  const std::string report = expectSameWithAndWithoutOptimisation(
      [] {
        std::mt19937 r(27);
        NetworkDefinition net;
        const Tensor len = net.addLengthsInput("len");
        Tensor y = net.addRNN("rnn", net.addSequenceInput("x", 5), len,
                              randomRNN(RNNCell::kLSTM, 5, 6, 1, RNNDirection::kForward, r));
        y = net.addLookahead("look", y, len, {.weight = randomTensor({6, 4}, r)});
        y = net.addActivation("clip", y, kClip);
        y = net.addBatchNorm("bn", y, randomBatchNorm(6, r));
        net.markOutput(net.addSoftmax("softmax", net.addFullyConnected("fc", y, randomFC(6, 4, r, false))), "y");
        return net;
      },
      inputs);
  EXPECT_THAT(report, HasSubstr("fused activation clip into look"));
  EXPECT_THAT(report, HasSubstr("folded batch norm bn into the input projection of fc"));
}

TEST(FoldBatchNormIntoConvolution, BatchNormThatIsAlsoAnOutput) {
  std::mt19937 rng(28);
  const Inputs inputs{{"x", randomTensor({2, 3, 10, 6}, rng)}};
  expectSameWithAndWithoutOptimisation(
      [] {
        std::mt19937 r(29);
        NetworkDefinition net;
        Tensor y = net.addConvolution("conv", net.addImageInput("x", 3, 10), randomConv(3, 4, r));
        y = net.addBatchNorm("bn", y, randomBatchNorm(4, r));
        net.markOutput(y, "normalised");
        net.markOutput(net.addActivation("act", y, kClip), "y");
        return net;
      },
      inputs);
  // conv -> bn (network output): whatever the pass does, the output stays produced.
  NetworkDefinition net2;
  {
    std::mt19937 r(30);
    Tensor y = net2.addConvolution("conv", net2.addImageInput("x", 3, 10), randomConv(3, 4, r));
    net2.markOutput(net2.addBatchNorm("bn", y, randomBatchNorm(4, r)), "y");
  }
  Graph g = net2.graph();
  BuildLog log;
  detail::foldBatchNormIntoConvolution(g, log);
  expectWellFormed(g);
  EXPECT_EQ(g.tensors[g.outputs[0]].name, "y");
}

// ---- removeDeadLayers / compactTensors -------------------------------------------------------

TEST(RemoveDeadLayers, RemovesUnusedBranches) {
  std::mt19937 rng(31);
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", 4);
  const Tensor len = net.addLengthsInput("len");
  net.addLengthsTransform("unused_lengths", len, {.kernel = 3});
  const Tensor dead = net.addFullyConnected("dead_fc", x, randomFC(4, 3, rng));
  net.addActivation("dead_act", dead, kRelu);
  net.markOutput(net.addFullyConnected("fc", x, randomFC(4, 2, rng)), "y");
  Graph g = net.graph();
  ASSERT_EQ(g.layers.size(), 4u);
  BuildLog log;
  detail::removeDeadLayers(g, log);
  ASSERT_EQ(g.layers.size(), 1u);
  EXPECT_EQ(g.layers[0].name, "fc");
  EXPECT_EQ(log.size(), 3u);
  EXPECT_THAT(joined(log), HasSubstr("removed dead_act: its output is never used"));
  EXPECT_THAT(joined(log), HasSubstr("removed dead_fc: its output is never used"));
  EXPECT_THAT(joined(log), HasSubstr("removed unused_lengths"));

  const size_t tensors_before = g.tensors.size();
  detail::compactTensors(g);
  EXPECT_LT(g.tensors.size(), tensors_before);
  EXPECT_EQ(g.tensors.size(), 3u);  // x, len (an input), fc's output
  EXPECT_EQ(g.tensors[g.outputs[0]].name, "y");
  EXPECT_EQ(g.tensors[g.layers[0].inputs[0]].name, "x");
  expectWellFormed(g);

  // The built engine runs without the dead branch and keeps both inputs.
  const Engine engine = Builder().build(net);
  EXPECT_EQ(engine.inputNames(), (std::vector<std::string>{"x", "len"}));
  EXPECT_THAT(joined(engine.buildReport()), HasSubstr("removed dead_fc"));
}

TEST(RemoveDeadLayers, KeepsEverythingThatReachesAnOutput) {
  std::mt19937 rng(32);
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", 4);
  const Tensor a = net.addFullyConnected("a", x, randomFC(4, 4, rng));
  net.markOutput(a, "a_out");
  net.markOutput(net.addActivation("b", a, kRelu), "b_out");
  Graph g = net.graph();
  BuildLog log;
  detail::removeDeadLayers(g, log);
  EXPECT_EQ(g.layers.size(), 2u);
  EXPECT_TRUE(log.empty());
}

// ---- All passes on a DeepSpeech2 model -------------------------------------------------------

TEST(AllPasses, DeepSpeech2Graph) {
  const auto model = DeepSpeech2Model::load(dataPath("parity/lstm_bi_l2_h32/model.safetensors"));
  const NetworkDefinition net = model.createNetwork();
  Graph g = net.graph();
  // 2 lengths transforms, input mask, 2 x (conv, mask, bn, mask, clip, mask), reshape,
  // rnn, bn + rnn, fc bn, fc, softmax, batch major, output mask.
  ASSERT_EQ(g.layers.size(), 24u);
  BuildLog log;
  detail::runAllPasses(g, log);
  // Removed: 4 masks, 2 conv batch norms, 2 clips, 2 batch norms before projections.
  EXPECT_EQ(g.layers.size(), 14u) << joined(log);
  EXPECT_EQ(log.size(), 10u) << joined(log);
  for (const char* gone : {"conv.seq_module.0.mask", "conv.seq_module.1", "conv.seq_module.1.mask", "conv.seq_module.2",
                           "conv.seq_module.4", "conv.seq_module.5", "rnns.1.batch_norm", "fc.0.module.0"})
    EXPECT_EQ(layerIndex(g, gone), -1) << gone;
  for (const char* kept : {"input_mask", "conv.seq_module.2.mask", "conv.seq_module.5.mask", "output_mask"})
    EXPECT_GE(layerIndex(g, kept), 0) << kept;
  expectWellFormed(g);
  for (size_t id = 0; id < g.tensors.size(); ++id)
    EXPECT_TRUE(g.producer(static_cast<int>(id)) >= 0 ||
                std::find(g.inputs.begin(), g.inputs.end(), static_cast<int>(id)) != g.inputs.end())
        << g.tensors[id].name << " survived compaction unused";
}

}  // namespace
}  // namespace ds2rt::test
