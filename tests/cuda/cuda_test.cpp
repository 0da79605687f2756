// The CUDA backend against the CPU backend and the PyTorch fixtures, for every precision.
// Needs a GPU: without one every test is skipped with the reason (CI compiles them only).
#include <cuda_runtime.h>
#include <zlib.h>

#include <cctype>
#include <map>
#include <random>
#include <span>
#include <thread>
#include <vector>

#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "cuda/require_gpu.h"
#include "unit/test_util.h"

namespace ds2rt::test {
namespace {

double tolerance(Precision p) { return p == Precision::kFP32 ? 1e-4 : 1e-2; }

// ---- DeepSpeech2 fixtures against PyTorch --------------------------------------------------

class CudaParity : public testing::TestWithParam<std::tuple<std::string, Precision, bool>> {};

TEST_P(CudaParity, MatchesPyTorch) {
  REQUIRE_GPU();
  const auto& [name, precision, optimize] = GetParam();
  const auto model = DeepSpeech2Model::load(dataPath("parity/" + name + "/model.safetensors"));
  const auto io = WeightStore::load(dataPath("parity/" + name + "/io.safetensors"));
  for (const bool log : {false, true}) {
    const Engine engine = Builder({.device = Device::kCUDA, .precision = precision, .optimize = optimize})
                              .build(model.createNetwork({.log_softmax = log}));
    auto ctx = engine.createContext();
    const std::string key = log ? "log_probs" : "probs";
    // Three runs: eager, recorded into a CUDA graph, replayed.
    for (int run = 0; run < 3; ++run) {
      const auto out = ctx.run({{"features", io.get("input")}, {"lengths", io.get("input_lengths")}});
      ASSERT_EQ(toVector(out.at("output_lengths")), toVector(io.get("output_lengths")));
      const double error = relativeL2(validFrames(out.at(key), out.at("output_lengths")),
                                      validFrames(io.get(key), io.get("output_lengths")));
      EXPECT_LT(error, tolerance(precision)) << name << " " << key << " run " << run;
      RecordProperty(key + "_relative_l2", cat(error));
    }
  }
}

const auto kFixtures = testing::Values("lstm_bi_l2_h32", "gru_bi_l3_h24", "rnn_bi_l1_h16", "lstm_uni_l2_h16_ctx3",
                                        "gru_uni_l1_h24_ctx2", "rnn_uni_l3_h16_ctx4");

// Without graph optimisation every unfused batch norm and activation output is rounded to the
// activation type as well; in bf16 (8-bit mantissa) that alone reaches 1.1e-2 on the smallest
// fixture, so unoptimised engines are checked against PyTorch in fp32 and fp16 only.
INSTANTIATE_TEST_SUITE_P(
    Optimized, CudaParity,
    testing::Combine(kFixtures, testing::Values(Precision::kFP32, Precision::kTF32, Precision::kFP16, Precision::kBF16),
                     testing::Values(true)),
    [](const auto& info) { return std::get<0>(info.param) + "_" + toString(std::get<1>(info.param)); });

INSTANTIATE_TEST_SUITE_P(
    Unoptimized, CudaParity,
    testing::Combine(kFixtures, testing::Values(Precision::kFP32, Precision::kFP16), testing::Values(false)),
    [](const auto& info) {
      return std::get<0>(info.param) + "_" + toString(std::get<1>(info.param));
    });

// The convolutions in cuDNN's NCHW and (transposed around them) NHWC layouts, and as stride-1
// convolutions on their inputs' phases with 1, 2 or 4 outputs a position, each forced, in every
// precision that may take them: all match PyTorch, whichever the timing would pick.
TEST(CudaEngine, ConvolutionLayoutsMatchPyTorch) {
  REQUIRE_GPU();
  const auto model = DeepSpeech2Model::load(dataPath("parity/gru_bi_l3_h24/model.safetensors"));
  const auto io = WeightStore::load(dataPath("parity/gru_bi_l3_h24/io.safetensors"));
  for (const Precision precision : {Precision::kTF32, Precision::kFP16, Precision::kBF16})
    for (const std::string layout : {"nchw", "nhwc", "phases:1x1", "phases:1x2", "phases:2x1", "phases:2x2"}) {
      ASSERT_EQ(setenv("DS2RT_CUDA_CONV_LAYOUT", layout.c_str(), 1), 0);
      const Engine engine = Builder({.device = Device::kCUDA, .precision = precision}).build(model.createNetwork());
      auto ctx = engine.createContext();
      for (int run = 0; run < 3; ++run) {  // eager (the layout is chosen), recorded into a CUDA graph, replayed
        const auto out = ctx.run({{"features", io.get("input")}, {"lengths", io.get("input_lengths")}});
        const double error = relativeL2(validFrames(out.at("probs"), out.at("output_lengths")),
                                        validFrames(io.get("probs"), io.get("output_lengths")));
        EXPECT_LT(error, tolerance(precision)) << layout << " " << toString(precision) << " run " << run;
      }
      // The first convolution (1 -> 32 channels, stride 2 x 2) and the second (32 -> 32, 2 x 1); the
      // second has no 2 x 2 plan (256 phase channels), so there the others compete.
      const std::map<std::string, std::vector<std::string>> forms{
          {"phases:1x1", {"input's 4 phases where", "input's 2 phases where"}},
          {"phases:1x2", {"input's 8 phases, 2 outputs", "input's 4 phases, 2 outputs"}},
          {"phases:2x1", {"input's 8 phases, 2 outputs", "input's 4 phases, 2 outputs"}},
          {"phases:2x2", {"input's 16 phases, 4 outputs"}}};
      const std::string description = engine.describe();
      EXPECT_EQ(description.find(" phases") != std::string::npos, forms.count(layout) == 1) << description;
      if (forms.count(layout))
        for (const std::string& form : forms.at(layout))
          EXPECT_NE(description.find(form), std::string::npos) << layout << ": " << description;
      unsetenv("DS2RT_CUDA_CONV_LAYOUT");
    }
  for (const std::string bad : {"sideways", "phases:2", "phases:0x1", "phases:1x2x"}) {
    ASSERT_EQ(setenv("DS2RT_CUDA_CONV_LAYOUT", bad.c_str(), 1), 0);
    const Engine engine = Builder({.device = Device::kCUDA, .precision = Precision::kFP16}).build(model.createNetwork());
    auto ctx = engine.createContext();
    try {
      ctx.run({{"features", io.get("input")}, {"lengths", io.get("input_lengths")}});
      ADD_FAILURE() << "DS2RT_CUDA_CONV_LAYOUT=" << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("DS2RT_CUDA_CONV_LAYOUT is '" + bad + "'"), std::string::npos) << e.what();
    }
  }
  unsetenv("DS2RT_CUDA_CONV_LAYOUT");
}

// DS2RT_CUDA_RNN_KERNEL chooses between the wide and the cluster kernel (CudaRNN.MatchesCpu runs
// both); anything else is refused by name when the engine is built.
TEST(CudaEngine, UnknownRecurrentKernelChoiceIsRefused) {
  REQUIRE_GPU();
  const auto model = DeepSpeech2Model::load(dataPath("parity/gru_bi_l3_h24/model.safetensors"));
  const auto io = WeightStore::load(dataPath("parity/gru_bi_l3_h24/io.safetensors"));
  ASSERT_EQ(setenv("DS2RT_CUDA_RNN_KERNEL", "sideways", 1), 0);
  try {
    const Engine engine = Builder({.device = Device::kCUDA, .precision = Precision::kFP16}).build(model.createNetwork());
    engine.createContext().run({{"features", io.get("input")}, {"lengths", io.get("input_lengths")}});
    ADD_FAILURE() << "an unknown DS2RT_CUDA_RNN_KERNEL was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("DS2RT_CUDA_RNN_KERNEL is 'sideways'"), std::string::npos) << e.what();
  }
  unsetenv("DS2RT_CUDA_RNN_KERNEL");
}

// ---- Recurrent layers against the CPU backend ------------------------------------------------

struct RNNCase {
  RNNCell cell;
  bool linear_before_reset;
  RNNDirection direction;
  DirectionMerge merge;
  int layers, hidden, batch;
  Precision precision;
};

std::string caseName(const RNNCase& c) {
  return cat(toString(c.cell), c.cell == RNNCell::kGRU ? (c.linear_before_reset ? "_lbr" : "_plain") : "", "_",
             toString(c.direction), "_", toString(c.merge), "_l", c.layers, "_h", c.hidden, "_n", c.batch, "_",
             toString(c.precision));
}

class CudaRNN : public testing::TestWithParam<RNNCase> {};

TEST_P(CudaRNN, MatchesCpu) {
  REQUIRE_GPU();
  const RNNCase c = GetParam();
  std::mt19937 rng(42);
  const int features = 40, time = 23;
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", features);
  const Tensor lengths = net.addLengthsInput("lengths");
  RNNDesc desc{.cell = c.cell, .hidden_size = c.hidden, .num_layers = c.layers, .direction = c.direction,
               .merge = c.merge, .linear_before_reset = c.linear_before_reset};
  const int64_t gh = gateCount(c.cell) * c.hidden;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.hidden));
  for (int l = 0; l < c.layers; ++l)
    for (int d = 0; d < desc.directions(); ++d) {
      const int64_t in = l == 0 ? features : c.hidden * desc.directions();
      desc.setWeights(l, d, GateLayout::kCanonical, randomTensor({gh, in}, rng, scale), randomTensor({gh, c.hidden}, rng, scale),
                      randomTensor({gh}, rng, scale), randomTensor({gh}, rng, scale));
    }
  net.markOutput(net.addRNN("rnn", x, lengths, std::move(desc)), "y");
  const Engine cpu = Builder().build(net);
  const Engine gpu = Builder({.device = Device::kCUDA, .precision = c.precision}).build(net);

  HostTensor input = randomTensor({time, c.batch, features}, rng);
  std::vector<int32_t> lens;
  for (int b = 0; b < c.batch; ++b) lens.push_back(b == 1 % c.batch ? time : 1 + (b * 7 + 5) % time);
  for (int64_t t = 0; t < time; ++t)  // garbage in every padded frame
    for (int b = 0; b < c.batch; ++b)
      if (t >= lens[b])
        for (int f = 0; f < features; ++f) input.mutableData<float>()[(t * c.batch + b) * features + f] = 1e4f;
  const auto lengths_tensor = HostTensor::fromInts({c.batch}, lens);
  // tf32 layers (not ReLU, not a plain GRU) hold R and h in fp16 on chip.
  const bool fp16_products = c.precision == Precision::kTF32 && c.cell != RNNCell::kRNNRelu &&
                             !(c.cell == RNNCell::kGRU && !c.linear_before_reset);
  // The tensor-core kernels take fp16/bf16 layers and such tf32 ones, never a plain GRU.
  const bool tensor_core_layer = (c.precision == Precision::kTF32 ? fp16_products : c.precision != Precision::kFP32) &&
                                 !(c.cell == RNNCell::kGRU && !c.linear_before_reset);
  // Batches of 3 to 32 on them take the wide-batch kernel where it exists (the 1024-unit cases need
  // more SMs than some GPUs have; it copies h 8 units at a time).
  if (c.hidden <= 264 && c.hidden % 8 == 0)
    EXPECT_EQ(gpu.describe().find("wide-batch") != std::string::npos, tensor_core_layer) << gpu.describe();
  EXPECT_EQ(gpu.describe().find("held in fp16") != std::string::npos, fp16_products) << gpu.describe();
  // On an H100/H200 (compute capability 9.0) such layers take the cluster kernel above 32 utterances
  // where H is 256, 512 or 1024 (sizes its warpgroups split in whole tiles).
  if (computeCapability() == 90 && (c.hidden == 256 || c.hidden == 512 || c.hidden == 1024) && c.batch > 32)
    EXPECT_EQ(gpu.describe().find("cluster persistent") != std::string::npos, tensor_core_layer) << gpu.describe();
  // A forward stack on the tensor-core kernel runs two layers per launch (small sizes fit any GPU).
  if (c.hidden <= 264 && tensor_core_layer && c.direction == RNNDirection::kForward && c.layers > 1)
    EXPECT_NE(gpu.describe().find("two per launch"), std::string::npos) << gpu.describe();
  // A stack of 1024-unit GRU layers multiplies the next layer's input weights in warps of their own
  // at batch 1 (12 warps hold R's fragments, 4 are left).
  if (c.cell == RNNCell::kGRU && c.hidden == 1024 && gpu.describe().find("two per launch") != std::string::npos)
    EXPECT_NE(gpu.describe().find("warps of its own"), std::string::npos) << gpu.describe();
  auto cpu_ctx = cpu.createContext();
  const auto expected = cpu_ctx.run({{"x", input}, {"lengths", lengths_tensor}}).at("y");
  const auto expectMatches = [&](const Engine& engine, const std::string& label) {
    auto gpu_ctx = engine.createContext();
    for (int run = 0; run < 3; ++run) {
      const auto got = gpu_ctx.run({{"x", input}, {"lengths", lengths_tensor}}).at("y");
      ASSERT_EQ(got.shape(), expected.shape());
      EXPECT_LT(relativeL2(toVector(got), toVector(expected)), tolerance(c.precision))
          << caseName(c) << label << " run " << run;
      const int64_t width = got.dim(2);
      for (int64_t t = 0; t < time; ++t)
        for (int b = 0; b < c.batch; ++b)
          if (t >= lens[b])
            for (int64_t f = 0; f < width; ++f)
              ASSERT_EQ(got.data<float>()[(t * c.batch + b) * width + f], 0.0f) << "padded frame " << t << " of " << b;
    }
  };
  expectMatches(gpu, "");
  // Where both the wide and the cluster kernel take the batch, the one the default leaves aside too.
  if (gpu.describe().find("wide-batch") != std::string::npos &&
      gpu.describe().find("cluster persistent") != std::string::npos && c.batch >= 3 && c.batch <= 32) {
    ASSERT_EQ(setenv("DS2RT_CUDA_RNN_KERNEL", "wide", 1), 0);
    const Engine wide = Builder({.device = Device::kCUDA, .precision = c.precision}).build(net);
    unsetenv("DS2RT_CUDA_RNN_KERNEL");
    expectMatches(wide, " (wide kernel forced)");
  }
}

