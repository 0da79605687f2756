// ds2rt bench: latency and throughput of a model, plan or random DeepSpeech2 architecture, in the
// spirit of trtexec. Prints a table and, with --json, one JSON object per measurement.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "common.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "gpu_memory.h"

namespace ds2rt::tools {

namespace {

struct BenchArgs {
  std::string file;
  std::string arch = "lstm_bi";
  int hidden = 1024, layers = 5, context = 20;
  std::string batches = "1,8,32";
  double seconds = 10;
  int new_lengths = 0;
  int warmup = 3, iterations = 20, threads = 0;
  bool profile = false, no_graphs = false;
  std::string json;
  BuildOptions options;
};

DeepSpeech2Config architecture(const BenchArgs& a) {
  DeepSpeech2Config c;
  const auto underscore = a.arch.find('_');
  check(underscore != std::string::npos, "--arch must look like lstm_bi, gru_uni or rnn_bi, got '", a.arch, "'");
  c.rnn_type = a.arch.substr(0, underscore);
  const std::string direction = a.arch.substr(underscore + 1);
  check(direction == "bi" || direction == "uni", "--arch direction must be bi or uni, got '", direction, "'");
  c.bidirectional = direction == "bi";
  c.hidden_size = a.hidden;
  c.hidden_layers = a.layers;
  c.lookahead_context = a.context;
  for (const char* l : {"_", "'"}) c.labels.emplace_back(l);
  for (char ch = 'A'; ch <= 'Z'; ++ch) c.labels.emplace_back(1, ch);
  c.labels.emplace_back(" ");
  return c;
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

std::vector<int> parseList(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    try {
      out.push_back(std::stoi(item));
    } catch (const std::exception&) {
      fail("--batch: '", item, "' is not a number");
    }
    check(out.back() > 0, "--batch sizes must be positive");
  }
  return out;
}

// Normal random features for `batch` utterances of `frames` frames each.
HostTensor randomFeatures(int batch, int64_t bins, int frames, std::mt19937& rng, std::normal_distribution<float>& normal) {
  HostTensor features(DataType::kFloat32, {batch, 1, bins, frames});
  for (float& x : std::span<float>(features.mutableData<float>(), static_cast<size_t>(features.size()))) x = normal(rng);
  return features;
}

// The context's inputs: these features, every utterance as long as they are.
void setInputs(ExecutionContext& ctx, const HostTensor& features) {
  const auto batch = static_cast<int>(features.dim(0));
  ctx.setInput("features", features);
  ctx.setInput("lengths", HostTensor::fromInts({batch}, std::vector<int32_t>(batch, static_cast<int32_t>(features.dim(3)))));
}

void bench(const BenchArgs& a) {
  std::string name = a.arch;
  Engine engine = a.file.empty()
                      ? Builder(a.options.config()).build(DeepSpeech2Model::withRandomWeights(architecture(a)).createNetwork())
                      : openEngine(a.file, a.options);
  if (!a.file.empty()) name = a.file;
  const int frames = static_cast<int>(a.seconds * 100);  // 10 ms hop
  const int64_t bins = engine.tensorShape("features")[2];  // N x 1 x bins x T
  std::ofstream json;
  if (!a.json.empty()) json.open(a.json);
  std::cout << "ds2rt bench: " << name << " (" << engine.config().toString() << "), " << a.seconds << " s utterances\n";
  std::printf("%6s %12s %10s %10s %12s %14s %12s\n", "batch", "median ms", "p90 ms", "p99 ms", "+input ms",
              "audio-s/s", "GPU MiB");
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (int batch : parseList(a.batches)) {
    const size_t memory_before = gpuMemoryUsed();
    ExecutionContext ctx =
        engine.createContext({.num_threads = a.threads, .cuda_graphs = !a.no_graphs, .profile = false});
    const HostTensor features = randomFeatures(batch, bins, frames, rng, normal);
    setInputs(ctx, features);
    // The first run of a context at a new shape pays its one-time set-up (the CUDA convolutions'
    // algorithm search, scratch memory, CPU kernels' first use); the warm-up runs are not timed.
    double first_ms = -1;
    std::vector<double> compute, input;
    for (int i = 0; i < a.warmup + a.iterations; ++i) {
      ctx.run();
      if (i == 0) first_ms = ctx.lastRunStats().compute_ms;
      if (i < a.warmup) continue;
      compute.push_back(ctx.lastRunStats().compute_ms);
      input.push_back(ctx.lastRunStats().input_ms);
    }
    const double median = percentile(compute, 0.5), throughput = batch * a.seconds / (median / 1e3);
    const double memory = (gpuMemoryUsed() - memory_before) / 1048576.0;
    std::printf("%6d %12.3f %10.3f %10.3f %12.3f %14.1f %12.0f\n", batch, median, percentile(compute, 0.9),
                percentile(compute, 0.99), percentile(input, 0.5), throughput, memory);
    nlohmann::json row = {{"engine", "ds2rt"}, {"model", name}, {"device", toString(engine.config().device)},
                          {"dtype", toString(engine.config().precision)}, {"batch", batch}, {"secs", a.seconds},
                          {"latency_ms", median}, {"p90_ms", percentile(compute, 0.9)},
                          {"p99_ms", percentile(compute, 0.99)}, {"input_ms", percentile(input, 0.5)},
                          {"audio_s_per_s", throughput}, {"gpu_mib", memory}};
    row["first_run_ms"] = first_ms;
    if (a.new_lengths > 0) {
      // Each a length this context has not met, run once: what a server pays when every request
      // brings a new utterance length. 3, 6, 9, ... frames above and below the benchmark's length in
      // turn, so that their median time compares with the median above.
      std::vector<double> fresh;
      for (int i = 1; i <= a.new_lengths; ++i) {
        const int step = 3 * ((i + 1) / 2);
        int length = i % 2 == 1 ? frames + step : frames - step;
        if (length < 1) length = frames + 3 * a.new_lengths + i;  // a short benchmark: above only
        setInputs(ctx, randomFeatures(batch, bins, length, rng, normal));
        ctx.run();
        fresh.push_back(ctx.lastRunStats().compute_ms);
      }
      std::printf("%6s first run %.3f ms; a new length (%d, each run once): median %.3f ms, max %.3f ms\n", "",
                  first_ms, a.new_lengths, percentile(fresh, 0.5), percentile(fresh, 1.0));
      row["new_length_ms"] = percentile(fresh, 0.5);
      row["new_length_max_ms"] = percentile(fresh, 1.0);
    }
    if (a.profile) {
      ExecutionContext profiled = engine.createContext({.num_threads = a.threads, .profile = true});
      setInputs(profiled, features);
      profiled.run();
      profiled.run();
      for (const auto& t : profiled.layerTimings()) {
        std::printf("         %-28s %-18s %10.3f ms\n", t.layer.c_str(), t.kind.c_str(), t.milliseconds);
        row["layers"][t.layer] = t.milliseconds;
      }
    }
    if (json) json << row.dump() << "\n";
  }
}

}  // namespace

void addBenchCommand(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Measure latency and throughput (model, plan, or a random architecture)");
  cmd->add_option("file", a->file, "model or plan file (default: random weights of --arch)")->check(CLI::ExistingFile);
  cmd->add_option("--arch", a->arch, "random DeepSpeech2: lstm_bi, gru_bi, rnn_bi, lstm_uni, gru_uni, rnn_uni")
      ->capture_default_str();
  cmd->add_option("--hidden", a->hidden, "hidden size of the random architecture")->capture_default_str();
  cmd->add_option("--layers", a->layers, "recurrent layers of the random architecture")->capture_default_str();
  cmd->add_option("--context", a->context, "lookahead context of unidirectional random models")->capture_default_str();
  cmd->add_option("-b,--batch", a->batches, "batch sizes, comma separated")->capture_default_str();
  cmd->add_option("-s,--seconds", a->seconds, "utterance length in seconds (100 frames a second)")->capture_default_str();
  cmd->add_option("--new-lengths", a->new_lengths,
                  "then run this many lengths the context has not met, once each (a server's new utterance lengths)")
      ->check(CLI::Range(0, 1000));
  cmd->add_option("--warmup", a->warmup, "untimed runs first")->capture_default_str();
  cmd->add_option("-n,--iterations", a->iterations, "timed runs")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "CPU threads (0: all cores)")->capture_default_str();
  cmd->add_flag("--profile", a->profile, "also print the time of every layer");
  cmd->add_flag("--no-graphs", a->no_graphs, "CUDA: launch kernels one by one instead of replaying a graph");
  cmd->add_option("--json", a->json, "write one JSON line per measurement to this file");
  addBuildOptions(*cmd, a->options);
  cmd->callback([a] { bench(*a); });
}

}  // namespace ds2rt::tools
