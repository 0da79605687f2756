// Manifests: lists of audio files with their reference transcripts, in the formats the usual
// training code writes. The format follows the extension:
//   .csv    deepspeech.pytorch: one "audio_path,transcript_path" per line (the transcript is the
//           text file's content); a line with only an audio path has no reference
//   .jsonl  NeMo: one JSON object per line, {"audio_filepath": ..., "text": ..., "duration": ...}
//   .json   NeMo's JSON lines as above, or deepspeech.pytorch's JSON manifest
//           {"root_path": DIR, "samples": [{"wav_path": ..., "transcript_path": ...}]}
// Relative paths are resolved against the manifest's directory (deepspeech.pytorch's JSON:
// against root_path, itself relative to the manifest's directory when relative).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ds2rt::tools {

struct ManifestEntry {
  std::string audio;
  std::optional<std::string> text;  // the reference held in the manifest (NeMo)
  std::string text_path;            // or a file holding it (deepspeech.pytorch)
  // A NeMo line's other fields ("voice", "speaker", "duration", ...) as text (strings as they are,
  // other values as JSON), for grouping results (ds2rt eval --by FIELD).
  std::map<std::string, std::string> fields;

  bool hasReference() const { return text.has_value() || !text_path.empty(); }
  // The reference transcript; throws ds2rt::Error naming the file when it cannot be read.
  std::string reference() const;
};

bool isManifestPath(const std::string& path);  // .csv, .json or .jsonl
// Throws ds2rt::Error naming the manifest and line for a missing file or a malformed line.
std::vector<ManifestEntry> readManifest(const std::string& path);

}  // namespace ds2rt::tools
