// The model shipped in the repository's models/ folder, used when no model is named: where
// `ds2rt transcribe` and ds2rt.transcribe() look for it, in one place.
#pragma once

#include <string>
#include <vector>

namespace ds2rt {

// The file names in models/ (change them here only).
inline constexpr const char* kBundledModelFile = "ds2rt-en-bigru.safetensors";
inline constexpr const char* kBundledLmFile = "lm.arpa";
// Names the default model: a model or plan file, or a directory holding kBundledModelFile.
inline constexpr const char* kModelEnvironmentVariable = "DS2RT_MODEL";

struct BundledModel {
  std::string model;  // the model file
  std::string lm;     // kBundledLmFile beside the model; empty when there is none
};

// Where the ds2rt program looks after DS2RT_MODEL, in order: EXE_DIR/../models (an installed
// tree or a copy beside models/), EXE_DIR/../../models (the build tree: build/tools/ds2rt),
// EXE_DIR/../share/ds2rt/models and the configured install prefix's share/ds2rt/models.
std::vector<std::string> defaultModelDirectories(const std::string& executable_dir);
// The directory of the running executable (empty when it cannot be told).
std::string executableDirectory();

// DS2RT_MODEL when set (a missing path is an error, not a reason to look elsewhere), else the first
// of `directories` holding kBundledModelFile. Throws ds2rt::Error listing every place it looked.
BundledModel findBundledModel(const std::vector<std::string>& directories);

}  // namespace ds2rt
