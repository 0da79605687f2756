// Recurrent layers against a naive reference (per utterance, plain loops in double): every cell,
// direction, merge, depth and bias combination with unsorted mixed lengths and garbage in the
// padded frames; and weights given in other frameworks' gate layouts or gate by gate.
#include <gmock/gmock.h>

#include <cmath>
#include <functional>

#include "ds2rt/builder.h"
#include "ds2rt/engine.h"
#include "ds2rt/error.h"
#include "ds2rt/network.h"
#include "rnn_reference.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

enum class BiasMode { kBoth, kNone, kInputOnly, kRecurrentOnly };

struct RnnCase {
  RNNCell cell;
  bool linear_before_reset;
  RNNDirection direction;
  DirectionMerge merge;
  int layers;
  BiasMode bias;
};

std::string caseName(const RnnCase& c) {
  std::string name = toString(c.cell);
  if (c.cell == RNNCell::kGRU) name += c.linear_before_reset ? "_lbr" : "_nolbr";
  name += c.direction == RNNDirection::kForward ? "_fwd" : c.direction == RNNDirection::kReverse ? "_rev" : "_bi";
  if (c.direction == RNNDirection::kBidirectional) name += c.merge == DirectionMerge::kSum ? "_sum" : "_concat";
  name += cat("_l", c.layers);
  static const char* const bias[] = {"_bias", "_nobias", "_inputbias", "_recurrentbias"};
  return name + bias[static_cast<int>(c.bias)];
}

// ---- Helpers -------------------------------------------------------------------------------------

constexpr int64_t kInput = 4, kHiddenSize = 5;

// Weights of scale 0.5 at kHiddenSize units, scaled as 1 / sqrt(hidden) for wider layers.
RNNDesc makeDesc(const RnnCase& c, std::mt19937& rng, int64_t hidden = kHiddenSize) {
  RNNDesc d;
  d.cell = c.cell;
  d.hidden_size = static_cast<int>(hidden);
  const float scale = 0.5f * std::sqrt(static_cast<float>(kHiddenSize) / hidden);
  d.num_layers = c.layers;
  d.direction = c.direction;
  d.merge = c.merge;
  d.linear_before_reset = c.linear_before_reset;
  const int64_t gh = gateCount(c.cell) * hidden;
  for (int l = 0; l < c.layers; ++l)
    for (int dir = 0; dir < d.directions(); ++dir) {
      const int64_t in = l == 0 ? kInput : d.directions() * hidden;
      RNNGateWeights w;
      w.input_weight = randomTensor({gh, in}, rng, l == 0 ? 0.5f : scale);
      w.recurrent_weight = randomTensor({gh, hidden}, rng, scale);
      if (c.bias == BiasMode::kBoth || c.bias == BiasMode::kInputOnly) w.input_bias = randomTensor({gh}, rng, 0.5f);
      if (c.bias == BiasMode::kBoth || c.bias == BiasMode::kRecurrentOnly) w.recurrent_bias = randomTensor({gh}, rng, 0.5f);
      d.weights.push_back(w);
    }
  return d;
}

// T x N x I with huge garbage in every frame at or past the utterance's length.
HostTensor paddedInput(int64_t t, const std::vector<int32_t>& lengths, int64_t features, std::mt19937& rng) {
  const int64_t n = static_cast<int64_t>(lengths.size());
  HostTensor x = randomTensor({t, n, features}, rng);
  const HostTensor garbage = randomTensor({t, n, features}, rng, 1e4f);
  for (int64_t s = 0; s < t; ++s)
    for (int64_t b = 0; b < n; ++b)
      if (s >= lengths[b])
        for (int64_t i = 0; i < features; ++i)
          x.mutableData<float>()[(s * n + b) * features + i] = garbage.data<float>()[(s * n + b) * features + i];
  return x;
}

NetworkDefinition rnnNetwork(const RNNDesc& desc, int64_t features = kInput) {
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", static_cast<int>(features));
  net.markOutput(net.addRNN("rnn", x, net.addLengthsInput("lengths"), desc), "y");
  return net;
}

HostTensor runRNN(const Engine& engine, const HostTensor& x, const std::vector<int32_t>& lengths) {
  auto ctx = engine.createContext();
  return ctx.run({{"x", x}, {"lengths", HostTensor::fromInts({static_cast<int64_t>(lengths.size())}, lengths)}}).at("y");
}

