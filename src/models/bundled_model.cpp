#include "ds2rt/bundled_model.h"

#include <cstdlib>
#include <filesystem>

#include "ds2rt/error.h"

namespace ds2rt {

namespace fs = std::filesystem;

namespace {

BundledModel modelAt(const fs::path& model) {
  BundledModel found{model.string(), ""};
  const fs::path lm = model.parent_path() / kBundledLmFile;
  if (fs::is_regular_file(lm)) found.lm = lm.string();
  return found;
}

}  // namespace

std::vector<std::string> defaultModelDirectories(const std::string& executable_dir) {
  std::vector<std::string> dirs;
  if (!executable_dir.empty()) {
    const fs::path exe(executable_dir);
    for (const fs::path& relative : {fs::path("../models"), fs::path("../../models"), fs::path("../share/ds2rt/models")})
      dirs.push_back((exe / relative).lexically_normal().string());
  }
#ifdef DS2RT_INSTALL_MODELS_DIR
  dirs.push_back(DS2RT_INSTALL_MODELS_DIR);
#endif
  return dirs;
}

std::string executableDirectory() {
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  return error ? std::string() : exe.parent_path().string();
}

BundledModel findBundledModel(const std::vector<std::string>& directories) {
  if (const char* env = std::getenv(kModelEnvironmentVariable); env && *env) {
    const fs::path path(env);
    if (fs::is_directory(path)) {
      check(fs::is_regular_file(path / kBundledModelFile), kModelEnvironmentVariable, "='", env,
            "' is a directory without ", kBundledModelFile);
      return modelAt(path / kBundledModelFile);
    }
    check(fs::is_regular_file(path), kModelEnvironmentVariable, "='", env, "' does not exist");
    return modelAt(path);
  }
  std::string looked = cat("\n  $", kModelEnvironmentVariable, " (not set)");
  for (const std::string& dir : directories) {
    const fs::path candidate = fs::path(dir) / kBundledModelFile;
    if (fs::is_regular_file(candidate)) return modelAt(candidate);
    looked += "\n  " + candidate.string();
  }
  fail("no model given and no bundled model found; looked for:", looked,
       "\nname one with --model FILE (ds2rt.transcribe(..., model=FILE) in Python) or set ", kModelEnvironmentVariable,
       " to a model file or a directory holding ", kBundledModelFile);
}

}  // namespace ds2rt