std::vector<RNNCase> rnnCases() {
  std::vector<RNNCase> cases;
  const std::pair<RNNCell, bool> cells[] = {{RNNCell::kRNNTanh, true}, {RNNCell::kRNNRelu, true}, {RNNCell::kLSTM, true},
                                            {RNNCell::kGRU, true},     {RNNCell::kGRU, false}};
  const std::pair<RNNDirection, DirectionMerge> directions[] = {{RNNDirection::kForward, DirectionMerge::kConcat},
                                                                {RNNDirection::kReverse, DirectionMerge::kConcat},
                                                                {RNNDirection::kBidirectional, DirectionMerge::kConcat},
                                                                {RNNDirection::kBidirectional, DirectionMerge::kSum}};
  for (auto [cell, lbr] : cells)
    for (auto [direction, merge] : directions)
      // The small persistent kernels take up to 4 (fp32) or 2 (fp16/bf16), the wide-batch kernel up
      // to 32 (fp16/bf16); per-step the rest (fp32 above 4, plain GRU, more than 32).
      for (int batch : {1, 2, 3, 11, 27})
        for (Precision p : {Precision::kFP32, Precision::kFP16})
          cases.push_back({cell, lbr, direction, merge, batch == 3 ? 2 : 1, 32, batch, p});
  // TF32: the input projections on the tensor cores, the per-step products too from 16 utterances.
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kConcat, 2, 64, 11, Precision::kTF32});
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kForward, DirectionMerge::kConcat, 1, 48, 19, Precision::kTF32});
  // tf32 with fp16 R in the persistent kernels (not for ReLU), one direction on the CUDA-core kernel.
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kSum, 2, 1024, 2, Precision::kTF32});
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kConcat, 1, 256, 7, Precision::kTF32});
  cases.push_back({RNNCell::kRNNRelu, true, RNNDirection::kBidirectional, DirectionMerge::kConcat, 1, 64, 3, Precision::kTF32});
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kForward, DirectionMerge::kConcat, 2, 1024, 3, Precision::kTF32});
  cases.push_back({RNNCell::kRNNTanh, true, RNNDirection::kReverse, DirectionMerge::kConcat, 1, 40, 1, Precision::kTF32});
  cases.push_back({RNNCell::kGRU, false, RNNDirection::kForward, DirectionMerge::kConcat, 1, 96, 6, Precision::kTF32});
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kBidirectional, DirectionMerge::kSum, 1, 32, 2, Precision::kTF32});
  // Larger shapes: bf16, and fp32 weights too big for shared memory (on an H100 the CUDA-core
  // persistent kernel reads 12 of each block's 64 rows from L2 every step; elsewhere per-step).
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kSum, 2, 256, 2, Precision::kBF16});
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kBidirectional, DirectionMerge::kSum, 1, 1024, 1, Precision::kFP16});
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kSum, 1, 1024, 2, Precision::kFP32});
  // The wide-batch kernel: h in two chunks, the last column tile half outside H (264 = 16 x 16 + 8),
  // each utterance-tile count, bf16, and one batch beyond it (per-step).
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kSum, 1, 264, 29, Precision::kFP16});
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kBidirectional, DirectionMerge::kConcat, 2, 96, 32, Precision::kBF16});
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kForward, DirectionMerge::kConcat, 1, 1024, 16, Precision::kFP16});
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kSum, 2, 1024, 32, Precision::kFP16});
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kReverse, DirectionMerge::kConcat, 1, 64, 40, Precision::kFP16});
  // The cluster kernel (Hopper; 33 to 64 utterances, H a multiple of 64 up to 1024): deepspeech.pytorch's
  // biLSTM at 64, a GRU's 21 units a block (clusters of 7) in bf16, one direction, tf32's float output
  // with a vanilla RNN's generic cell (11 blocks of 24 units a direction: clusters of one), 256 units
  // (4 fragments a thread), 512 reversed.
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kSum, 2, 1024, 64, Precision::kFP16});
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kBidirectional, DirectionMerge::kConcat, 1, 1024, 48, Precision::kBF16});
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kForward, DirectionMerge::kConcat, 2, 1024, 64, Precision::kFP16});
  cases.push_back({RNNCell::kRNNTanh, true, RNNDirection::kBidirectional, DirectionMerge::kConcat, 1, 256, 33, Precision::kTF32});
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kBidirectional, DirectionMerge::kSum, 1, 256, 57, Precision::kFP16});
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kReverse, DirectionMerge::kConcat, 1, 512, 40, Precision::kBF16});
  // One direction of 1024 units on half the SMs (64 blocks of 16 units on 132), as each direction of
  // a bidirectional layer.
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kForward, DirectionMerge::kConcat, 1, 1024, 1, Precision::kFP16});
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kReverse, DirectionMerge::kConcat, 1, 1024, 2, Precision::kBF16});
  // Stacks of forward layers, two per launch, each half writing the next layer's projection: an odd
  // count (the last layer alone), 1024 units (deepspeech.pytorch's uni-GRU), tf32's float output.
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kForward, DirectionMerge::kConcat, 5, 1024, 1, Precision::kFP16});
  // An even count at batch 1: the last launch's second half has emit warps and nothing to emit.
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kForward, DirectionMerge::kConcat, 4, 1024, 1, Precision::kBF16});
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kForward, DirectionMerge::kConcat, 4, 256, 2, Precision::kBF16});
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kForward, DirectionMerge::kConcat, 3, 1024, 2, Precision::kTF32});
  cases.push_back({RNNCell::kRNNTanh, true, RNNDirection::kForward, DirectionMerge::kConcat, 2, 64, 1, Precision::kFP16});
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kForward, DirectionMerge::kConcat, 3, 96, 2, Precision::kFP16});
  // An odd hidden size: the tensor-core kernel publishes h two units to a word, the last one half empty.
  cases.push_back({RNNCell::kGRU, true, RNNDirection::kBidirectional, DirectionMerge::kConcat, 1, 37, 1, Precision::kFP16});
  cases.push_back({RNNCell::kLSTM, true, RNNDirection::kForward, DirectionMerge::kConcat, 2, 37, 2, Precision::kBF16});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaRNN, testing::ValuesIn(rnnCases()),
                         [](const auto& info) { return caseName(info.param); });

