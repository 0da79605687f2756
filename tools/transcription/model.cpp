#include "transcription/model.h"

#include <filesystem>

#include "ds2rt/error.h"
#include "ds2rt/importers.h"

namespace ds2rt::tools {

namespace fs = std::filesystem;

namespace {

std::string configBesidePlan(const std::string& plan) {
  for (const char* ext : {".safetensors", ".json"}) {
    const fs::path candidate = fs::path(plan).replace_extension(ext);
    if (fs::is_regular_file(candidate)) return candidate.string();
  }
  fail("plan '", plan, "' holds no labels or spectrogram settings (built from a model without labels, or by a "
       "ds2rt before 2026-12): pass --config with the model file or JSON "
       "config it was built from (or put ", fs::path(plan).replace_extension(".safetensors").string(), " beside it)");
}

}  // namespace

TranscriptionModel openTranscriptionModel(const std::string& path, const std::string& config_path,
                                          const BuildOptions& options) {
  if (isPlanFile(path)) {
    Engine engine = Engine::load(path);
    if (!config_path.empty()) return {std::move(engine), DeepSpeech2Model::load(config_path).config(), path};
    if (auto config = transcriptionConfigFromMetadata(engine.metadata(), path))
      return {std::move(engine), std::move(*config), path};
    return {std::move(engine), DeepSpeech2Model::load(configBesidePlan(path)).config(), path};
  }
  ImportedNetwork imported = importNetwork(path, {}, {.log_softmax = options.log_probs});
  check(!imported.labels.empty(), "'", path, "' (", imported.format,
        ") does not say which labels its outputs stand for; convert it to a ds2rt model with --labels");
  DeepSpeech2Config config;
  config.labels = std::move(imported.labels);
  if (imported.spect_known) config.spect = imported.spect;
  Engine engine = Builder(options.config()).build(std::move(imported.network));
  return {std::move(engine), std::move(config), path};
}

}  // namespace ds2rt::tools
