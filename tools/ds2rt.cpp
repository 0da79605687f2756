// ds2rt: the command-line program. Each subcommand (tools/commands/) is a thin layer over the
// public API.
#include <malloc.h>

#include <iostream>

#include "common.h"

int main(int argc, char** argv) {
  // A fixed threshold for glibc's mmap'ed allocations. oneDNN's sgemm allocates and frees a pack
  // buffer of several MiB on every call; glibc's default (a threshold that rises to the largest
  // block freed) then serves those from the heap, whose pages stay resident: +26 MiB of peak
  // memory on a 1024-unit model at 20 s, for no speed (measured: none lost).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
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