// ---- Engine behaviour on the GPU -------------------------------------------------------------

TEST(CudaEngine, PlanRoundTripAndBatchInvariance) {
  REQUIRE_GPU();
  const auto model = DeepSpeech2Model::load(dataPath("parity/lstm_bi_l2_h32/model.safetensors"));
  const auto io = WeightStore::load(dataPath("parity/lstm_bi_l2_h32/io.safetensors"));
  const Engine built = Builder({.device = Device::kCUDA}).build(model.createNetwork());
  const std::string path = tempPath("cuda.plan");
  built.save(path);
  const Engine loaded = Engine::load(path);
  std::remove(path.c_str());
  auto a = built.createContext();
  auto b = loaded.createContext();
  const std::map<std::string, HostTensor> inputs{{"features", io.get("input")}, {"lengths", io.get("input_lengths")}};
  const auto x = a.run(inputs).at("probs"), y = b.run(inputs).at("probs");
  // Two engines may pick different cuDNN algorithms (each times them): equal up to fp32 rounding.
  ASSERT_LT(relativeL2(toVector(x), toVector(y)), 1e-6);

  // Utterance 2 alone gives its batched frames.
  const HostTensor& input = io.get("input");
  const int64_t bins = input.dim(2), t = input.dim(3);
  const int32_t len = io.get("input_lengths").data<int32_t>()[2];
  HostTensor alone(DataType::kFloat32, {1, 1, bins, len});
  for (int64_t k = 0; k < bins; ++k)
    for (int64_t s = 0; s < len; ++s) alone.mutableData<float>()[k * len + s] = input.data<float>()[(2 * bins + k) * t + s];
  const auto single = a.run({{"features", alone}, {"lengths", HostTensor::fromInts({1}, {len})}});
  const int64_t frames = single.at("output_lengths").data<int32_t>()[0], classes = x.dim(2);
  const float* batched = x.data<float>() + 2 * x.dim(1) * classes;
  for (int64_t i = 0; i < frames * classes; ++i) ASSERT_NEAR(single.at("probs").data<float>()[i], batched[i], 1e-5);
}

