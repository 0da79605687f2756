// The recurrent layer's ONNX extras (clip, gate functions, LSTM peepholes, initial states as
// constants or run-time inputs, the cell-state output) against a naive reference of ONNX's
// equations, with unsorted mixed lengths and garbage in the padded frames; their plan round trip.
#include <gmock/gmock.h>

#include <cmath>

#include "ds2rt/builder.h"
#include "ds2rt/engine.h"
#include "ds2rt/error.h"
#include "ds2rt/network.h"
#include "rnn_reference.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;
constexpr int64_t kIn = 3, kH = 4;

RNNDesc makeDesc(RNNCell cell, RNNDirection direction, int layers, std::mt19937& rng) {
  RNNDesc d;
  d.cell = cell;
  d.hidden_size = kH;
  d.num_layers = layers;
  d.direction = direction;
  const int64_t gh = gateCount(cell) * kH;
  for (int l = 0; l < layers; ++l)
    for (int dir = 0; dir < d.directions(); ++dir)
      d.weights.push_back({randomTensor({gh, l == 0 ? kIn : d.directions() * kH}, rng, 0.6f),
                           randomTensor({gh, kH}, rng, 0.6f), randomTensor({gh}, rng, 0.5f),
                           randomTensor({gh}, rng, 0.5f),
                           cell == RNNCell::kLSTM ? randomTensor({3 * kH}, rng, 0.7f) : HostTensor{}});
  return d;
}

HostTensor padded(int64_t t, const std::vector<int32_t>& lengths, std::mt19937& rng) {
  const int64_t n = static_cast<int64_t>(lengths.size());
  HostTensor x = randomTensor({t, n, kIn}, rng, 2.0f);
  for (int64_t s = 0; s < t; ++s)
    for (int64_t b = 0; b < n; ++b)
      if (s >= lengths[b])
        for (int64_t i = 0; i < kIn; ++i) x.mutableData<float>()[(s * n + b) * kIn + i] = 1e4f;
  return x;
}

struct Case {
  std::string name;
  RNNCell cell;
  bool linear_before_reset;
  float clip;
  std::vector<RNNActivation> activations;
  bool peepholes, constant_states, input_states, cell_output;
  int layers;
};

HostTensor runCase(const Case& c, const RNNDesc& desc, const HostTensor& x, const std::vector<int32_t>& lengths,
                   const HostTensor& h0, const HostTensor& c0, bool through_plan) {
  NetworkDefinition net;
  const Tensor in = net.addSequenceInput("x", kIn);
  const Tensor len = net.addLengthsInput("lengths");
  std::map<std::string, HostTensor> inputs{{"x", x}, {"lengths", HostTensor::fromInts({int64_t(lengths.size())}, lengths)}};
  Tensor y;
  if (c.input_states) {
    const Tensor h = net.addSequenceInput("h0", kH);
    inputs["h0"] = h0;
    Tensor cs;
    if (!c0.empty()) {
      cs = net.addSequenceInput("c0", kH);
      inputs["c0"] = c0;
    }
    y = net.addRNN("rnn", in, len, desc, h, cs);
  } else {
    y = net.addRNN("rnn", in, len, desc);
  }
  net.markOutput(y, "y");
  Engine engine = Builder().build(net);
  if (through_plan) engine = Engine::deserialize(engine.serialize());
  auto ctx = engine.createContext();
  return ctx.run(inputs).at("y");
}

class RNNExtrasTest : public testing::TestWithParam<Case> {};

TEST_P(RNNExtrasTest, MatchesOnnxEquations) {
  const Case& c = GetParam();
  for (const RNNDirection direction : {RNNDirection::kForward, RNNDirection::kReverse, RNNDirection::kBidirectional}) {
    std::mt19937 rng(77);
    RNNDesc desc = makeDesc(c.cell, direction, c.layers, rng);
    desc.linear_before_reset = c.linear_before_reset;
    desc.clip = c.clip;
    desc.activations = c.activations;
    const size_t per = defaultActivations(c.cell).size();
    if (desc.directions() == 1 && desc.activations.size() > per) desc.activations.resize(per);  // one direction's list
    if (!c.peepholes)
      for (auto& w : desc.weights) w.peephole = {};
    if (c.cell_output) desc.output = RNNOutput::kCellState;
    const std::vector<int32_t> lengths{3, 7, 1, 5};
    const int64_t n = 4, states = int64_t(c.layers) * desc.directions();
    const HostTensor x = padded(8, lengths, rng);
    HostTensor h0, c0;
    if (c.constant_states || c.input_states) {
      // constants shared by the batch (B = 1) in one case, per utterance otherwise
      h0 = randomTensor({states, c.input_states ? n : 1, kH}, rng);
      if (c.cell == RNNCell::kLSTM) c0 = randomTensor({states, n, kH}, rng);
    }
    if (c.constant_states) {
      desc.initial_h = h0;
      desc.initial_c = c0;
    }
    const auto expected = referenceRNN(desc, x, lengths, h0, c0);
    for (const bool through_plan : {false, true}) {
      const HostTensor y = runCase(c, desc, x, lengths, h0, c0, through_plan);
      const std::string what = cat(c.name, " ", toString(direction), through_plan ? " (plan round trip)" : "");
      ASSERT_EQ(y.size(), static_cast<int64_t>(expected.size())) << what;
      EXPECT_LT(relativeL2(toVector(y), std::vector<float>(expected.begin(), expected.end())), 1e-5) << what;
      const int64_t width = desc.directions() * kH;
      for (int64_t s = 0; s < 8; ++s)
        for (int64_t b = 0; b < n; ++b)
          if (s >= lengths[b])
            for (int64_t j = 0; j < width; ++j) ASSERT_EQ(y.data<float>()[(s * n + b) * width + j], 0.0f) << what;
    }
  }
}

