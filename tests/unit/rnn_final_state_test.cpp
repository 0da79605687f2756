// RNNFinalState (ONNX's Y_h): each direction's last state, against the recurrent layer's own output
// frames (forward: frame length - 1, reverse: frame 0), mixed lengths; plan round trip; bad inputs.
#include "ds2rt/builder.h"
#include "ds2rt/network.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

NetworkDefinition finalStateNetwork(RNNDirection direction, int input, int hidden, std::mt19937& rng) {
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", input);
  const Tensor lengths = net.addLengthsInput("lengths");
  RNNDesc rnn;
  rnn.cell = RNNCell::kGRU;
  rnn.hidden_size = hidden;
  rnn.direction = direction;
  for (int d = 0; d < rnn.directions(); ++d)
    rnn.setWeights(0, d, GateLayout::kCanonical, randomTensor({3 * hidden, input}, rng, 0.3f),
                   randomTensor({3 * hidden, hidden}, rng, 0.3f), randomTensor({3 * hidden}, rng, 0.1f),
                   randomTensor({3 * hidden}, rng, 0.1f));
  const Tensor y = net.addRNN("rnn", x, lengths, rnn);
  net.markOutput(y, "y");
  net.markOutput(net.addRNNFinalState("state", y, lengths, {direction, hidden}), "y_h");
  return net;
}

TEST(RNNFinalState, LastValidFrameOfEachDirection) {
  std::mt19937 rng(7);
  const int64_t t = 9, n = 3, input = 5, hidden = 4;
  for (const RNNDirection direction : {RNNDirection::kForward, RNNDirection::kReverse, RNNDirection::kBidirectional}) {
    const NetworkDefinition net = finalStateNetwork(direction, input, hidden, rng);
    const Engine built = Builder().build(net);
    const Engine reloaded = Engine::deserialize(built.serialize());
    const std::vector<int32_t> lengths{6, 9, 2};
    const std::map<std::string, HostTensor> inputs{{"x", randomTensor({t, n, input}, rng)},
                                                   {"lengths", HostTensor::fromInts({n}, lengths)}};
    for (const Engine* engine : {&built, &reloaded}) {
      auto ctx = engine->createContext();
      const auto out = ctx.run(inputs);
      const HostTensor& y = out.at("y");
      const HostTensor& state = out.at("y_h");
      const int dirs = direction == RNNDirection::kBidirectional ? 2 : 1;
      ASSERT_EQ(state.shape(), (Shape{dirs, n, hidden}));
      for (int d = 0; d < dirs; ++d)
        for (int64_t b = 0; b < n; ++b) {
          const bool reverse = direction == RNNDirection::kReverse || d == 1;
          const int64_t frame = reverse ? 0 : lengths[b] - 1;
          for (int64_t h = 0; h < hidden; ++h)
            EXPECT_EQ(state.data<float>()[(d * n + b) * hidden + h],
                      y.data<float>()[(frame * n + b) * dirs * hidden + d * hidden + h])
                << toString(direction) << " d" << d << " b" << b << " h" << h;
        }
    }
  }
}

TEST(RNNFinalState, RefusesAnInputThatIsNotTheDirectionsConcatenated) {
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", 10);
  const Tensor lengths = net.addLengthsInput("lengths");
  EXPECT_NE(errorOf([&] { net.addRNNFinalState("state", x, lengths, {RNNDirection::kBidirectional, 4}); })
                .find("layer 'state': the input must hold 2 directions of 4 features, it has 10"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { net.addRNNFinalState("state2", x, x, {RNNDirection::kForward, 10}); }).find("state2"),
            std::string::npos);
}

}  // namespace
}  // namespace ds2rt::test
