// ds2rt: the command-line program. Each subcommand (tools/commands/) is a thin layer over the
// public API.
#include <iostream>

#include "common.h"

int main(int argc, char** argv) {
  CLI::App app{"ds2rt: fast DeepSpeech2 inference from any framework, on CPU and NVIDIA GPUs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ds2rt 0.1.0");
  ds2rt::tools::addBuildCommand(app);
  ds2rt::tools::addInspectCommand(app);
  ds2rt::tools::addRunCommand(app);
  ds2rt::tools::addBenchCommand(app);
  ds2rt::tools::addConvertCommand(app);
  ds2rt::tools::addTranscribeCommand(app);
  ds2rt::tools::addEvalCommand(app);
  ds2rt::tools::addLmCommand(app);
  try {
    app.parse(argc, argv);  // runs the chosen subcommand's callback
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit 2, as other Unix tools do
  } catch (const std::exception& e) {
    std::cerr << "ds2rt: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
