// The engine plus what transcription needs beyond it: the labels and spectrogram settings.
#pragma once

#include <string>

#include "common.h"
#include "ds2rt/deepspeech2.h"

namespace ds2rt::tools {

struct TranscriptionModel {
  Engine engine;
  DeepSpeech2Config config;  // labels and spect settings (the architecture fields are unused for plans)
  std::string path;
};

// A model file of any format importNetwork reads is built with `options`. A plan holds no labels
// or spectrogram settings: they come from `config_path` (the model file or JSON config the plan
// was built from) or else from PLAN_STEM.safetensors or PLAN_STEM.json beside the plan.
TranscriptionModel openTranscriptionModel(const std::string& path, const std::string& config_path,
                                          const BuildOptions& options);

}  // namespace ds2rt::tools