// Lengths of one tuning bucket (tuning_bucket.h) run with the convolution algorithms timed for the
// first of them, every layout and phase plan forced in turn: each still matches the CPU engine, and
// so does a length in the next bucket. (The search itself is timed by `ds2rt bench --new-lengths`.)
TEST(CudaEngine, LengthsOfOneTuningBucketMatchTheCpu) {
  REQUIRE_GPU();
  const auto model = DeepSpeech2Model::load(dataPath("parity/gru_bi_l3_h24/model.safetensors"));
  const Engine cpu = Builder({.device = Device::kCPU}).build(model.createNetwork());
  auto reference = cpu.createContext();
  const int64_t bins = cpu.tensorShape("features")[2];
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (const std::string layout : {"", "nhwc", "phases:1x1", "phases:1x2", "phases:2x2"}) {
    ASSERT_EQ(setenv("DS2RT_CUDA_CONV_LAYOUT", layout.c_str(), 1), 0);
    const Engine gpu = Builder({.device = Device::kCUDA, .precision = Precision::kFP16}).build(model.createNetwork());
    auto ctx = gpu.createContext();
    // Frames: 97 and 100 share bucket 112, 90 and 85 bucket 96 (the second convolution's inputs, half
    // as long, share theirs likewise); 113 and 131 are alone in theirs.
    for (const int32_t length : {97, 90, 100, 85, 113, 131}) {
      HostTensor features(DataType::kFloat32, {2, 1, bins, length});
      for (float& x : std::span<float>(features.mutableData<float>(), static_cast<size_t>(features.size())))
        x = normal(rng);
      const auto lengths = HostTensor::fromInts({2}, {length, length - 9});
      const auto got = ctx.run({{"features", features}, {"lengths", lengths}});
      const auto want = reference.run({{"features", features}, {"lengths", lengths}});
      EXPECT_LT(relativeL2(validFrames(got.at("probs"), got.at("output_lengths")),
                           validFrames(want.at("probs"), want.at("output_lengths"))),
                tolerance(Precision::kFP16))
          << "layout '" << layout << "', length " << length;
    }
  }
  unsetenv("DS2RT_CUDA_CONV_LAYOUT");
}

