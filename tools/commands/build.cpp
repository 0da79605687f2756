// ds2rt build MODEL -o PLAN
#include <chrono>
#include <iostream>

#include "common.h"

namespace ds2rt::tools {

void addBuildCommand(CLI::App& app) {
  struct Args {
    std::string model, plan;
    BuildOptions options;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("build", "Build an optimised engine from a model and save it as a plan file");
  cmd->add_option("model", args->model, "model: ds2rt .safetensors or .json config, or a PyTorch checkpoint (.pth, .pt, .ckpt)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", args->plan, "plan file to write")->required();
  addBuildOptions(*cmd, args->options);
  cmd->callback([args] {
    const auto start = std::chrono::steady_clock::now();
    const Engine engine = openEngine(args->model, args->options);
    engine.save(args->plan);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const auto& line : engine.buildReport()) std::cout << "  " << line << "\n";
    std::cout << "wrote " << args->plan << " (" << engine.config().toString() << ") in " << seconds << " s\n";
  });
}

}  // namespace ds2rt::tools
