// The CPU's fused recurrent step with more utterances than its row group (4 rows share each weight
// load for LSTM and GRU, 8 for vanilla cells), several groups and a remainder, in each precision,
// and (int8, bf16 on AMX) the step as one oneDNN matmul for many rows: every utterance of such a
// batch must come out as it does alone (one row, the fused step).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "cpu/bf16.h"
#include "cpu/amx_gemm.h"
#include "cpu/kernels.h"
#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

// What an engine's description says of its step for many utterances on AMX CPUs: the own tile kernel
// (rnn_step_matmul.h; int8 where the CPU has AMX-INT8), else one oneDNN matmul.
std::string manyRowsStep(Precision precision) {
  if (precision == Precision::kInt8) return detail::cpu::amxInt8Usable() ? "step products on AMX tiles" : "AMX matmul";
  if (!detail::cpu::amxTilesUsable()) return "AMX matmul";
  return precision == Precision::kBF16 ? "step products on AMX tiles" : "three bf16 products on AMX tiles";
}

class BatchedStepTest : public testing::TestWithParam<std::tuple<std::string, Precision>> {};

TEST_P(BatchedStepTest, EachUtteranceAsAlone) {
  const auto& [rnn, precision] = GetParam();
  if (precision == Precision::kInt8 && !detail::cpu::haveInt8()) GTEST_SKIP() << "this CPU has no AVX512_VNNI";
  if (precision == Precision::kBF16 && !detail::cpu::haveBF16()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  DeepSpeech2Config c;
  // "_uni": one direction, whose units the step splits over the threads (bidirectional layers
  // give each direction its own thread)
  c.rnn_type = rnn.substr(0, rnn.find('_'));
  c.bidirectional = rnn.find("_uni") == std::string::npos;
  c.lookahead_context = 3;
  c.hidden_size = 300;  // a part-filled last block of 16 units
  c.hidden_layers = 2;
  for (const char* l : {"_", "'", "A", "B", " "}) c.labels.emplace_back(l);
  const Engine engine =
      Builder({.precision = precision}).build(DeepSpeech2Model::withRandomWeights(c, 11).createNetwork());
  if (precision != Precision::kFP32)
    EXPECT_EQ(engine.describe().find(manyRowsStep(precision)) != std::string::npos, detail::cpu::haveAmx())
        << engine.describe();
  // frames; unsorted, mixed; more than the vanilla cell's row group of 8 (and than the 8 rows from
  // which bf16 steps run as one oneDNN matmul on AMX CPUs; int8's 16 are in MatmulStepTest below)
  const std::vector<int32_t> lengths{90, 41, 120, 7, 66, 120, 13, 100, 55, 28};
  const int64_t n = static_cast<int64_t>(lengths.size()), frames = 120;
  std::mt19937 rng(3);
  const HostTensor batch = randomTensor({n, 1, 161, frames}, rng);
  auto ctx = engine.createContext();
  const auto together = ctx.run({{"features", batch}, {"lengths", HostTensor::fromInts({n}, lengths)}});
  const HostTensor& probs = together.at("probs");  // N x T' x classes
  const int64_t steps = probs.dim(1), classes = probs.dim(2);
  for (int64_t b = 0; b < n; ++b) {
    const float* features = batch.data<float>() + b * 161 * frames;
    const HostTensor one = HostTensor::fromFloats({1, 1, 161, lengths[b]}, [&] {
      std::vector<float> v(161 * lengths[b]);
      for (int64_t f = 0; f < 161; ++f) std::copy_n(features + f * frames, lengths[b], v.begin() + f * lengths[b]);
      return v;
    }());
    const auto alone = ctx.run({{"features", one}, {"lengths", HostTensor::fromInts({1}, {lengths[b]})}});
    const int64_t valid = alone.at("output_lengths").data<int32_t>()[0];
    ASSERT_EQ(valid, together.at("output_lengths").data<int32_t>()[b]);
    const std::vector<float> want(alone.at("probs").data<float>(), alone.at("probs").data<float>() + valid * classes);
    const std::vector<float> got(probs.data<float>() + b * steps * classes,
                                 probs.data<float>() + (b * steps + valid) * classes);
    // bf16: a row's products are summed in another order alone (two interleaved chains) than in a
    // group, and h in bf16 carries that difference on (1e-4 to 7e-4 measured). int8 on AMX CPUs: the
    // convolutions and input projections are oneDNN bf16 primitives, which order their fp32 sums by
    // batch size; a last-bit difference can move a value of h across an 8-bit rounding (3.8e-4
    // measured with one thread). int8 elsewhere: the same integer sums, alone or not.
    const bool bf16_primitives = precision == Precision::kBF16 || (precision == Precision::kInt8 && detail::cpu::haveAmx());
    const double tolerance = bf16_primitives ? 2e-3 : 1e-4;
    EXPECT_LT(relativeL2(got, want), tolerance) << rnn << " " << toString(precision) << " utterance " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(CellsAndPrecisions, BatchedStepTest,
                         testing::Combine(testing::Values("lstm", "gru", "rnn", "lstm_uni"),
                                          testing::Values(Precision::kFP32, Precision::kInt8, Precision::kBF16)),
                         [](const auto& info) {
                           return cat(std::get<0>(info.param), "_", toString(std::get<1>(info.param)));
                         });

// A bare recurrent layer (by default two layers of 300 units: a part-filled last block, a part-filled
// last chunk of 64 k) run on `lengths` utterances at once and on each alone: each must come out as
// alone. Returns the engine's description.
std::string expectEachUtteranceAsAlone(RNNCell cell, RNNDirection direction, Precision precision,
                                       const std::vector<int32_t>& lengths, int hidden = 300, int layers = 2) {
  std::mt19937 rng(5);
  const int64_t features = 24, time = *std::max_element(lengths.begin(), lengths.end());
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", features);
  const Tensor lengths_input = net.addLengthsInput("lengths");
  RNNDesc desc{.cell = cell, .hidden_size = hidden, .num_layers = layers, .direction = direction};
  const int64_t gh = gateCount(cell) * hidden;
  const float recurrent_scale = 0.06f * std::sqrt(300.0f / static_cast<float>(hidden));
  for (int l = 0; l < layers; ++l)
    for (int d = 0; d < desc.directions(); ++d) {
      const int64_t in = l == 0 ? features : hidden * desc.directions();
      desc.setWeights(l, d, GateLayout::kCanonical, randomTensor({gh, in}, rng, 0.1f),
                      randomTensor({gh, hidden}, rng, recurrent_scale), randomTensor({gh}, rng, 0.1f),
                      randomTensor({gh}, rng, 0.1f));
    }
  net.markOutput(net.addRNN("rnn", x, lengths_input, std::move(desc)), "y");
  const Engine engine = Builder({.precision = precision}).build(net);
  const int64_t n = static_cast<int64_t>(lengths.size());
  const HostTensor input = randomTensor({time, n, features}, rng);
  auto ctx = engine.createContext();
  const HostTensor y = ctx.run({{"x", input}, {"lengths", HostTensor::fromInts({n}, lengths)}}).at("y");
  const int64_t width = y.dim(2);
  for (int64_t b = 0; b < n; ++b) {
    std::vector<float> one(lengths[b] * features);
    for (int64_t t = 0; t < lengths[b]; ++t)
      std::copy_n(input.data<float>() + (t * n + b) * features, features, one.begin() + t * features);
    const HostTensor alone = ctx.run({{"x", HostTensor::fromFloats({lengths[b], 1, features}, one)},
                                      {"lengths", HostTensor::fromInts({1}, {lengths[b]})}})
                                 .at("y");
    std::vector<float> got;
    for (int64_t t = 0; t < lengths[b]; ++t)
      got.insert(got.end(), y.data<float>() + (t * n + b) * width, y.data<float>() + (t * n + b + 1) * width);
    const std::vector<float> want(alone.data<float>(), alone.data<float>() + lengths[b] * width);
    // int8: the same integer sums as the fused step; bf16: another summation order, carried on by h;
    // fp32: the bf16 parts' products (~5e-6) on AMX against the fused step's fp32 ones
    const double tolerance = precision == Precision::kBF16 ? 2e-3 : 1e-4;
    EXPECT_LT(relativeL2(got, want), tolerance) << toString(cell) << " utterance " << b;
  }
  return engine.describe();
}

// The steps of many utterances on the own AMX tile kernel (int8: the same integer sums as the fused
// VNNI step; fp32: the bf16 parts) or oneDNN's matmul (CPUs with AMX, from 16 active rows) against each
// utterance alone (one row: the fused step). (With the convolution front end, 16 and 18 utterances
// made libdnnl 2.6 read past a heap block while creating its AMX bf16 convolutions, which the
// sanitizers' heaps fault on: an issue of its own, see the notes.)
class MatmulStepTest : public testing::TestWithParam<std::tuple<RNNCell, RNNDirection, Precision>> {};

TEST_P(MatmulStepTest, EachUtteranceAsAlone) {
  const auto& [cell, direction, precision] = GetParam();
  if (!detail::cpu::haveAmx()) GTEST_SKIP() << "this CPU has no AMX: the fused steps run";
  if (precision == Precision::kFP32 && !detail::cpu::useBF16x3Gemm()) GTEST_SKIP() << "fp32 runs oneDNN's sgemm here";
  const std::string described = expectEachUtteranceAsAlone(
      cell, direction, precision, {30, 12, 25, 30, 4, 19, 30, 27, 9, 30, 22, 16, 30, 28, 7, 30, 24, 30});
  EXPECT_NE(described.find(manyRowsStep(precision)), std::string::npos) << described;
}

// The fp32 and int8 fused steps' chunked row groups (taken where a thread's recurrent weights do not
// stay in L2: 1024 units, even split over two threads), with more groups than they keep parked at once
// (8 groups: 32 rows of LSTM and GRU, 64 of vanilla cells), then fewer as utterances end, and a
// remainder. (int8 vanilla cells' weights stay in L2 at this size: not here.)
class ManyGroupsStepTest : public testing::TestWithParam<std::tuple<RNNCell, RNNDirection, Precision>> {};

TEST_P(ManyGroupsStepTest, EachUtteranceAsAlone) {
  const auto& [cell, direction, precision] = GetParam();
  if (precision == Precision::kInt8 && !detail::cpu::haveInt8()) GTEST_SKIP() << "this CPU has no AVX512_VNNI";
  std::vector<int32_t> lengths;
  for (int b = 0; b < 71; ++b) lengths.push_back(b % 5 == 0 ? 12 : 2 + (b * 7) % 10);
  // (int8 on AMX CPUs: from 16 rows a direction with its own thread runs the AMX matmul instead, so the
  // chunked groups there see 4 to 15 rows; the bidirectional case still covers them.)
  expectEachUtteranceAsAlone(cell, direction, precision, lengths, 1024, 1);
}

// GRU steps of 32 rows or more share each weight load among eight rows (24 accumulators), in the
// chunked groups (300 units a direction, each on its own thread: past L2) and without them (one
// direction's units split over the threads), down to fewer than 32 rows (four a load) as utterances end.
TEST(GruEightRowStepTest, EachUtteranceAsAlone) {
  std::vector<int32_t> lengths;
  for (int b = 0; b < 40; ++b) lengths.push_back(3 + (b * 11) % 17);
  for (const RNNDirection direction : {RNNDirection::kBidirectional, RNNDirection::kForward})
    expectEachUtteranceAsAlone(RNNCell::kGRU, direction, Precision::kFP32, lengths);
}

INSTANTIATE_TEST_SUITE_P(CellsDirectionsPrecisions, ManyGroupsStepTest,
                         testing::Values(std::tuple{RNNCell::kLSTM, RNNDirection::kBidirectional, Precision::kFP32},
                                         std::tuple{RNNCell::kLSTM, RNNDirection::kForward, Precision::kFP32},
                                         std::tuple{RNNCell::kGRU, RNNDirection::kBidirectional, Precision::kFP32},
                                         std::tuple{RNNCell::kGRU, RNNDirection::kForward, Precision::kFP32},
                                         std::tuple{RNNCell::kRNNTanh, RNNDirection::kBidirectional, Precision::kFP32},
                                         std::tuple{RNNCell::kRNNTanh, RNNDirection::kForward, Precision::kFP32},
                                         std::tuple{RNNCell::kLSTM, RNNDirection::kBidirectional, Precision::kInt8},
                                         std::tuple{RNNCell::kLSTM, RNNDirection::kForward, Precision::kInt8},
                                         std::tuple{RNNCell::kGRU, RNNDirection::kBidirectional, Precision::kInt8},
                                         std::tuple{RNNCell::kGRU, RNNDirection::kForward, Precision::kInt8}),
                         [](const auto& info) {
                           return cat(toString(std::get<0>(info.param)), "_", toString(std::get<1>(info.param)), "_",
                                      toString(std::get<2>(info.param)));
                         });

INSTANTIATE_TEST_SUITE_P(CellsDirectionsPrecisions, MatmulStepTest,
                         testing::Combine(testing::Values(RNNCell::kLSTM, RNNCell::kGRU),
                                          testing::Values(RNNDirection::kBidirectional, RNNDirection::kForward),
                                          testing::Values(Precision::kInt8, Precision::kBF16, Precision::kFP32)),
                         [](const auto& info) {
                           return cat(toString(std::get<0>(info.param)), "_", toString(std::get<1>(info.param)), "_",
                                      toString(std::get<2>(info.param)));
                         });

}  // namespace
}  // namespace ds2rt::test