void expectMatchesReference(const HostTensor& out, const RNNDesc& desc, const HostTensor& x,
                            const std::vector<int32_t>& lengths, const std::string& what) {
  const int64_t t = x.dim(0), n = x.dim(1);
  const int64_t width = desc.direction == RNNDirection::kBidirectional && desc.merge == DirectionMerge::kConcat
                            ? 2 * desc.hidden_size
                            : desc.hidden_size;
  ASSERT_EQ(out.shape(), (Shape{t, n, width})) << what;
  const auto expected = referenceRNN(desc, x, lengths);
  EXPECT_LT(relativeL2(toVector(out), std::vector<float>(expected.begin(), expected.end())), fp32KernelTolerance())
      << what;
  for (int64_t s = 0; s < t; ++s)
    for (int64_t b = 0; b < n; ++b)
      if (s >= lengths[b])
        for (int64_t j = 0; j < width; ++j)
          ASSERT_EQ(out.data<float>()[(s * n + b) * width + j], 0.0f) << what << ": frame " << s << " of utterance " << b;
}

// ---- Every combination -----------------------------------------------------------------------------

class RNNReferenceTest : public testing::TestWithParam<RnnCase> {};

TEST_P(RNNReferenceTest, MatchesNaiveReference) {
  const RnnCase c = GetParam();
  std::mt19937 rng(1234);
  const RNNDesc desc = makeDesc(c, rng);
  const NetworkDefinition net = rnnNetwork(desc);
  // Unsorted mixed lengths; T = 9 exceeds the longest utterance; a batch of one of length T.
  const std::vector<std::pair<int64_t, std::vector<int32_t>>> batches{
      {9, {3, 8, 1, 6, 5}}, {6, {6, 6}}, {7, {7}}, {9, {2, 9, 4}}};
  for (const bool optimize : {false, true}) {
    const Engine engine = Builder({.optimize = optimize}).build(net);
    auto ctx = engine.createContext();  // one context for every batch: scratch is reused
    for (const auto& [t, lengths] : batches) {
      const HostTensor x = paddedInput(t, lengths, kInput, rng);
      const HostTensor out =
          ctx.run({{"x", x}, {"lengths", HostTensor::fromInts({static_cast<int64_t>(lengths.size())}, lengths)}}).at("y");
      expectMatchesReference(out, desc, x, lengths, cat(caseName(c), " optimize=", optimize, " T=", t));
    }
  }
}

std::vector<RnnCase> allCases() {
  std::vector<RnnCase> cases;
  const std::vector<std::pair<RNNCell, bool>> cells{
      {RNNCell::kRNNTanh, true}, {RNNCell::kRNNRelu, true}, {RNNCell::kLSTM, true}, {RNNCell::kGRU, true}, {RNNCell::kGRU, false}};
  const std::vector<std::pair<RNNDirection, DirectionMerge>> directions{
      {RNNDirection::kForward, DirectionMerge::kConcat},
      {RNNDirection::kReverse, DirectionMerge::kConcat},
      {RNNDirection::kBidirectional, DirectionMerge::kConcat},
      {RNNDirection::kBidirectional, DirectionMerge::kSum}};
  for (const auto& [cell, lbr] : cells)
    for (const auto& [direction, merge] : directions)
      for (int layers = 1; layers <= 3; ++layers)
        for (BiasMode bias : {BiasMode::kBoth, BiasMode::kNone, BiasMode::kInputOnly, BiasMode::kRecurrentOnly})
          cases.push_back({cell, lbr, direction, merge, layers, bias});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllCombinations, RNNReferenceTest, testing::ValuesIn(allCases()),
                         [](const auto& info) { return caseName(info.param); });

// Long batches: the fused step's input projection runs in chunks of 2048 rows (time steps x
// batch), so these cross chunk boundaries (2048 / 5 = 409 steps a chunk: 409 + 409 + a partial
// one), with mixed lengths (the reverse direction gathers its rows) and equal ones (it reads them
// in place), in one context whose scratch grows between the batches.
class RNNLongSequenceTest : public testing::TestWithParam<RnnCase> {};

