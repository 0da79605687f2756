// ds2rt: the command-line program. Each subcommand is a thin layer over the public API.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>

#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "npy.h"

namespace {

using namespace ds2rt;

bool isPlanFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  return in.gcount() == 8 && std::memcmp(magic, "DS2RTPLN", 8) == 0;
}

struct BuildOptions {
  std::string device = "cpu", precision = "fp32";
  bool no_optimize = false, log_probs = false;
  BuilderConfig config() const {
    return {deviceFromString(device), precisionFromString(precision), !no_optimize};
  }
};

void addBuildOptions(CLI::App& cmd, BuildOptions& o) {
  cmd.add_option("--device", o.device, "cpu (cuda in builds with the CUDA backend)")->capture_default_str();
  cmd.add_option("--precision", o.precision, "fp32 | fp16 | bf16")->capture_default_str();
  cmd.add_flag("--no-optimize", o.no_optimize, "skip graph passes (folding, fusion); for debugging");
  cmd.add_flag("--log-probs", o.log_probs, "output log-probabilities instead of probabilities");
}

// A model file or a plan file, whichever `path` is.
Engine engineFor(const std::string& path, const BuildOptions& o) {
  if (isPlanFile(path)) return Engine::load(path);
  const DeepSpeech2Model model = DeepSpeech2Model::load(path);
  return Builder(o.config()).build(model.createNetwork({.log_softmax = o.log_probs}));
}

int build(const std::string& model_path, const std::string& plan_path, const BuildOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const Engine engine = engineFor(model_path, o);
  engine.save(plan_path);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& line : engine.buildReport()) std::cout << "  " << line << "\n";
  std::cout << "wrote " << plan_path << " (" << engine.config().toString() << ") in " << seconds << " s\n";
  return 0;
}

int inspect(const std::string& path, const BuildOptions& o) {
  if (!isPlanFile(path)) {
    const DeepSpeech2Model model = DeepSpeech2Model::load(path);
    const auto& c = model.config();
    std::cout << "DeepSpeech2 model " << path << "\n  " << c.rnn_type << ", " << c.hidden_layers << " layers of "
              << c.hidden_size << ", " << (c.bidirectional ? "bidirectional" : "unidirectional");
    if (!c.bidirectional) std::cout << ", lookahead context " << c.lookahead_context;
    std::cout << ", " << c.labels.size() << " labels, " << c.spect.sample_rate << " Hz, " << c.spect.frequencyBins()
              << " frequency bins\n\nnetwork as defined:\n"
              << model.createNetwork({.log_softmax = o.log_probs}).describe() << "\nas built:\n";
  }
  const Engine engine = engineFor(path, o);
  std::cout << engine.describe() << "\nbuild report:\n";
  for (const auto& line : engine.buildReport()) std::cout << "  " << line << "\n";
  return 0;
}

// Features from .safetensors (tensors named as the engine's inputs) or .npy (one array: the
// features; lengths default to the full extent).
std::map<std::string, HostTensor> readInputs(const std::string& path, const Engine& engine) {
  std::map<std::string, HostTensor> inputs;
  if (path.ends_with(".npy")) {
    HostTensor features = tools::readNpy(path).toFloat32();
    if (features.rank() == 2) features = features.reshaped({1, 1, features.dim(0), features.dim(1)});  // F x T
    check(features.rank() == 4, "'", path, "': features must be F x T or N x 1 x F x T, got ",
          toString(features.shape()));
    inputs["features"] = features;
  } else {
    const WeightStore store = WeightStore::load(path);
    for (const auto& name : engine.inputNames())
      if (store.contains(name)) inputs[name] = store.get(name);
    check(inputs.count("features"), "'", path, "' has no tensor 'features' (N x 1 x F x T)");
  }
  if (!inputs.count("lengths")) {
    const HostTensor& f = inputs["features"];
    inputs["lengths"] = HostTensor::fromInts({f.dim(0)}, std::vector<int32_t>(f.dim(0), static_cast<int32_t>(f.dim(3))));
  }
  return inputs;
}

int run(const std::string& path, const std::string& input, const std::string& output, int threads,
        const BuildOptions& o) {
  const Engine engine = engineFor(path, o);
  auto ctx = engine.createContext({.num_threads = threads});
  const auto inputs = readInputs(input, engine);
  const auto start = std::chrono::steady_clock::now();
  const auto outputs = ctx.run(inputs);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  for (const auto& [name, t] : outputs) std::cout << name << " " << toString(t.shape()) << "\n";
  std::cout << "ran in " << ms << " ms\n";
  if (!output.empty()) {
    WeightStore out;
    for (const auto& [name, t] : outputs) out.set(name, t);
    out.save(output);
    std::cout << "wrote " << output << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ds2rt: fast DeepSpeech2 inference from any framework, on CPU and NVIDIA GPUs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ds2rt 0.1.0");

  BuildOptions options;
  std::string model, plan, input, output;
  int threads = 0;

  auto* build_cmd = app.add_subcommand("build", "Build an optimised engine from a model and save it as a plan file");
  build_cmd->add_option("model", model, "model: .safetensors with ds2rt.config metadata, or a .json config")
      ->required()
      ->check(CLI::ExistingFile);
  build_cmd->add_option("-o,--output", plan, "plan file to write")->required();
  addBuildOptions(*build_cmd, options);

  auto* inspect_cmd = app.add_subcommand("inspect", "Show a model's or plan's layers, shapes, parameters and fusions");
  inspect_cmd->add_option("file", model, "model or plan file")->required()->check(CLI::ExistingFile);
  addBuildOptions(*inspect_cmd, options);

  auto* run_cmd = app.add_subcommand("run", "Run a model or plan on a feature file");
  run_cmd->add_option("file", model, "model or plan file")->required()->check(CLI::ExistingFile);
  run_cmd->add_option("-i,--input", input, "features: .safetensors ('features', optional 'lengths') or .npy")
      ->required()
      ->check(CLI::ExistingFile);
  run_cmd->add_option("-o,--output", output, "write all outputs to this .safetensors file");
  run_cmd->add_option("-t,--threads", threads, "CPU threads (0: all cores)")->capture_default_str();
  addBuildOptions(*run_cmd, options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit 2, as other Unix tools do
  }
  try {
    if (*build_cmd) return build(model, plan, options);
    if (*inspect_cmd) return inspect(model, options);
    if (*run_cmd) return run(model, input, output, threads, options);
  } catch (const std::exception& e) {
    std::cerr << "ds2rt: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
