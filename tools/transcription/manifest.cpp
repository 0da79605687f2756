#include "transcription/manifest.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ds2rt/error.h"

namespace ds2rt::tools {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string lowerExtension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::string readText(const std::string& path, const char* what) {
  check(fs::is_regular_file(path), "cannot read ", what, " '", path, "': ",
        fs::exists(path) ? "not a regular file" : "no such file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  check(!in.bad(), "cannot read ", what, " '", path, "'");
  return text.str();
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

std::string resolve(const fs::path& base, const std::string& path) {
  const fs::path p(path);
  return (p.is_absolute() ? p : base / p).lexically_normal().string();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(trim(line));
  return out;
}

std::vector<ManifestEntry> readCsv(const std::string& path, const std::string& text, const fs::path& base) {
  std::vector<ManifestEntry> entries;
  const auto rows = lines(text);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].empty()) continue;
    const auto comma = rows[i].find(',');
    ManifestEntry e;
    e.audio = resolve(base, trim(rows[i].substr(0, comma)));
    if (comma != std::string::npos) {
      const std::string transcript = trim(rows[i].substr(comma + 1));
      check(transcript.find(',') == std::string::npos, "manifest '", path, "' line ", i + 1,
            ": expected 'audio_path,transcript_path', got '", rows[i], "'");
      if (!transcript.empty()) e.text_path = resolve(base, transcript);
    }
    check(!trim(rows[i].substr(0, comma)).empty(), "manifest '", path, "' line ", i + 1, ": no audio path");
    entries.push_back(std::move(e));
  }
  return entries;
}

std::vector<ManifestEntry> readJsonLines(const std::string& path, const std::string& text, const fs::path& base) {
  std::vector<ManifestEntry> entries;
  const auto rows = lines(text);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].empty()) continue;
    try {
      const json j = json::parse(rows[i]);
      ManifestEntry e;
      e.audio = resolve(base, j.at("audio_filepath").get<std::string>());
      if (j.contains("text")) e.text = j["text"].get<std::string>();
      for (const auto& [key, value] : j.items())
        if (key != "audio_filepath" && key != "text")
          e.fields[key] = value.is_string() ? value.get<std::string>() : value.dump();
      entries.push_back(std::move(e));
    } catch (const json::exception& ex) {
      fail("manifest '", path, "' line ", i + 1, ": not a NeMo manifest line (", ex.what(), ")");
    }
  }
  return entries;
}

// deepspeech.pytorch's JSON manifest: {"root_path": ..., "samples": [{"wav_path", "transcript_path"}]}.
std::vector<ManifestEntry> readSamplesJson(const std::string& path, const json& j, const fs::path& base) {
  std::vector<ManifestEntry> entries;
  try {
    const fs::path root = resolve(base, j.value("root_path", std::string(".")));
    for (const json& s : j.at("samples")) {
      ManifestEntry e;
      e.audio = resolve(root, s.at("wav_path").get<std::string>());
      if (s.contains("transcript_path")) e.text_path = resolve(root, s["transcript_path"].get<std::string>());
      entries.push_back(std::move(e));
    }
  } catch (const json::exception& ex) {
    fail("manifest '", path, "': not a deepspeech.pytorch JSON manifest (", ex.what(), ")");
  }
  return entries;
}

}  // namespace

std::string ManifestEntry::reference() const {
  if (text) return *text;
  check(!text_path.empty(), "'", audio, "' has no reference transcript in the manifest");
  return trim(readText(text_path, "transcript"));
}

bool isManifestPath(const std::string& path) {
  const std::string ext = lowerExtension(path);
  return ext == ".csv" || ext == ".json" || ext == ".jsonl";
}

std::vector<ManifestEntry> readManifest(const std::string& path) {
  const std::string ext = lowerExtension(path);
  check(isManifestPath(path), "'", path, "' is not a manifest: expected .csv (deepspeech.pytorch) or .json/.jsonl (NeMo)");
  const std::string text = readText(path, "manifest");
  const fs::path base = fs::path(path).parent_path();
  std::vector<ManifestEntry> entries;
  if (ext == ".csv") {
    entries = readCsv(path, text, base);
  } else {
    const json whole = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (ext == ".json" && whole.is_object() && whole.contains("samples")) {
      entries = readSamplesJson(path, whole, base);
    } else {
      entries = readJsonLines(path, text, base);
    }
  }
  check(!entries.empty(), "manifest '", path, "' lists no files");
  return entries;
}

}  // namespace ds2rt::tools
