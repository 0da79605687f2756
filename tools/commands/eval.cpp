// ds2rt eval [-m MODEL|PLAN] MANIFEST [--verbose] [--json] [--by FIELD] (or the older ds2rt eval MODEL MANIFEST):
// word and character error rates, in all and per value of a manifest field.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "common.h"
#include "ds2rt/error.h"
#include "transcription/manifest.h"
#include "transcription/normalize.h"
#include "transcription/options.h"
#include "transcription/output.h"
#include "transcription/progress.h"

namespace ds2rt::tools {

namespace {

using json = nlohmann::ordered_json;

constexpr const char* kFooter = R"help(
Examples: ds2rt eval test.csv (the bundled model); ds2rt eval -m model.safetensors test.csv; the
older form with the model first, ds2rt eval model.safetensors test.csv, still works.
MANIFEST: .csv (deepspeech.pytorch: audio_path,transcript_path per line) or .json/.jsonl (NeMo:
{"audio_filepath", "text"} per line); relative paths are resolved against its directory.

WER and CER are corpus rates: the edit counts of all files added, then divided by the reference
length (jiwer's convention). References are first put in the model's alphabet: upper-cased when
the labels are upper-case, characters outside the labels dropped, whitespace collapsed to single
spaces. Files that cannot be read or lack a reference are reported, left out of the rates, and make
the exit status 1.

--by FIELD adds the rates per value of a field of a NeMo manifest's lines (e.g. --by voice or --by
speaker for {"audio_filepath": ..., "text": ..., "speaker": "s12"}); files whose line lacks it count
under "(no FIELD)". With --json the summary gains "by": {"field", "groups": [...]}, and with --verbose
each file's result its "group".)help";

struct FileScore {
  std::string file, reference, hypothesis, group;
  EditCounts words, chars;
  double seconds = 0;
};

struct GroupScore {
  size_t files = 0;
  EditCounts words, chars;
  double seconds = 0;
};

std::string percent(double rate) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f%%", 100.0 * rate);
  return buffer;
}

std::string describe(const EditCounts& e, const char* unit) {
  return cat(e.referenceLength(), " ", unit, ": ", e.substitutions, " substitutions, ", e.deletions, " deletions, ",
             e.insertions, " insertions");
}

json countsJson(const EditCounts& e) {
  return {{"rate", e.rate()},          {"errors", e.errors()},   {"reference_length", e.referenceLength()},
          {"hits", e.hits},            {"substitutions", e.substitutions},
          {"deletions", e.deletions},  {"insertions", e.insertions}};
}

// The files' scores summed per group value (--by), sorted by value.
std::map<std::string, GroupScore> byGroup(const std::vector<FileScore>& scores) {
  std::map<std::string, GroupScore> groups;
  for (const FileScore& s : scores) {
    GroupScore& g = groups[s.group];
    ++g.files;
    g.words += s.words;
    g.chars += s.chars;
    g.seconds += s.seconds;
  }
  return groups;
}

json groupsJson(const std::string& field, const std::map<std::string, GroupScore>& groups) {
  json by = {{"field", field}, {"groups", json::array()}};
  for (const auto& [value, g] : groups)
    by["groups"].push_back({{"value", value}, {"files", g.files}, {"audio_seconds", std::round(g.seconds * 1000) / 1000},
                            {"wer", g.words.rate()}, {"cer", g.chars.rate()}, {"words", countsJson(g.words)},
                            {"chars", countsJson(g.chars)}});
  return by;
}

void printGroups(const std::string& field, const std::map<std::string, GroupScore>& groups) {
  size_t width = 0;
  for (const auto& [value, g] : groups) width = std::max(width, value.size());
  std::cout << "by " << field << ":\n";
  for (const auto& [value, g] : groups)
    std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << value << std::right << "  files " << g.files
              << "  WER " << percent(g.words.rate()) << "  CER " << percent(g.chars.rate()) << "  ("
              << g.words.referenceLength() << " words, " << g.chars.referenceLength() << " characters)\n";
}

std::vector<std::string> labelsWithoutBlank(const DecoderConfig& d) {
  std::vector<std::string> labels = d.labels;
  labels.erase(labels.begin() + d.blank_index);
  return labels;
}

}  // namespace

