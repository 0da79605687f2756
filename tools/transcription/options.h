// The options `ds2rt transcribe` and `ds2rt eval` share: the model, engine, batching and decoder.
#pragma once

#include <string>
#include <vector>

#include "common.h"
#include "transcription/transcriber.h"

namespace ds2rt::tools {

struct TranscribeOptions {
  std::string model;
  std::string config;  // for a plan: the model or JSON config it was built from
  BuildOptions build;
  int batch_size = 8;
  int threads = 0;
  std::string decoder;  // "greedy" | "beam"; empty: beam when --lm, --hotword or --nbest > 1 asks for it
  std::string lm;
  BeamSearchConfig search;
  std::vector<std::string> hotwords;  // WORD:BOOST
  bool no_progress = false;

  // Resolves the decoder choice and parses the hotwords; throws CLI::ValidationError (exit 2).
  TranscriberConfig transcriberConfig() const;
};

// Adds the MODEL|PLAN positional and every option above.
void addTranscribeOptions(CLI::App& command, TranscribeOptions& options);

// Opens the model or plan and makes the pipeline.
Transcriber makeTranscriber(const TranscribeOptions& options);

}  // namespace ds2rt::tools