// A plan built for another GPU architecture is refused with a message naming both.
TEST(CudaEngine, PlanForAnotherGpuIsRefused) {
  REQUIRE_GPU();
  const auto model = DeepSpeech2Model::load(dataPath("parity/gru_uni_l1_h24_ctx2/model.safetensors"));
  std::vector<uint8_t> plan = Builder({.device = Device::kCUDA}).build(model.createNetwork()).serialize();
  std::string text(plan.begin(), plan.end());
  const size_t at = text.find("\"cuda_arch\":");
  ASSERT_NE(at, std::string::npos);
  const size_t digits = at + std::string("\"cuda_arch\":").size();
  ASSERT_TRUE(std::isdigit(static_cast<unsigned char>(plan[digits])) && std::isdigit(static_cast<unsigned char>(plan[digits + 1])));
  const char other = plan[digits] == '7' ? '8' : '7';  // sm_7x <-> sm_8x/9x: same length, another GPU
  plan[digits] = static_cast<uint8_t>(other);
  const auto crc = [&](size_t from, size_t to) {
    return static_cast<uint32_t>(crc32_z(crc32_z(0L, Z_NULL, 0), plan.data() + from, to - from));
  };
  const auto put = [&](size_t offset, uint32_t value) {
    for (int i = 0; i < 4; ++i) plan[offset + i] = static_cast<uint8_t>(value >> (8 * i));
  };
  put(40, crc(48, plan.size()));
  put(44, crc(0, 44));
  try {
    Engine::deserialize(plan, "other-gpu.plan");
    FAIL() << "a plan for another GPU loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rebuild the plan"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::string("sm_") + other), std::string::npos) << e.what();
  }
}

