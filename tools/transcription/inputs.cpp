#include "transcription/inputs.h"

#include <algorithm>
#include <filesystem>

#include "ds2rt/audio.h"
#include "ds2rt/error.h"

namespace ds2rt::tools {

namespace fs = std::filesystem;

namespace {

bool hasAudioExtension(const fs::path& path) {
  std::string ext = path.extension().string();
  if (ext.empty()) return false;
  ext.erase(0, 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto& known = audioExtensions();
  return std::find(known.begin(), known.end(), ext) != known.end();
}

std::vector<std::string> audioFilesUnder(const fs::path& dir) {
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink))
    if (entry.is_regular_file() && hasAudioExtension(entry.path())) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

const std::vector<std::string>& audioExtensions() {
  static const std::vector<std::string> extensions = [] {
    // The usual names of files in formats whose libsndfile extension is another one.
    const std::vector<std::pair<std::string, std::vector<std::string>>> aliases = {
        {"MPEG", {"mp3", "mp2", "mp1"}}, {"OGG", {"ogg", "opus"}}, {"AIFF", {"aif"}}, {"WAV (NIST", {"sph", "nist"}}};
    std::vector<std::string> out;
    for (const AudioFormat& f : audioFormats()) {
      if (f.extension != "raw" && f.extension != "mat" && f.extension != "htk") out.push_back(f.extension);
      for (const auto& [prefix, names] : aliases)
        if (f.name.starts_with(prefix)) out.insert(out.end(), names.begin(), names.end());
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }();
  return extensions;
}

InputList collectInputs(const std::vector<std::string>& paths) {
  InputList list;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<std::string> files;
      try {
        files = audioFilesUnder(path);
      } catch (const fs::filesystem_error& e) {
        list.errors.push_back(cat("cannot list directory '", path, "': ", e.code().message()));
        continue;
      }
      if (files.empty()) list.errors.push_back(cat("directory '", path, "' holds no audio files"));
      for (auto& f : files) list.files.push_back({.audio = std::move(f)});
    } else if (isManifestPath(path)) {
      for (auto& entry : readManifest(path)) list.files.push_back(std::move(entry));
    } else {
      list.files.push_back({.audio = path});
    }
  }
  list.single_file = paths.size() == 1 && list.files.size() == 1 && list.files[0].audio == paths[0];
  return list;
}

}  // namespace ds2rt::tools