TEST_P(RNNLongSequenceTest, ChunkedProjectionMatchesNaiveReference) {
  const RnnCase c = GetParam();
  std::mt19937 rng(4321);
  const RNNDesc desc = makeDesc(c, rng);
  const Engine engine = Builder().build(rnnNetwork(desc));
  auto ctx = engine.createContext();
  const std::vector<std::pair<int64_t, std::vector<int32_t>>> batches{
      {1000, {700, 1000, 410, 409, 3}}, {1000, {1000, 1000, 1000, 1000, 1000}}, {3000, {2100}}, {830, {818, 818, 818, 818, 818}}};
  for (const auto& [t, lengths] : batches) {
    const HostTensor x = paddedInput(t, lengths, kInput, rng);
    const HostTensor out =
        ctx.run({{"x", x}, {"lengths", HostTensor::fromInts({static_cast<int64_t>(lengths.size())}, lengths)}}).at("y");
    expectMatchesReference(out, desc, x, lengths, cat(caseName(c), " T=", t, " N=", lengths.size()));
  }
}

INSTANTIATE_TEST_SUITE_P(Cells, RNNLongSequenceTest,
                         testing::Values(RnnCase{RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kSum, 2, BiasMode::kBoth},
                                         RnnCase{RNNCell::kGRU, true, RNNDirection::kBidirectional, DirectionMerge::kConcat, 1, BiasMode::kBoth},
                                         RnnCase{RNNCell::kGRU, true, RNNDirection::kReverse, DirectionMerge::kConcat, 1, BiasMode::kBoth},
                                         RnnCase{RNNCell::kRNNTanh, true, RNNDirection::kForward, DirectionMerge::kConcat, 2, BiasMode::kInputOnly}),
                         [](const auto& info) { return caseName(info.param); });

// Wide layers in a big batch: several of the fused step's row groups (4 utterances share each
// weight load for LSTM and GRU, 8 for vanilla cells) and a remainder; 300 units leave the last
// block of 16 units part-filled.
TEST(RNNWideBatch, RowGroupsMatchNaiveReference) {
  for (const RnnCase& c : {RnnCase{RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kSum, 2, BiasMode::kBoth},
                           RnnCase{RNNCell::kGRU, true, RNNDirection::kBidirectional, DirectionMerge::kConcat, 1, BiasMode::kBoth},
                           RnnCase{RNNCell::kRNNTanh, true, RNNDirection::kReverse, DirectionMerge::kConcat, 1, BiasMode::kBoth}}) {
    std::mt19937 rng(99);
    const RNNDesc desc = makeDesc(c, rng, 300);
    const std::vector<int32_t> lengths{7, 3, 12, 1, 9, 12, 5, 2, 11, 8, 6};
    const HostTensor x = paddedInput(12, lengths, kInput, rng);
    expectMatchesReference(runRNN(Builder().build(rnnNetwork(desc)), x, lengths), desc, x, lengths, caseName(c));
  }
}

// The reference itself must tell the variants apart, or the tests above could not fail.
TEST(RNNReference, VariantsDiffer) {
  std::mt19937 rng(5);
  const std::vector<int32_t> lengths{4, 6};
  const HostTensor x = paddedInput(6, lengths, kInput, rng);
  const auto output = [&](RnnCase c) {
    std::mt19937 weights_rng(77);
    return referenceRNN(makeDesc(c, weights_rng), x, lengths);
  };
  const RnnCase gru{RNNCell::kGRU, true, RNNDirection::kForward, DirectionMerge::kConcat, 1, BiasMode::kBoth};
  RnnCase gru_plain = gru;
  gru_plain.linear_before_reset = false;
  EXPECT_NE(output(gru), output(gru_plain));
  RnnCase gru_no_bias = gru, gru_plain_no_bias = gru_plain;
  gru_no_bias.bias = gru_plain_no_bias.bias = BiasMode::kNone;
  EXPECT_NE(output(gru_no_bias), output(gru_plain_no_bias));  // differ through R_n (r * h) vs r * (R_n h)
  RnnCase reverse = gru;
  reverse.direction = RNNDirection::kReverse;
  EXPECT_NE(output(gru), output(reverse));
}

// ---- Batch norm folded into the input projection --------------------------------------------------

