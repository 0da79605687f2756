#include "transcription/options.h"

#include "ds2rt/error.h"
#include "transcription/model.h"

namespace ds2rt::tools {

void addTranscribeOptions(CLI::App& cmd, TranscribeOptions& o) {
  cmd.add_option("model", o.model, "model (.safetensors or .json config) or plan file")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--config", o.config,
                 "for a plan: the model file or JSON config it was built from (labels, sample rate, window); "
                 "default: PLAN_STEM.safetensors or .json beside the plan")
      ->check(CLI::ExistingFile);
  addBuildOptions(cmd, o.build);
  cmd.add_option("-b,--batch-size", o.batch_size, "files per engine run (sorted by length, padded)")->capture_default_str();
  cmd.add_option("-t,--threads", o.threads, "CPU threads (0: all cores)")->capture_default_str();
  cmd.add_option("--decoder", o.decoder, "greedy | beam (default: greedy; beam with --lm, --hotword or --nbest > 1)")
      ->check(CLI::IsMember({"greedy", "beam"}));
  cmd.add_option("--lm", o.lm, "n-gram word language model, ARPA (plain or .gz)")->check(CLI::ExistingFile);
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
  TranscriberConfig c{.batch_size = batch_size, .threads = threads, .search = search, .lm_path = lm};
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
