#include "transcription/options.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "ds2rt/bundled_model.h"
#include "ds2rt/error.h"
#include "transcription/inputs.h"
#include "transcription/model.h"

namespace ds2rt::tools {

namespace fs = std::filesystem;

std::string modelHelp() {
  return cat(R"(
Model: --model FILE (a ds2rt .safetensors or .json config, a PyTorch checkpoint, a .wts file or a
plan). Without it, the bundled model is used, looked for in this order: $)", kModelEnvironmentVariable,
             R"( (a model file, or
a directory holding )", kBundledModelFile, R"(), EXE_DIR/../models, EXE_DIR/../../models (the build
tree), EXE_DIR/../share/ds2rt/models and the install prefix's share/ds2rt/models. The older form
with the model first (MODEL INPUT...) still works: with several positionals, a first one that is
a model or plan file (by its extension, or any existing file that is neither audio nor a manifest;
a .json config is told from a .json manifest by its content) is taken as the model.
--lm default uses )", kBundledLmFile, R"( beside the model (models/)", kBundledLmFile,
             R"( for the bundled one). The decoder stays greedy
unless --lm, --hotword, --nbest > 1 or --decoder beam asks for beam search.)");
}

namespace {

std::string lowerExtension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// A .json manifest (deepspeech.pytorch's {"root_path", "samples"} or NeMo's JSON lines) rather than
// a ds2rt model config.
bool isJsonManifest(const std::string& path) {
  std::ifstream in(path);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  return head.find("\"samples\"") != std::string::npos || head.find("\"audio_filepath\"") != std::string::npos;
}

bool looksLikeModel(const std::string& path) {
  static const std::vector<std::string> model_extensions = {".safetensors", ".pth", ".pt",    ".ckpt", ".wts",
                                                             ".plan",        ".onnx", ".h5",   ".keras"};
  const std::string ext = lowerExtension(path);
  if (std::find(model_extensions.begin(), model_extensions.end(), ext) != model_extensions.end()) return true;
  if (!fs::is_regular_file(path)) return false;
  if (isPlanFile(path)) return true;
  if (ext == ".csv" || ext == ".jsonl") return false;
  if (ext == ".json") return !isJsonManifest(path);
  const auto& audio = audioExtensions();
  return ext.empty() || std::find(audio.begin(), audio.end(), ext.substr(1)) == audio.end();
}

}  // namespace

void TranscribeOptions::resolveModel(std::vector<std::string>& positionals) {
  if (model.empty() && positionals.size() >= 2 && looksLikeModel(positionals[0])) {
    model = positionals[0];
    positionals.erase(positionals.begin());
  }
  std::string bundled_lm;
  if (model.empty()) {
    const BundledModel bundled = findBundledModel(defaultModelDirectories(executableDirectory()));
    model = bundled.model;
    bundled_lm = bundled.lm;
  } else {
    if (!fs::is_regular_file(model)) throw CLI::ValidationError("--model", "File does not exist: " + model);
    const fs::path beside = fs::path(model).parent_path() / kBundledLmFile;
    if (fs::is_regular_file(beside)) bundled_lm = beside.string();
  }
  if (lm == "default") {
    if (bundled_lm.empty())
      throw CLI::ValidationError("--lm", cat("default: no ", kBundledLmFile, " beside the model '", model, "'"));
    lm = bundled_lm;
  }
}

void addTranscribeOptions(CLI::App& cmd, TranscribeOptions& o) {
  cmd.add_option("-m,--model", o.model, "model (.safetensors or .json config, ...) or plan file (default: the bundled model)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--config", o.config,
                 "for a plan: the model file or JSON config it was built from (labels, sample rate, window); "
                 "default: the labels and settings stored in the plan (plans built since 2026-12), else "
                 "PLAN_STEM.safetensors or .json beside the plan")
      ->check(CLI::ExistingFile);
  addBuildOptions(cmd, o.build);
  cmd.add_option("-b,--batch-size", o.batch_size, "files per engine run (sorted by length, padded)")->capture_default_str();
  cmd.add_option("-t,--threads", o.threads, "CPU threads (0: all cores)")->capture_default_str();
  cmd.add_option("--max-segment", o.max_segment,
                 "seconds: longer files are transcribed in pieces of at most this, cut at pauses (0: whole)")
      ->capture_default_str();
  cmd.add_option("--decoder", o.decoder, "greedy | beam (default: greedy; beam with --lm, --hotword or --nbest > 1)")
      ->check(CLI::IsMember({"greedy", "beam"}));
  cmd.add_option("--lm", o.lm, "n-gram word language model, ARPA (plain or .gz); default: lm.arpa beside the model")
      ->check(CLI::Validator(
          [](std::string& path) { return path == "default" || fs::is_regular_file(path) ? "" : "File does not exist: " + path; },
          "FILE|default"));
  cmd.add_option("--alpha", o.search.alpha, "LM weight (beam with --lm)")->capture_default_str();
  cmd.add_option("--beta", o.search.beta, "word insertion bonus (beam with --lm)")->capture_default_str();
  cmd.add_option("--beam-width", o.search.beam_width, "beam search width")->capture_default_str();
  cmd.add_option("--cutoff-top-n", o.search.cutoff_top_n, "beam: most probable labels tried per frame")
      ->capture_default_str();
  cmd.add_option("--cutoff-prob", o.search.cutoff_prob, "beam: labels tried per frame until their probability sums to this")
      ->capture_default_str();
  cmd.add_option("--hotword", o.hotwords, "WORD:BOOST, boosts WORD in the beam search (repeatable)");
  cmd.add_option("--nbest", o.search.nbest, "hypotheses per file (beam)")->capture_default_str();
  cmd.add_flag("--no-progress", o.no_progress, "no progress bar (it is drawn only when stderr is a terminal)");
}

TranscriberConfig TranscribeOptions::transcriberConfig() const {
  const bool wants_beam = !lm.empty() || !hotwords.empty() || search.nbest > 1;
  if (decoder == "greedy" && wants_beam)
    throw CLI::ValidationError("--decoder", "--lm, --hotword and --nbest > 1 need the beam decoder (--decoder beam)");
  TranscriberConfig c{
      .batch_size = batch_size, .threads = threads, .max_segment = max_segment, .search = search, .lm_path = lm};
  c.beam = decoder == "beam" || (decoder.empty() && wants_beam);
  try {
    for (const std::string& spec : hotwords) c.search.hotwords.push_back(parseHotword(spec));
    c.validate();
  } catch (const Error& e) {
    throw CLI::ValidationError(e.what());
  }
  return c;
}

Transcriber makeTranscriber(const TranscribeOptions& options) {
  TranscriberConfig config = options.transcriberConfig();
  TranscriptionModel model = openTranscriptionModel(options.model, options.config, options.build);
  return Transcriber(std::move(model.engine), model.config, std::move(config));
}

}  // namespace ds2rt::tools
