// Output of `ds2rt transcribe`: plain text, JSON and SRT subtitles.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "transcription/transcriber.h"

namespace ds2rt::tools {

// "path<TAB>transcript" per transcribed file; just the transcript when `single_file`.
// Failed files are left out (they are reported on stderr).
void writeText(std::ostream& out, const std::vector<Transcription>& results, bool single_file);

// The settings a result was made with, repeated in each JSON result.
nlohmann::ordered_json decoderSettings(const Transcriber& transcriber);

// One object per file: {file, text, duration, confidence, words: [{word, start, end,
// confidence}], nbest: [{text, score}], model, decoder}, or {file, error} for a failed file.
// Times are seconds, rounded to milliseconds.
nlohmann::ordered_json resultJson(const Transcription& result, const std::string& model, const nlohmann::ordered_json& decoder);

// A JSON array of resultJson(), always an array (even for one file).
void writeJson(std::ostream& out, const std::vector<Transcription>& results, const std::string& model,
               const nlohmann::ordered_json& decoder);

// SubRip cues from word times: consecutive words grouped while a cue lasts at most
// `max_seconds` and holds at most `max_chars` characters (one word always fits).
struct SrtOptions {
  double max_seconds = 7.0;
  size_t max_chars = 42;
};
std::string toSrt(const std::vector<DecodedWord>& words, const SrtOptions& options = {});
std::string srtTime(double seconds);  // "01:02:03,456"

// One FILE_STEM.srt per transcribed file in `dir` (created); a stem seen before gets "-2", "-3", ...
void writeSrtFiles(const std::string& dir, const std::vector<Transcription>& results);

}  // namespace ds2rt::tools