using A = RNNActivationType;
const RNNActivation kSig{A::kSigmoid}, kTanh{A::kTanh};

INSTANTIATE_TEST_SUITE_P(
    Extras, RNNExtrasTest,
    testing::Values(
        Case{"lstm_peepholes", RNNCell::kLSTM, true, 0, {}, true, false, false, false, 1},
        Case{"lstm_clip", RNNCell::kLSTM, true, 0.5f, {}, false, false, false, false, 1},
        Case{"lstm_constant_states", RNNCell::kLSTM, true, 0, {}, false, true, false, false, 2},
        Case{"lstm_input_states", RNNCell::kLSTM, true, 0, {}, false, false, true, false, 2},
        Case{"lstm_cell_output", RNNCell::kLSTM, true, 0, {}, true, true, false, true, 1},
        Case{"lstm_everything", RNNCell::kLSTM, true, 0.8f,
             {{A::kHardSigmoid, 0.3f, 0.4f}, {A::kScaledTanh, 1.5f, 0.7f}, {A::kSoftsign}}, true, false, true, false, 2},
        Case{"gru_functions_clip", RNNCell::kGRU, true, 0.6f, {{A::kHardSigmoid, 0.2f, 0.5f}, {A::kElu, 0.9f}},
             false, true, false, false, 1},
        Case{"gru_not_lbr", RNNCell::kGRU, false, 0.7f, {{A::kSigmoid}, {A::kSoftplus}}, false, false, true, false, 1},
        Case{"rnn_leaky_relu", RNNCell::kRNNTanh, true, 0, {{A::kLeakyRelu, 0.1f}}, false, true, false, false, 2},
        Case{"rnn_per_direction", RNNCell::kRNNTanh, true, 0.9f,
             {{A::kAffine, 0.5f, 0.1f}, {A::kThresholdedRelu, 0.2f}}, false, false, false, false, 1}),
    [](const auto& info) { return info.param.name; });

TEST(RNNExtras, ConstantStateForAnotherBatchIsRefused) {
  std::mt19937 rng(5);
  RNNDesc desc = makeDesc(RNNCell::kGRU, RNNDirection::kForward, 1, rng);
  desc.initial_h = randomTensor({1, 3, kH}, rng);
  NetworkDefinition net;
  net.markOutput(net.addRNN("gru", net.addSequenceInput("x", kIn), net.addLengthsInput("lengths"), desc), "y");
  auto ctx = Builder().build(net).createContext();
  const std::string error = errorOf([&] {
    ctx.run({{"x", randomTensor({2, 2, kIn}, rng)}, {"lengths", HostTensor::fromInts({2}, std::vector<int32_t>{2, 1})}});
  });
  EXPECT_THAT(error, HasSubstr("'gru'"));
  EXPECT_THAT(error, HasSubstr("initial_h was made for a batch of 3"));
}

TEST(RNNExtras, DescValidationNamesTheLayer) {
  std::mt19937 rng(6);
  const auto add = [&](const std::function<void(RNNDesc&)>& change) {
    RNNDesc desc = makeDesc(RNNCell::kGRU, RNNDirection::kBidirectional, 1, rng);
    change(desc);
    NetworkDefinition net;
    return errorOf([&] { net.addRNN("gru", net.addSequenceInput("x", kIn), net.addLengthsInput("lengths"), desc); });
  };
  EXPECT_THAT(add([](RNNDesc& d) { d.clip = -1; }), HasSubstr("'gru': clip must be 0 (none) or positive"));
  EXPECT_THAT(add([](RNNDesc& d) { d.activations = {kSig, kTanh, kSig}; }), HasSubstr("3 gate functions given"));
  EXPECT_THAT(add([](RNNDesc& d) { d.output = RNNOutput::kCellState; }), HasSubstr("only an LSTM has a cell state"));
  EXPECT_THAT(add([](RNNDesc& d) { d.weights[0].peephole = HostTensor::fromFloats({3 * kH}, std::vector<float>(3 * kH)); }),
              HasSubstr("peephole weights are for LSTM only"));
  EXPECT_THAT(add([](RNNDesc& d) { d.initial_h = HostTensor::fromFloats({1, 1, kH}, std::vector<float>(kH)); }),
              HasSubstr("initial_h must be float32 2 (layers x directions) x batch x 4"));
}

TEST(RNNExtras, PlainLayersKeepTheFastPathAndExtrasTakeTheGeneralOne) {
  std::mt19937 rng(7);
  RNNDesc desc = makeDesc(RNNCell::kLSTM, RNNDirection::kForward, 1, rng);
  EXPECT_TRUE(desc.hasExtras());  // peepholes
  desc.weights[0].peephole = {};
  EXPECT_FALSE(desc.hasExtras());
  desc.activations = defaultActivations(RNNCell::kLSTM);
  EXPECT_FALSE(desc.hasExtras());  // the defaults spelt out are still the plain cell
  desc.clip = 3;
  EXPECT_TRUE(desc.hasExtras());
  NetworkDefinition net;
  net.markOutput(net.addRNN("lstm", net.addSequenceInput("x", kIn), net.addLengthsInput("lengths"), desc), "y");
  const Engine engine = Builder().build(net);
  std::string report = engine.describe();
  for (const auto& line : engine.buildReport()) report += line + "\n";
  EXPECT_THAT(report, HasSubstr("general cell"));
}

}  // namespace
}  // namespace ds2rt::test