TEST(RNN, BatchNormFoldedIntoTheInputProjection) {
  std::mt19937 rng(9);
  const RnnCase c{RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kConcat, 2, BiasMode::kNone};
  const RNNDesc desc = makeDesc(c, rng);
  BatchNormDesc bn{randomTensor({kInput}, rng), randomTensor({kInput}, rng), randomTensor({kInput}, rng),
                   HostTensor::fromFloats({kInput}, {0.5f, 1.0f, 2.0f, 0.25f}), 1e-5f};
  NetworkDefinition net;
  const Tensor x = net.addBatchNorm("bn", net.addSequenceInput("x", kInput), bn);
  net.markOutput(net.addRNN("rnn", x, net.addLengthsInput("lengths"), desc), "y");
  const std::vector<int32_t> lengths{5, 2, 7};
  const HostTensor input = paddedInput(7, lengths, kInput, rng);
  HostTensor normed = input.clone();
  for (int64_t i = 0; i < normed.size(); ++i) {
    const int64_t ch = i % kInput;
    normed.mutableData<float>()[i] = static_cast<float>(
        (input.data<float>()[i] - bn.mean.floats()[ch]) / std::sqrt(bn.variance.floats()[ch] + 1e-5) * bn.scale.floats()[ch] +
        bn.bias.floats()[ch]);
  }
  for (const bool optimize : {false, true}) {
    const Engine engine = Builder({.optimize = optimize}).build(net);
    bool folded = false;
    for (const auto& line : engine.buildReport()) folded |= line.find("folded batch norm bn into the input projection of rnn") != std::string::npos;
    EXPECT_EQ(folded, optimize);
    expectMatchesReference(runRNN(engine, input, lengths), desc, normed, lengths, cat("optimize=", optimize));
  }
}

// ---- Framework gate layouts ----------------------------------------------------------------------

// For each block of `layout` (storage order), its index in the canonical order; weights.h's table.
std::vector<int> blocksOf(RNNCell cell, GateLayout layout) {
  if (cell == RNNCell::kRNNTanh || cell == RNNCell::kRNNRelu) return {0};
  if (cell == RNNCell::kLSTM) {
    if (layout == GateLayout::kONNX) return {0, 3, 1, 2};  // i, o, f, c
    if (layout == GateLayout::kTF1) return {0, 2, 1, 3};   // i, j, f, o
    return {0, 1, 2, 3};
  }
  if (layout == GateLayout::kONNX || layout == GateLayout::kKeras) return {1, 0, 2};  // z, r, h
  return {0, 1, 2};
}

// Canonical G*H (x cols) -> the same tensor with its gate blocks in `layout` order.
HostTensor toFramework(const HostTensor& canonical, RNNCell cell, GateLayout layout) {
  if (canonical.empty()) return canonical;
  const auto blocks = blocksOf(cell, layout);
  const int64_t g = static_cast<int64_t>(blocks.size()), rows = canonical.dim(0) / g;
  const int64_t cols = canonical.rank() == 2 ? canonical.dim(1) : 1;
  HostTensor out(DataType::kFloat32, canonical.shape());
  for (int64_t k = 0; k < g; ++k)
    std::copy_n(canonical.data<float>() + blocks[k] * rows * cols, rows * cols, out.mutableData<float>() + k * rows * cols);
  return out;
}

// A Keras kernel: input x G*H, gate blocks along the columns.
HostTensor kerasKernel(const HostTensor& canonical, RNNCell cell) {
  const HostTensor w = toFramework(canonical, cell, GateLayout::kKeras);  // G*H x I
  const int64_t gh = w.dim(0), in = w.dim(1);
  HostTensor k(DataType::kFloat32, {in, gh});
  for (int64_t r = 0; r < gh; ++r)
    for (int64_t i = 0; i < in; ++i) k.mutableData<float>()[i * gh + r] = w.data<float>()[r * in + i];
  return k;
}

struct LayoutCase {
  RNNCell cell;
  bool linear_before_reset;
  GateLayout layout;
};

class RNNGateLayoutTest : public testing::TestWithParam<LayoutCase> {};