// Four threads, each with a context of its own, run `inputs` `runs` times: every result must be
// the bit-identical probabilities of a context made after them.
// An error in a thread fails the test with its message instead of ending the test program.
void expectContextsOnThreadsAgree(const Engine& engine, const std::map<std::string, HostTensor>& inputs, int runs) {
  std::vector<std::vector<float>> results(4);
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      try {
        auto ctx = engine.createContext();
        for (int k = 0; k < runs; ++k) results[i] = toVector(ctx.run(inputs).at("probs"));
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) ASSERT_EQ(errors[i], "") << "thread " << i;
  const auto reference = toVector(engine.createContext().run(inputs).at("probs"));
  for (const auto& r : results) EXPECT_EQ(r, reference);
}

TEST(CudaEngine, ContextsOnThreadsAgree) {
  REQUIRE_GPU();
  const auto model = DeepSpeech2Model::load(dataPath("parity/gru_uni_l1_h24_ctx2/model.safetensors"));
  const auto io = WeightStore::load(dataPath("parity/gru_uni_l1_h24_ctx2/io.safetensors"));
  const Engine engine = Builder({.device = Device::kCUDA, .precision = Precision::kFP16}).build(model.createNetwork());
  expectContextsOnThreadsAgree(engine, {{"features", io.get("input")}, {"lengths", io.get("input_lengths")}}, 5);
}

// An fp16 CUDA engine of a DeepSpeech2 with random weights: bidirectional LSTM layers, 5 labels.
Engine randomLstmEngine(int hidden, int layers, unsigned seed) {
  DeepSpeech2Config c;
  c.rnn_type = "lstm";
  c.hidden_size = hidden;
  c.hidden_layers = layers;
  for (const char* l : {"_", "'", "A", "B", " "}) c.labels.emplace_back(l);
  return Builder({.device = Device::kCUDA, .precision = Precision::kFP16})
      .build(DeepSpeech2Model::withRandomWeights(c, seed).createNetwork());
}

