// One Engine, several ExecutionContexts running at the same time in their own threads: each
// gives exactly (bit for bit) what a single-threaded run gives on the same input.
#include <gmock/gmock.h>

#include <atomic>
#include <optional>
#include <cstring>
#include <thread>

#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using Inputs = std::map<std::string, HostTensor>;
using Outputs = std::map<std::string, HostTensor>;

// Inputs of different batch sizes and lengths, made from a fixture's batch: some reorder or drop
// utterances, some scale the features, so that every job's output differs from the others'.
std::vector<Inputs> makeJobs(const WeightStore& io, int count) {
  const HostTensor& input = io.get("input");
  const HostTensor& lengths = io.get("input_lengths");
  const int64_t n = input.dim(0), bins = input.dim(2), t = input.dim(3);
  std::vector<Inputs> jobs;
  for (int j = 0; j < count; ++j) {
    const int64_t batch = 1 + j % n;
    const int64_t width = t - 2 * (j % 3);  // different padded time extents
    HostTensor x(DataType::kFloat32, {batch, 1, bins, width});
    std::vector<int32_t> lens;
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t src = (b + j) % n;
      lens.push_back(std::min<int32_t>(lengths.data<int32_t>()[src], static_cast<int32_t>(width)));
      const float scale = 1.0f + 0.1f * static_cast<float>(j);
      for (int64_t k = 0; k < bins; ++k)
        for (int64_t s = 0; s < width; ++s)
          x.mutableData<float>()[(b * bins + k) * width + s] = scale * input.data<float>()[(src * bins + k) * t + s];
    }
    jobs.push_back({{"features", x}, {"lengths", HostTensor::fromInts({batch}, lens)}});
  }
  return jobs;
}

bool bitIdentical(const Outputs& a, const Outputs& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a) {
    const auto it = b.find(name);
    if (it == b.end() || it->second.shape() != t.shape() || it->second.dtype() != t.dtype()) return false;
    if (std::memcmp(t.data(), it->second.data(), t.bytes()) != 0) return false;
  }
  return true;
}

class Concurrency : public testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(Concurrency, ContextsOfOneEngineInParallelThreads) {
  const auto& [name, threads] = GetParam();
  const auto model = DeepSpeech2Model::load(dataPath("parity/" + name + "/model.safetensors"));
  const WeightStore io = WeightStore::load(dataPath("parity/" + name + "/io.safetensors"));
  const Engine engine = Builder().build(model.createNetwork());
  const int jobs_per_thread = 2;
  const std::vector<Inputs> jobs = makeJobs(io, threads * jobs_per_thread);

  // Reference: one context, one thread, one job after another.
  std::vector<Outputs> expected;
  {
    auto ctx = engine.createContext({.num_threads = 1});
    for (const auto& job : jobs) expected.push_back(ctx.run(job));
  }
  // The jobs really differ, so a context reading another's data would be noticed.
  for (size_t j = 1; j < jobs.size(); ++j) ASSERT_FALSE(bitIdentical(expected[j], expected[0])) << j;

  const int iterations = 10;
  std::atomic<int> mismatches{0}, errors{0}, runs{0};
  std::vector<std::string> messages(threads);
  std::atomic<int> ready{0};
  std::vector<std::thread> pool;
  for (int k = 0; k < threads; ++k)
    pool.emplace_back([&, k] {
      try {
        auto ctx = engine.createContext({.num_threads = 1});
        ++ready;
        while (ready.load() < threads) std::this_thread::yield();  // start together
        for (int it = 0; it < iterations; ++it)
          for (int j = 0; j < jobs_per_thread; ++j) {
            // Each thread walks its own jobs in an order that changes every iteration.
            const int job = k * jobs_per_thread + (j + it) % jobs_per_thread;
            if (!bitIdentical(ctx.run(jobs[job]), expected[job])) {
              ++mismatches;
              messages[k] = cat("thread ", k, " iteration ", it, " job ", job, " differs");
            }
            ++runs;
          }
      } catch (const std::exception& e) {
        ++errors;
        messages[k] = e.what();
      }
    });
  for (auto& t : pool) t.join();
  for (const auto& m : messages)
    if (!m.empty()) ADD_FAILURE() << m;
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(runs.load(), threads * iterations * jobs_per_thread);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Concurrency,
                         testing::Combine(testing::Values("lstm_bi_l2_h32", "gru_uni_l1_h24_ctx2"), testing::Values(2, 4)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::to_string(std::get<1>(info.param)) + "_threads";
                         });

// All threads run the same input through their own contexts at the same time.
TEST(SharedEngine, SameInputInEveryThread) {
  const auto model = DeepSpeech2Model::load(dataPath("parity/rnn_uni_l3_h16_ctx4/model.safetensors"));
  const WeightStore io = WeightStore::load(dataPath("parity/rnn_uni_l3_h16_ctx4/io.safetensors"));
  const Engine engine = Builder().build(model.createNetwork());
  const Inputs job{{"features", io.get("input")}, {"lengths", io.get("input_lengths")}};
  const Outputs expected = engine.createContext({.num_threads = 1}).run(job);
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int k = 0; k < 4; ++k)
    pool.emplace_back([&] {
      try {
        auto ctx = engine.createContext({.num_threads = 1});
        for (int it = 0; it < 8; ++it)
          if (!bitIdentical(ctx.run(job), expected)) ++failures;
      } catch (const std::exception&) {
        ++failures;
      }
    });
  for (auto& t : pool) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// A context keeps the engine alive, and the outputs of run() are copies that outlive the next run.
TEST(SharedEngine, ContextOutlivesEngineAndOutputsAreCopies) {
  const auto model = DeepSpeech2Model::load(dataPath("parity/gru_uni_l1_h24_ctx2/model.safetensors"));
  const WeightStore io = WeightStore::load(dataPath("parity/gru_uni_l1_h24_ctx2/io.safetensors"));
  const std::vector<Inputs> jobs = makeJobs(io, 2);
  std::optional<ExecutionContext> ctx;
  Outputs first;
  {
    const Engine engine = Builder().build(model.createNetwork());
    ctx.emplace(engine.createContext({.num_threads = 1}));
    first = engine.createContext({.num_threads = 1}).run(jobs[0]);
  }
  const Outputs a = ctx->run(jobs[0]);
  EXPECT_TRUE(bitIdentical(a, first));
  const Outputs b = ctx->run(jobs[1]);
  EXPECT_FALSE(bitIdentical(b, first));
  EXPECT_TRUE(bitIdentical(a, first));  // unchanged by the second run
}

}  // namespace
}  // namespace ds2rt::test

namespace ds2rt::test {
namespace {

// One context used from a different thread each run (as a thread pool or Python would do).
TEST(Concurrency, OneContextMovesBetweenThreads) {
  const auto model = DeepSpeech2Model::load(dataPath("parity/lstm_bi_l2_h32/model.safetensors"));
  const auto io = WeightStore::load(dataPath("parity/lstm_bi_l2_h32/io.safetensors"));
  const Engine engine = Builder().build(model.createNetwork());
  const std::map<std::string, HostTensor> inputs{{"features", io.get("input")}, {"lengths", io.get("input_lengths")}};
  auto ctx = engine.createContext();
  const auto reference = toVector(ctx.run(inputs).at("probs"));
  for (int round = 0; round < 3; ++round) {
    std::vector<float> got;
    std::thread([&] { got = toVector(ctx.run(inputs).at("probs")); }).join();
    EXPECT_EQ(got, reference) << "round " << round;
  }
}

}  // namespace
}  // namespace ds2rt::test
