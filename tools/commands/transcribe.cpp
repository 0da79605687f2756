// ds2rt transcribe [-m MODEL|PLAN] INPUT... [--format text|json|srt] [-o FILE|DIR]
#include <fstream>
#include <functional>
#include <iostream>

#include "common.h"
#include "ds2rt/error.h"
#include "transcription/inputs.h"
#include "transcription/options.h"
#include "transcription/output.h"
#include "transcription/progress.h"

namespace ds2rt::tools {

namespace {

constexpr const char* kFooter = R"(
Inputs: audio files (any format libsndfile reads: WAV, FLAC, OGG/Vorbis, Opus, MP3, ...; resampled to
the model's rate), directories (searched recursively for audio extensions), and manifests, told apart
by extension: .csv is deepspeech.pytorch's "audio_path,transcript_path" per line; .json/.jsonl is
NeMo's JSON lines with "audio_filepath" (or deepspeech.pytorch's {"root_path", "samples"} .json).
Relative paths in a manifest are resolved against the manifest's directory.

Long files: a file longer than --max-segment seconds (default 20) is cut into pieces of at most that
length, each ending in the quietest 100 ms of its second half (a pause where there is one); each piece
is normalised and transcribed on its own, as the model's training utterances were, and the pieces'
words are joined with times from the file's start. --max-segment 0 transcribes every file whole.

Output (--format): text is "path<TAB>transcript" per file (just the transcript for one audio file);
json is an array with one object per file {file, text, duration, sample_rate (the file's own),
confidence, words: [{word, start, end, confidence}], nbest: [{text, score}], model, decoder, and
warning when there is one} ({file, error} for a failed file);
srt is subtitles from the word times (cues of at most 7 s and 42 characters); with several files
-o names a directory that gets one FILE_STEM.srt per file.

Word times: one output frame lasts window_stride (the model's spect config) x the network's time
stride, measured from the engine (input frames / output frames: 2 for DeepSpeech2, so 20 ms).

A file that cannot be read is reported on stderr ("ds2rt: error: ..."), the others are
transcribed, and the exit status is 1; it is 0 when every file was transcribed. Audio at a lower
rate than the model's (8 kHz telephone audio for a 16 kHz model) is upsampled and transcribed with
a warning on stderr ("ds2rt: warning: ..."): it lacks the upper half of the band the model knows. So
is digital silence (peak below -84 dBFS), which a speech model turns into stray letters.)";

// Calls `write` with stdout, or with the file `path` when one is given.
void writeTo(const std::string& path, const std::function<void(std::ostream&)>& write) {
  if (path.empty()) return write(std::cout);
  std::ofstream out(path);
  check(static_cast<bool>(out), "cannot open '", path, "' for writing");
  write(out);
  check(static_cast<bool>(out.flush()), "cannot write '", path, "'");
}

}  // namespace

void addTranscribeCommand(CLI::App& app) {
  struct Args {
    TranscribeOptions options;
    std::vector<std::string> inputs;
    std::string format = "text";
    std::string output;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("transcribe", "Transcribe audio files, directories or manifests to text");
  cmd->footer(modelHelp() + "\n" + kFooter);
  addTranscribeOptions(*cmd, args->options);
  cmd->add_option("inputs", args->inputs, "audio files, directories or manifests (.csv, .json, .jsonl)")->required();
  cmd->add_option("-f,--format", args->format, "text | json | srt")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json", "srt"}));
  cmd->add_option("-o,--output", args->output, "write to this file (srt with several files: a directory)");
  cmd->callback([args] {
    args->options.resolveModel(args->inputs);
    const InputList inputs = collectInputs(args->inputs);
    const bool srt_files = args->format == "srt" && !inputs.single_file;
    if (srt_files && args->output.empty())
      throw CLI::ValidationError("--format srt with several files writes one .srt per file: give -o DIRECTORY");
    Transcriber transcriber = makeTranscriber(args->options);

    std::vector<std::string> files;
    for (const ManifestEntry& e : inputs.files) files.push_back(e.audio);
    std::vector<Transcription> results;
    {
      ProgressBar bar(files.size(), !args->options.no_progress);
      for (const std::string& error : inputs.errors) bar.message("ds2rt: error: " + error);
      results = transcriber.transcribe(files, [&bar](const Transcription& r) {
        bar.fileDone(r.error, r.warning, r.duration);
      });
    }

    if (args->format == "text") {
      writeTo(args->output, [&](std::ostream& out) { writeText(out, results, inputs.single_file); });
    } else if (args->format == "json") {
      const auto decoder = decoderSettings(transcriber);
      writeTo(args->output, [&](std::ostream& out) { writeJson(out, results, args->options.model, decoder); });
    } else if (srt_files) {
      writeSrtFiles(args->output, results);
    } else if (results[0].ok()) {
      writeTo(args->output, [&](std::ostream& out) { out << toSrt(results[0].nbest[0].words); });
    }

    size_t failed = inputs.errors.size();
    for (const Transcription& r : results) failed += !r.ok();
    check(failed == 0, failed, " of ", results.size() + inputs.errors.size(),
          " inputs could not be transcribed (see the errors above)");
  });
}

}  // namespace ds2rt::tools
