#include "common.h"

#include <cstring>
#include <fstream>

#include "ds2rt/deepspeech2.h"
#include "ds2rt/importers.h"

namespace ds2rt::tools {

BuilderConfig BuildOptions::config() const {
  return {deviceFromString(device), precisionFromString(precision), !no_optimize};
}

void addBuildOptions(CLI::App& command, BuildOptions& options) {
  command.add_option("--device", options.device, "cpu (cuda in builds with the CUDA backend)")->capture_default_str();
  command.add_option("--precision", options.precision, "cpu: fp32 | bf16 (AVX512_BF16) | int8 (AVX512_VNNI); cuda: fp32 | tf32 | fp16 | bf16")->capture_default_str();
  command.add_flag("--no-optimize", options.no_optimize, "skip graph passes (folding, fusion); for debugging");
  command.add_flag("--log-probs", options.log_probs, "output log-probabilities instead of probabilities");
}

bool isPlanFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  return in.gcount() == 8 && std::memcmp(magic, "DS2RTPLN", 8) == 0;
}

Engine openEngine(const std::string& path, const BuildOptions& options) {
  if (isPlanFile(path)) return Engine::load(path);
  ImportedNetwork imported = importNetwork(path, {}, {.log_softmax = options.log_probs});  // any importable file
  return Builder(options.config()).build(std::move(imported.network));
}

}  // namespace ds2rt::tools