TEST_P(RNNGateLayoutTest, SameOutputsAsCanonicalWeights) {
  const LayoutCase p = GetParam();
  std::mt19937 rng(21);
  const RnnCase c{p.cell, p.linear_before_reset, RNNDirection::kBidirectional, DirectionMerge::kConcat, 2, BiasMode::kBoth};
  const RNNDesc canonical = makeDesc(c, rng);
  RNNDesc framework = canonical;
  framework.weights.clear();
  for (int l = 0; l < c.layers; ++l)
    for (int dir = 0; dir < 2; ++dir) {
      const RNNGateWeights& w = canonical.weights[l * 2 + dir];
      if (p.layout == GateLayout::kKeras) {
        // Keras: kernel I x G*H and recurrent_kernel H x G*H, transposed on the way in.
        framework.setWeights(l, dir, GateLayout::kKeras, transpose2d(kerasKernel(w.input_weight, p.cell)),
                             transpose2d(kerasKernel(w.recurrent_weight, p.cell)),
                             toFramework(w.input_bias, p.cell, p.layout), toFramework(w.recurrent_bias, p.cell, p.layout));
      } else {
        framework.setWeights(l, dir, p.layout, toFramework(w.input_weight, p.cell, p.layout),
                             toFramework(w.recurrent_weight, p.cell, p.layout),
                             toFramework(w.input_bias, p.cell, p.layout), toFramework(w.recurrent_bias, p.cell, p.layout));
      }
    }
  const std::vector<int32_t> lengths{4, 7, 2};
  const HostTensor x = paddedInput(7, lengths, kInput, rng);
  const HostTensor expected = runRNN(Builder().build(rnnNetwork(canonical)), x, lengths);
  expectMatchesReference(expected, canonical, x, lengths, "canonical");
  const HostTensor out = runRNN(Builder().build(rnnNetwork(framework)), x, lengths);
  EXPECT_EQ(toVector(out), toVector(expected)) << toString(p.layout);
  // The stored weights are the canonical ones.
  for (size_t i = 0; i < canonical.weights.size(); ++i) {
    EXPECT_EQ(toVector(framework.weights[i].input_weight), toVector(canonical.weights[i].input_weight));
    EXPECT_EQ(toVector(framework.weights[i].recurrent_weight), toVector(canonical.weights[i].recurrent_weight));
    EXPECT_EQ(toVector(framework.weights[i].input_bias), toVector(canonical.weights[i].input_bias));
    EXPECT_EQ(toVector(framework.weights[i].recurrent_bias), toVector(canonical.weights[i].recurrent_bias));
  }
}

