// The options `ds2rt transcribe` and `ds2rt eval` share: the model, engine, batching and decoder.
#pragma once

#include <string>
#include <vector>

#include "common.h"
#include "transcription/transcriber.h"

namespace ds2rt::tools {

struct TranscribeOptions {
  std::string model;   // --model; empty: the legacy first positional, else the bundled model
  std::string config;  // for a plan: the model or JSON config it was built from
  BuildOptions build;
  int batch_size = 8;
  int threads = 0;
  double max_segment = 20;  // seconds; 0: never cut
  std::string decoder;  // "greedy" | "beam"; empty: beam when --lm, --hotword or --nbest > 1 asks for it
  std::string lm;  // an ARPA file, or "default": kBundledLmFile beside the model
  BeamSearchConfig search;
  std::vector<std::string> hotwords;  // WORD:BOOST
  bool no_progress = false;

  // Settles the model: --model; else, in the legacy form MODEL INPUT..., the first of several
  // positionals when it looks like a model or plan (then removed from them); else the bundled model
  // (ds2rt/bundled_model.h). Resolves --lm default. Throws CLI::ValidationError for a missing model
  // file named on the command line, ds2rt::Error when no bundled model is found.
  void resolveModel(std::vector<std::string>& positionals);
  // Resolves the decoder choice and parses the hotwords; throws CLI::ValidationError (exit 2).
  TranscriberConfig transcriberConfig() const;
};

// Adds --model and every option above (the commands add their positionals).
void addTranscribeOptions(CLI::App& command, TranscribeOptions& options);

// How the model is chosen, for the commands' help.
std::string modelHelp();

// Opens the model or plan and makes the pipeline.
Transcriber makeTranscriber(const TranscribeOptions& options);

}  // namespace ds2rt::tools
