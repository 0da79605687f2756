// What the ds2rt subcommands share: build options and opening a model or plan file.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "ds2rt/builder.h"
#include "ds2rt/engine.h"

namespace ds2rt::tools {

struct BuildOptions {
  std::string device = "cpu";
  std::string precision = "fp32";
  bool no_optimize = false;
  bool log_probs = false;
  BuilderConfig config() const;
};

void addBuildOptions(CLI::App& command, BuildOptions& options);
bool isPlanFile(const std::string& path);
// A plan is loaded; a model is built with `options`.
Engine openEngine(const std::string& path, const BuildOptions& options);

// Each subcommand registers itself on the app; its callback does the work and may throw.
void addBuildCommand(CLI::App& app);
void addInspectCommand(CLI::App& app);
void addRunCommand(CLI::App& app);
void addBenchCommand(CLI::App& app);
void addConvertCommand(CLI::App& app);
void addTranscribeCommand(CLI::App& app);
void addEvalCommand(CLI::App& app);
void addLmCommand(CLI::App& app);

}  // namespace ds2rt::tools