std::vector<LayoutCase> layoutCases() {
  std::vector<LayoutCase> cases;
  for (GateLayout layout : {GateLayout::kCanonical, GateLayout::kPyTorch, GateLayout::kCuDNN, GateLayout::kONNX,
                            GateLayout::kKeras, GateLayout::kTF1}) {
    cases.push_back({RNNCell::kLSTM, true, layout});
    cases.push_back({RNNCell::kRNNTanh, true, layout});
    if (layout == GateLayout::kTF1) continue;
    cases.push_back({RNNCell::kGRU, true, layout});
    cases.push_back({RNNCell::kGRU, false, layout});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Layouts, RNNGateLayoutTest, testing::ValuesIn(layoutCases()), [](const auto& info) {
  std::string name = cat(toString(info.param.cell), "_", toString(info.param.layout));
  if (info.param.cell == RNNCell::kGRU) name += info.param.linear_before_reset ? "_lbr" : "_nolbr";
  return name;
});

// A framework layout that really permutes must give different outputs when passed as canonical.
TEST(RNNGateLayout, WrongLayoutChangesTheOutput) {
  std::mt19937 rng(22);
  const RnnCase c{RNNCell::kLSTM, true, RNNDirection::kForward, DirectionMerge::kConcat, 1, BiasMode::kBoth};
  const RNNDesc canonical = makeDesc(c, rng);
  RNNDesc wrong = canonical;
  const RNNGateWeights& w = canonical.weights[0];
  wrong.setWeights(0, 0, GateLayout::kCanonical, toFramework(w.input_weight, c.cell, GateLayout::kONNX),
                   toFramework(w.recurrent_weight, c.cell, GateLayout::kONNX),
                   toFramework(w.input_bias, c.cell, GateLayout::kONNX), toFramework(w.recurrent_bias, c.cell, GateLayout::kONNX));
  const std::vector<int32_t> lengths{5, 3};
  const HostTensor x = paddedInput(5, lengths, kInput, rng);
  EXPECT_GT(relativeL2(toVector(runRNN(Builder().build(rnnNetwork(wrong)), x, lengths)),
                       toVector(runRNN(Builder().build(rnnNetwork(canonical)), x, lengths))),
            1e-3);
}

// TensorRT style: one gate at a time, in any order.
class RNNSetGateTest : public testing::TestWithParam<std::pair<RNNCell, bool>> {};

TEST_P(RNNSetGateTest, SameOutputsAsCanonicalWeights) {
  const auto [cell, lbr] = GetParam();
  std::mt19937 rng(23);
  const RnnCase c{cell, lbr, RNNDirection::kBidirectional, DirectionMerge::kSum, 2, BiasMode::kBoth};
  const RNNDesc canonical = makeDesc(c, rng);
  std::vector<Gate> gates;
  if (cell == RNNCell::kLSTM) gates = {Gate::kInput, Gate::kForget, Gate::kCell, Gate::kOutput};
  else if (cell == RNNCell::kGRU) gates = {Gate::kReset, Gate::kUpdate, Gate::kHidden};
  else gates = {Gate::kInput};
  RNNDesc pergate = canonical;
  pergate.weights.clear();
  const int64_t h = kHiddenSize;
  const auto block = [&](const HostTensor& t, int64_t g) {
    const int64_t cols = t.rank() == 2 ? t.dim(1) : 1;
    std::vector<float> v(t.data<float>() + g * h * cols, t.data<float>() + (g + 1) * h * cols);
    return HostTensor::fromFloats(t.rank() == 2 ? Shape{h, cols} : Shape{h}, v);
  };
  for (int l = 0; l < c.layers; ++l)
    for (int dir = 0; dir < 2; ++dir) {
      const RNNGateWeights& w = canonical.weights[l * 2 + dir];
      for (int64_t g = static_cast<int64_t>(gates.size()) - 1; g >= 0; --g)  // reverse order on purpose
        pergate.setGate(l, dir, gates[g], block(w.input_weight, g), block(w.recurrent_weight, g), block(w.input_bias, g),
                        block(w.recurrent_bias, g));
    }
  const std::vector<int32_t> lengths{3, 6, 6, 1};
  const HostTensor x = paddedInput(6, lengths, kInput, rng);
  const HostTensor expected = runRNN(Builder().build(rnnNetwork(canonical)), x, lengths);
  expectMatchesReference(expected, canonical, x, lengths, "canonical");
  EXPECT_EQ(toVector(runRNN(Builder().build(rnnNetwork(pergate)), x, lengths)), toVector(expected));
}

INSTANTIATE_TEST_SUITE_P(Cells, RNNSetGateTest,
                         testing::Values(std::pair{RNNCell::kLSTM, true}, std::pair{RNNCell::kGRU, true},
                                         std::pair{RNNCell::kGRU, false}, std::pair{RNNCell::kRNNRelu, true}),
                         [](const auto& info) {
                           return cat(toString(info.param.first), info.param.first == RNNCell::kGRU
                                                                       ? (info.param.second ? "_lbr" : "_nolbr")
                                                                       : "");
                         });

// ---- Errors --------------------------------------------------------------------------------------


TEST(RNNErrors, WeightShapesNameLayerDirectionAndShape) {
  std::mt19937 rng(31);
  const RnnCase c{RNNCell::kGRU, true, RNNDirection::kBidirectional, DirectionMerge::kConcat, 2, BiasMode::kBoth};
  RNNDesc desc = makeDesc(c, rng);
  // Layer 1 reads both directions of layer 0: 2H = 10 inputs, not 5.
  desc.weights[3].input_weight = randomTensor({15, 5}, rng);
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", kInput);
  const Tensor len = net.addLengthsInput("lengths");
  std::string msg = errorOf([&] { net.addRNN("encoder", x, len, desc); });
  EXPECT_THAT(msg, HasSubstr("encoder"));
  EXPECT_THAT(msg, HasSubstr("layer 1 direction 1 input weight has shape [15, 5], expected [15, 10]"));

  desc = makeDesc(c, rng);
  desc.weights[0].recurrent_bias = randomTensor({12}, rng);
  msg = errorOf([&] { net.addRNN("encoder", x, len, desc); });
  EXPECT_THAT(msg, HasSubstr("layer 0 direction 0 recurrent bias has shape [12], expected [15]"));

  desc = makeDesc(c, rng);
  desc.weights.pop_back();
  msg = errorOf([&] { net.addRNN("encoder", x, len, desc); });
  EXPECT_THAT(msg, HasSubstr("encoder"));
  EXPECT_THAT(msg, HasSubstr("expected 4 weight sets"));

  desc = makeDesc(c, rng);
  desc.hidden_size = 0;
  EXPECT_THAT(errorOf([&] { net.addRNN("encoder", x, len, desc); }), HasSubstr("hidden_size"));

  desc = makeDesc(c, rng);
  const Tensor img = net.addImageInput("img", 1, kInput);
  msg = errorOf([&] { net.addRNN("rnn_on_image", img, len, desc); });
  EXPECT_THAT(msg, HasSubstr("rnn_on_image"));
  EXPECT_THAT(msg, HasSubstr("expected sequence"));
  msg = errorOf([&] { net.addRNN("rnn_bad_lengths", x, x, desc); });
  EXPECT_THAT(msg, HasSubstr("rnn_bad_lengths"));
  EXPECT_THAT(msg, HasSubstr("expected lengths"));
  EXPECT_EQ(net.layerCount(), 0u);
  // And the valid description is accepted.
  EXPECT_EQ(net.shape(net.addRNN("encoder", x, len, desc)), (Shape{kDynamic, kDynamic, 2 * kHiddenSize}));
}

TEST(RNNErrors, SetWeightsAndSetGate) {
  std::mt19937 rng(32);
  RNNDesc desc;
  desc.cell = RNNCell::kLSTM;
  EXPECT_THAT(errorOf([&] { desc.setWeights(0, 0, GateLayout::kONNX, randomTensor({20, 4}, rng), randomTensor({20, 5}, rng)); }),
              HasSubstr("hidden_size"));
  desc.hidden_size = 5;
  desc.num_layers = 2;
  std::string msg = errorOf([&] { desc.setWeights(2, 0, GateLayout::kONNX, randomTensor({20, 4}, rng), randomTensor({20, 5}, rng)); });
  EXPECT_THAT(msg, HasSubstr("layer 2 direction 0 out of range"));
  msg = errorOf([&] { desc.setWeights(0, 1, GateLayout::kONNX, randomTensor({20, 4}, rng), randomTensor({20, 5}, rng)); });
  EXPECT_THAT(msg, HasSubstr("direction 1 out of range"));
  msg = errorOf([&] { desc.setWeights(0, 0, GateLayout::kONNX, randomTensor({18, 4}, rng), randomTensor({20, 5}, rng)); });
  EXPECT_THAT(msg, HasSubstr("not a multiple of 4"));

  msg = errorOf([&] { desc.setGate(0, 0, Gate::kReset, randomTensor({5, 4}, rng), randomTensor({5, 5}, rng)); });
  EXPECT_THAT(msg, HasSubstr("lstm has no reset gate"));
  msg = errorOf([&] { desc.setGate(0, 0, Gate::kForget, randomTensor({4, 4}, rng), randomTensor({5, 5}, rng)); });
  EXPECT_THAT(msg, HasSubstr("hidden size 5"));
  EXPECT_THAT(msg, HasSubstr("[4, 4]"));
  desc.setGate(0, 0, Gate::kInput, randomTensor({5, 4}, rng), randomTensor({5, 5}, rng));
  msg = errorOf([&] { desc.setGate(0, 0, Gate::kOutput, randomTensor({5, 3}, rng), randomTensor({5, 5}, rng)); });
  EXPECT_THAT(msg, HasSubstr("does not match the other gates"));

  RNNDesc gru;
  gru.cell = RNNCell::kGRU;
  gru.hidden_size = 5;
  EXPECT_THAT(errorOf([&] { gru.setGate(0, 0, Gate::kForget, randomTensor({5, 4}, rng), randomTensor({5, 5}, rng)); }),
              HasSubstr("gru has no forget gate"));
  EXPECT_THAT(errorOf([&] { gru.setWeights(0, 0, GateLayout::kTF1, randomTensor({15, 4}, rng), randomTensor({15, 5}, rng)); }),
              HasSubstr("Keras"));
}

}  // namespace
}  // namespace ds2rt::test
