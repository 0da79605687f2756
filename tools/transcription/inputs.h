// What `ds2rt transcribe` reads: audio files, directories searched recursively for the audio
// extensions the linked libsndfile decodes, and manifests (transcription/manifest.h), told apart
// by their extension (.csv, .json, .jsonl).
#pragma once

#include <string>
#include <vector>

#include "transcription/manifest.h"

namespace ds2rt::tools {

struct InputList {
  std::vector<ManifestEntry> files;  // in the order given; a directory's files sorted by path
  std::vector<std::string> errors;   // inputs that yielded nothing (an empty directory, ...)
  bool single_file = false;          // exactly one argument, naming one audio file
};

// A missing path is kept as a file (reading it reports the error with the others); an
// unreadable or malformed manifest throws ds2rt::Error.
InputList collectInputs(const std::vector<std::string>& paths);

// Lower-case extensions without the dot: those of libsndfile's formats plus the usual names of
// some (mp3, ogg, opus, aif, sph), without raw (headerless PCM cannot be decoded from a file
// alone) and mat / htk (in speech corpora mostly feature files, not audio).
const std::vector<std::string>& audioExtensions();

}  // namespace ds2rt::tools
