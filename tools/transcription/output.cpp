#include "transcription/output.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "ds2rt/error.h"

namespace ds2rt::tools {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

double milliseconds(double seconds) { return std::round(seconds * 1000.0) / 1000.0; }

size_t codePoints(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

void writeText(std::ostream& out, const std::vector<Transcription>& results, bool single_file) {
  for (const Transcription& r : results) {
    if (!r.ok()) continue;
    if (!single_file) out << r.file << '\t';
    out << r.text() << '\n';
  }
}

json decoderSettings(const Transcriber& transcriber) {
  const DecoderConfig& d = transcriber.decoderConfig();
  const TranscriberConfig& t = transcriber.config();
  json j = {{"type", t.beam ? "beam" : "greedy"},
            {"frame_seconds", d.frame_seconds},
            {"time_stride", transcriber.timeStride()}};
  if (!t.beam) return j;
  j["beam_width"] = d.beam.beam_width;
  j["cutoff_top_n"] = d.beam.cutoff_top_n;
  j["cutoff_prob"] = d.beam.cutoff_prob;
  j["nbest"] = d.beam.nbest;
  j["lm"] = t.lm_path.empty() ? json(nullptr) : json(t.lm_path);
  if (!t.lm_path.empty()) {
    j["alpha"] = d.beam.alpha;
    j["beta"] = d.beam.beta;
  }
  j["hotwords"] = json::array();
  for (const Hotword& h : d.beam.hotwords) j["hotwords"].push_back({{"word", h.word}, {"boost", h.boost}});
  return j;
}

json resultJson(const Transcription& r, const std::string& model, const json& decoder) {
  if (!r.ok()) return {{"file", r.file}, {"error", r.error}};
  const Hypothesis& best = r.nbest.at(0);
  json words = json::array();
  for (const DecodedWord& w : best.words)
    words.push_back({{"word", w.text},
                     {"start", milliseconds(w.start_seconds)},
                     {"end", milliseconds(w.end_seconds)},
                     {"confidence", w.confidence}});
  json nbest = json::array();
  for (const Hypothesis& h : r.nbest) nbest.push_back({{"text", h.text}, {"score", h.score}});
  json j = {{"file", r.file},         {"text", best.text},   {"duration", milliseconds(r.duration)},
            {"sample_rate", r.source_rate},  {"confidence", best.confidence}, {"words", words},
            {"nbest", nbest},       {"model", model},      {"decoder", decoder}};
  if (!r.warning.empty()) j["warning"] = r.warning;
  return j;
}

void writeJson(std::ostream& out, const std::vector<Transcription>& results, const std::string& model,
               const json& decoder) {
  json all = json::array();
  for (const Transcription& r : results) all.push_back(resultJson(r, model, decoder));
  out << all.dump(2) << '\n';
}

std::string srtTime(double seconds) {
  const auto ms = static_cast<long long>(std::llround(std::max(0.0, seconds) * 1000.0));
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%02lld:%02lld:%02lld,%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60,
                ms % 1000);
  return buffer;
}

std::string toSrt(const std::vector<DecodedWord>& words, const SrtOptions& options) {
  std::string out;
  int cue = 0;
  for (size_t first = 0; first < words.size();) {
    std::string text = words[first].text;
    size_t last = first;
    while (last + 1 < words.size()) {
      const DecodedWord& next = words[last + 1];
      if (next.end_seconds - words[first].start_seconds > options.max_seconds ||
          codePoints(text) + 1 + codePoints(next.text) > options.max_chars)
        break;
      text += ' ' + next.text;
      ++last;
    }
    out += cat(++cue, "\n", srtTime(words[first].start_seconds), " --> ", srtTime(words[last].end_seconds), "\n",
               text, "\n\n");
    first = last + 1;
  }
  return out;
}

void writeSrtFiles(const std::string& dir, const std::vector<Transcription>& results) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(fs::is_directory(dir), "cannot create the output directory '", dir, "'", ec ? ": " + ec.message() : "");
  std::map<std::string, int> seen;
  for (const Transcription& r : results) {
    if (!r.ok()) continue;
    const std::string stem = fs::path(r.file).stem().string();
    const int n = ++seen[stem];
    const fs::path path = fs::path(dir) / (n == 1 ? stem + ".srt" : cat(stem, "-", n, ".srt"));
    std::ofstream out(path);
    out << toSrt(r.nbest.at(0).words);
    check(static_cast<bool>(out), "cannot write '", path.string(), "'");
  }
}

}  // namespace ds2rt::tools