void addEvalCommand(CLI::App& app) {
  struct Args {
    TranscribeOptions options;
    std::vector<std::string> positionals;  // [MODEL] MANIFEST
    bool verbose = false, json = false;
    std::string by;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("eval", "Word and character error rates of a model on a manifest");
  cmd->footer(modelHelp() + "\n" + kFooter);
  addTranscribeOptions(*cmd, args->options);
  cmd->add_option("manifest", args->positionals, "manifest: .csv (deepspeech.pytorch) or .json/.jsonl (NeMo); MODEL MANIFEST, the older form, works too")
      ->required()
      ->expected(1, 2)
      ->check(CLI::ExistingFile);
  cmd->add_flag("-v,--verbose", args->verbose, "per-file rates with the reference and the transcript");
  cmd->add_flag("--json", args->json, "print a JSON summary instead of text");
  cmd->add_option("--by", args->by, "also the rates per value of this field of a NeMo manifest's lines (e.g. voice, speaker)");
  cmd->callback([args] {
    std::vector<std::string>& positionals = args->positionals;
    if (positionals.size() == 2) {  // the older MODEL MANIFEST form
      if (!args->options.model.empty())
        throw CLI::ValidationError("manifest", "one manifest only: the model is given with --model already");
      args->options.model = positionals[0];
      positionals.erase(positionals.begin());
    }
    args->options.resolveModel(positionals);
    const std::string& manifest = positionals[0];
    const std::vector<ManifestEntry> entries = readManifest(manifest);
    if (!args->by.empty()) {
      const bool any = std::any_of(entries.begin(), entries.end(),
                                   [&](const ManifestEntry& e) { return e.fields.count(args->by) > 0; });
      check(any, "--by ", args->by, ": no line of manifest '", manifest, "' has a field '", args->by,
            "' (fields are read from NeMo JSON-lines manifests)");
    }
    Transcriber transcriber = makeTranscriber(args->options);
    std::vector<std::string> files;
    for (const ManifestEntry& e : entries) files.push_back(e.audio);

    std::vector<Transcription> results;
    {
      ProgressBar bar(files.size(), !args->options.no_progress);
      results = transcriber.transcribe(files, [&bar](const Transcription& r) {
        bar.fileDone(r.error, r.warning, r.duration);
      });
    }

    const std::vector<std::string> labels = labelsWithoutBlank(transcriber.decoderConfig());
    std::vector<FileScore> scores;
    EditCounts words, chars;
    size_t failed = 0;
    double seconds = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (!results[i].ok()) {
        ++failed;
        continue;
      }
      FileScore s{.file = results[i].file, .seconds = results[i].duration};
      if (!args->by.empty()) {
        const auto field = entries[i].fields.find(args->by);
        s.group = field != entries[i].fields.end() ? field->second : cat("(no ", args->by, ")");
      }
      try {
        s.reference = normalizeTranscript(entries[i].reference(), labels);
      } catch (const Error& e) {
        std::cerr << "ds2rt: error: " << e.what() << "\n";
        ++failed;
        continue;
      }
      s.hypothesis = normalizeTranscript(results[i].text(), labels);
      s.words = wordEdits(s.reference, s.hypothesis);
      s.chars = charEdits(s.reference, s.hypothesis);
      words += s.words;
      chars += s.chars;
      seconds += results[i].duration;
      scores.push_back(std::move(s));
    }
    std::map<std::string, GroupScore> groups;
    if (!args->by.empty()) groups = byGroup(scores);

    if (args->json) {
      json summary = {{"model", args->options.model},  {"manifest", manifest}, {"files", entries.size()},
                      {"failed", failed},             {"audio_seconds", std::round(seconds * 1000) / 1000},   {"wer", scores.empty() ? json() : json(words.rate())},
                      {"cer", scores.empty() ? json() : json(chars.rate())},          {"words", countsJson(words)}, {"chars", countsJson(chars)},
                      {"decoder", decoderSettings(transcriber)}};
      if (!args->by.empty()) summary["by"] = groupsJson(args->by, groups);
      if (args->verbose) {
        summary["results"] = json::array();
        for (const FileScore& s : scores) {
          json result = {{"file", s.file},          {"reference", s.reference}, {"hypothesis", s.hypothesis},
                         {"wer", s.words.rate()},   {"cer", s.chars.rate()}};
          if (!args->by.empty()) result["group"] = s.group;  // the --by field's value
          summary["results"].push_back(std::move(result));
        }
      }
      std::cout << summary.dump(2) << "\n";
    } else {
      if (args->verbose)
        for (const FileScore& s : scores)
          std::cout << s.file << "  WER " << percent(s.words.rate()) << "  CER " << percent(s.chars.rate())
                    << "\n  REF: " << s.reference << "\n  HYP: " << s.hypothesis << "\n";
      if (!scores.empty())
        std::cout << "WER " << percent(words.rate()) << " (" << describe(words, "words") << ")\n"
                  << "CER " << percent(chars.rate()) << " (" << describe(chars, "characters") << ")\n";
      std::cout << "files " << scores.size() << " scored, " << failed << " failed, " << cat(std::fixed, std::setprecision(2), seconds)
                << " s of audio\n";
      if (!args->by.empty() && !groups.empty()) printGroups(args->by, groups);
    }
    check(failed == 0, failed, " of ", entries.size(), " files could not be scored (see the errors above)");
  });
}

}  // namespace ds2rt::tools