// Batches above the persistent kernels' take the per-step path, whose products time cuBLASLt's
// algorithms on first use: the contexts of one engine must still agree bit for bit.
TEST(CudaEngine, ContextsOnThreadsAgreeOnTheStepPath) {
  REQUIRE_GPU();
  const Engine engine = randomLstmEngine(96, 2, 5);
  std::mt19937 rng(8);
  const int64_t batch = 40;
  std::vector<int32_t> lengths;
  for (int64_t b = 0; b < batch; ++b) lengths.push_back(static_cast<int32_t>(80 - b));
  expectContextsOnThreadsAgree(
      engine, {{"features", randomTensor({batch, 1, 161, 80}, rng)}, {"lengths", HostTensor::fromInts({batch}, lengths)}}, 3);
  EXPECT_NE(engine.describe().find("per-step cuBLASLt"), std::string::npos) << engine.describe();
}

// The kernels of a context run one after another, so their scratch memory is shared: five
// recurrent layers need one input projection's scratch (T x N x 2 x 4H floats), not five.
TEST(CudaEngine, KernelsShareScratchMemory) {
  REQUIRE_GPU();
  const int64_t hidden = 1024;
  const Engine engine = randomLstmEngine(hidden, 5, 3);
  const int64_t batch = 32, frames = 600, steps = frames / 2;
  const size_t projection = steps * batch * 2 * 4 * hidden * sizeof(float);  // 315 MB
  std::mt19937 rng(4);
  const std::map<std::string, HostTensor> inputs{
      {"features", randomTensor({batch, 1, 161, frames}, rng)},
      {"lengths", HostTensor::fromInts({batch}, std::vector<int32_t>(batch, static_cast<int32_t>(frames)))}};
  size_t free_before = 0, free_after = 0, total = 0;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_EQ(cudaMemGetInfo(&free_before, &total), cudaSuccess);
  auto context = engine.createContext();
  context.run(inputs);
  ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
  const size_t used = free_before - free_after;
  // Everything else (activations, cuDNN and cuBLASLt workspaces) is well under two projections.
  EXPECT_LT(used, 3 * projection) << "context uses " << used / 1048576 << " MiB";
}

// ---- LayerNorm against the CPU backend ------------------------------------------------------

class CudaLayerNorm : public testing::TestWithParam<std::tuple<int, bool, Precision>> {};

TEST_P(CudaLayerNorm, MatchesCpu) {
  REQUIRE_GPU();
  const auto [features, masked, precision] = GetParam();
  std::mt19937 rng(7);
  const int time = 9, batch = 3;
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", features);
  const Tensor lengths = net.addLengthsInput("lengths");
  const LayerNormDesc ln{randomTensor({features}, rng), randomTensor({features}, rng), 1e-5f};
  const Tensor seq = masked ? net.addLayerNorm("ln_seq", x, lengths, ln) : net.addLayerNorm("ln_seq", x, ln);
  net.markOutput(seq, "seq");
  const Tensor bm = net.addBatchMajor("bm", x);
  net.markOutput(masked ? net.addLayerNorm("ln_bm", bm, lengths, ln) : net.addLayerNorm("ln_bm", bm, ln), "bm_out");
  const std::map<std::string, HostTensor> inputs{{"x", randomTensor({time, batch, features}, rng, 3.0f)},
                                                 {"lengths", HostTensor::fromInts({batch}, {9, 4, 1})}};
  const auto expected = Builder().build(net).createContext().run(inputs);
  const auto got = Builder({.device = Device::kCUDA, .precision = precision}).build(net).createContext().run(inputs);
  for (const char* name : {"seq", "bm_out"}) {
    ASSERT_EQ(got.at(name).shape(), expected.at(name).shape());
    EXPECT_LT(relativeL2(toVector(got.at(name)), toVector(expected.at(name))), tolerance(precision)) << name;
  }
  if (masked)  // frame 5 of the utterance of length 4 (sequence layout)
    for (int f = 0; f < features; ++f) EXPECT_EQ(got.at("seq").data<float>()[(5 * batch + 1) * features + f], 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Layers, CudaLayerNorm,
                         testing::Combine(testing::Values(5, 33, 700), testing::Bool(),
                                          testing::Values(Precision::kFP32, Precision::kFP16, Precision::kBF16)),
                         [](const auto& info) {
                           return cat("h", std::get<0>(info.param), std::get<1>(info.param) ? "_masked_" : "_",
                                      toString(std::get<2>(info.param)));
                         });

// ---- PaddleSpeech fixtures against Paddle -------------------------------------------------------

class CudaPaddle : public testing::TestWithParam<std::tuple<std::string, Precision>> {};

TEST_P(CudaPaddle, MatchesPaddle) {
  REQUIRE_GPU();
  const auto& [name, precision] = GetParam();
  const ImportedNetwork imported = importNetwork(dataPath("paddle/" + name + "/model.pdparams"));
  const WeightStore io = WeightStore::load(dataPath("paddle/" + name + "/io.safetensors"));
  const HostTensor& full = io.get("input");  // N x 1 x 13 x T; the model reads the first 11 bins
  const int64_t n = full.dim(0), d = full.dim(2), t = full.dim(3), bins = imported.network.shape(Tensor{0})[2];
  HostTensor input(DataType::kFloat32, {n, 1, bins, t});
  for (int64_t b = 0; b < n; ++b)
    for (int64_t f = 0; f < bins * t; ++f) input.mutableData<float>()[b * bins * t + f] = full.data<float>()[b * d * t + f];
  const Engine engine = Builder({.device = Device::kCUDA, .precision = precision}).build(imported.network);
  auto out = engine.createContext().run({{"features", input}, {"lengths", io.get("input_lengths")}});
  const HostTensor& lengths = out.at("output_lengths");
  ASSERT_EQ(toVector(lengths), toVector(io.get("output_lengths")));
  EXPECT_LT(relativeL2(validFrames(out.at("probs"), lengths), validFrames(io.get("probs"), lengths)), tolerance(precision))
      << name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaPaddle,
                         testing::Combine(testing::Values("offline_bigru", "online_lstm"),
                                          testing::Values(Precision::kFP32, Precision::kTF32, Precision::kFP16,
                                                          Precision::kBF16)),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + toString(std::get<1>(info.param)); });

