// ds2rt run MODEL|PLAN -i FEATURES [-o OUTPUTS]
#include <chrono>
#include <iostream>

#include "common.h"
#include "ds2rt/error.h"
#include "ds2rt/weights.h"
#include "npy.h"

namespace ds2rt::tools {

namespace {

// Features from .safetensors (tensors named as the engine's inputs) or .npy (one array: the
// features; lengths default to the full extent).
std::map<std::string, HostTensor> readInputs(const std::string& path, const Engine& engine) {
  std::map<std::string, HostTensor> inputs;
  if (path.ends_with(".npy")) {
    HostTensor features = readNpy(path).toFloat32();
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

}  // namespace

void addRunCommand(CLI::App& app) {
  struct Args {
    std::string file, input, output;
    int threads = 0;
    BuildOptions options;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("run", "Run a model or plan on a feature file");
  cmd->add_option("file", args->file, "model or plan file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-i,--input", args->input, "features: .safetensors ('features', optional 'lengths') or .npy")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", args->output, "write all outputs to this .safetensors file");
  cmd->add_option("-t,--threads", args->threads, "CPU threads (0: all cores)")->capture_default_str();
  addBuildOptions(*cmd, args->options);
  cmd->callback([args] {
    const Engine engine = openEngine(args->file, args->options);
    auto ctx = engine.createContext({.num_threads = args->threads});
    const auto inputs = readInputs(args->input, engine);
    const auto start = std::chrono::steady_clock::now();
    const auto outputs = ctx.run(inputs);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    for (const auto& [name, t] : outputs) std::cout << name << " " << toString(t.shape()) << "\n";
    std::cout << "ran in " << ms << " ms\n";
    if (!args->output.empty()) {
      WeightStore out;
      for (const auto& [name, t] : outputs) out.set(name, t);
      out.save(args->output);
      std::cout << "wrote " << args->output << "\n";
    }
  });
}

}  // namespace ds2rt::tools