// tf32 must really run on the tensor cores (its inputs rounded to 10-bit mantissas: errors around
// 1e-4..1e-3 where exact fp32 stays near 1e-7), and fp32 must stay exact; the plan keeps it.
TEST(CudaEngine, Tf32IsUsedAndRecorded) {
  REQUIRE_GPU();
  std::mt19937 rng(11);
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", 512);
  FullyConnectedDesc fc{.out_features = 256, .weight = randomTensor({256, 512}, rng, 0.05f),
                        .bias = randomTensor({256}, rng)};
  net.markOutput(net.addFullyConnected("fc", x, std::move(fc)), "y");
  const std::map<std::string, HostTensor> inputs{{"x", randomTensor({7, 5, 512}, rng)}};
  const auto want = toVector(Builder().build(net).createContext().run(inputs).at("y"));
  const auto error = [&](Precision p) {
    const Engine engine = Builder({.device = Device::kCUDA, .precision = p}).build(net);
    return relativeL2(toVector(engine.createContext().run(inputs).at("y")), want);
  };
  const double exact = error(Precision::kFP32), tf32 = error(Precision::kTF32);
  EXPECT_LT(exact, 1e-6);
  EXPECT_GT(tf32, 1e-5) << "tf32 gave fp32's accuracy: the tensor cores were not used";
  EXPECT_LT(tf32, 1e-2);
  const Engine built = Builder({.device = Device::kCUDA, .precision = Precision::kTF32}).build(net);
  EXPECT_EQ(Engine::deserialize(built.serialize(), "tf32.plan").config().precision, Precision::kTF32);
}

// A tf32 layer whose recurrent weights exceed what fp16 holds keeps fp32 products on chip.
TEST(CudaEngine, Tf32KeepsFp32ProductsWhenRDoesNotFitFp16) {
  REQUIRE_GPU();
  std::mt19937 rng(12);
  NetworkDefinition net;
  const Tensor x = net.addSequenceInput("x", 16);
  const Tensor lengths = net.addLengthsInput("lengths");
  RNNDesc desc{.cell = RNNCell::kLSTM, .hidden_size = 32, .num_layers = 1, .direction = RNNDirection::kBidirectional};
  for (int d = 0; d < 2; ++d) {
    HostTensor recurrent = randomTensor({128, 32}, rng, 0.1f);
    if (d == 1) recurrent.mutableData<float>()[5] = 1e5f;  // one weight beyond fp16's 65504
    desc.setWeights(0, d, GateLayout::kCanonical, randomTensor({128, 16}, rng, 0.1f), recurrent, randomTensor({128}, rng),
                    randomTensor({128}, rng));
  }
  net.markOutput(net.addRNN("rnn", x, lengths, std::move(desc)), "y");
  const Engine gpu = Builder({.device = Device::kCUDA, .precision = Precision::kTF32}).build(net);
  EXPECT_EQ(gpu.describe().find("fp16"), std::string::npos) << gpu.describe();
  const std::map<std::string, HostTensor> inputs{{"x", randomTensor({9, 2, 16}, rng)},
                                                 {"lengths", HostTensor::fromInts({2}, {9, 4})}};
  const auto want = toVector(Builder().build(net).createContext().run(inputs).at("y"));
  EXPECT_LT(relativeL2(toVector(gpu.createContext().run(inputs).at("y")), want), 1e-2);
}

TEST(CudaEngine, BadPrecisionOnCpuIsAnError) {
  EXPECT_THROW(Builder({.device = Device::kCPU, .precision = Precision::kFP16}).build(NetworkDefinition()), Error);
}

}  // namespace
}  // namespace ds2rt::test
