#include "transcription/transcriber.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "ds2rt/error.h"

namespace ds2rt::tools {

namespace {

constexpr int64_t kProbeFrames = 64;
constexpr size_t kBatchesPerWindow = 8;

// Error messages name the file; those that come from the feature or decoding stages do not.
std::string fileError(const std::string& file, const std::exception& e) {
  const std::string message = e.what();
  return message.find(file) != std::string::npos ? message : cat("'", file, "': ", message);
}

// What may make a file's transcript poor, naming the file; empty when nothing does.
std::string audioWarning(const std::string& file, const Audio& audio, int model_rate) {
  std::string joined;
  for (const std::string& w : audioWarnings(audio, model_rate)) joined += (joined.empty() ? "" : "; ") + w;
  return joined.empty() ? joined : cat("'", file, "': ", joined);
}

int blankIndex(const std::vector<std::string>& labels) {
  const auto it = std::find(labels.begin(), labels.end(), "_");
  return it == labels.end() ? 0 : static_cast<int>(it - labels.begin());
}

}  // namespace

void TranscriberConfig::validate() const {
  check(batch_size >= 1, "--batch-size must be at least 1, got ", batch_size);
  check(max_segment == 0 || max_segment >= 1, "--max-segment must be 0 (never cut) or at least 1 s, got ", max_segment);
  check(threads >= 0, "--threads must be 0 (every core) or more, got ", threads);
  check(beam || lm_path.empty(), "a language model needs the beam search decoder");
  search.validate();
}

Transcriber::Transcriber(Engine engine, const DeepSpeech2Config& model, TranscriberConfig config)
    : config_((config.validate(), std::move(config))),
      engine_(std::move(engine)),
      context_(engine_.createContext({.num_threads = config_.threads})),
      features_(FeatureConfig::fromSpectrogramConfig(model.spect)),
      probe_(probeEngine(engine_, context_, features_.config())),
      decoder_(makeDecoder(model, config_, probe_)) {}

Transcriber::Probe Transcriber::probeEngine(const Engine& engine, ExecutionContext& context,
                                            const FeatureConfig& features) {
  Probe probe;
  const auto outputs = engine.outputNames();
  const auto has = [&](const char* name) { return std::find(outputs.begin(), outputs.end(), name) != outputs.end(); };
  if (has("log_probs")) {
    probe.output = "log_probs";
    probe.kind = PosteriorKind::kLogProbabilities;
  }
  check(has(probe.output.c_str()) && has("output_lengths"),
        "the engine has no outputs 'probs' (or 'log_probs') and 'output_lengths': not a DeepSpeech2 network");
  const HostTensor silence(DataType::kFloat32, {1, 1, features.bins(), kProbeFrames});
  const HostTensor lengths = HostTensor::fromInts({1}, {static_cast<int32_t>(kProbeFrames)});
  try {
    context.setInput("features", silence);
    context.setInput("lengths", lengths);
    context.run();
  } catch (const Error& e) {
    fail("the engine does not take this model's features (", features.bins(), " frequency bins at ",
         features.sample_rate, " Hz): ", e.what());
  }
  const HostTensor out_lengths = context.output("output_lengths").toFloat32();
  const double out_frames = out_lengths.floats()[0];
  check(out_frames > 0, "the engine returned no output frames for ", kProbeFrames, " input frames");
  probe.time_stride = std::max(1, static_cast<int>(std::lround(kProbeFrames / out_frames)));
  return probe;
}

CtcDecoder Transcriber::makeDecoder(const DeepSpeech2Config& model, const TranscriberConfig& config,
                                    const Probe& probe) {
  DecoderConfig d;
  d.labels = model.labels;
  d.blank_index = blankIndex(model.labels);
  d.frame_seconds = model.spect.window_stride * probe.time_stride;
  d.input = probe.kind;
  d.beam = config.search;
  if (config.lm_path.empty()) return CtcDecoder(std::move(d));
  return CtcDecoder(std::move(d), LanguageModel::loadArpa(config.lm_path));
}

std::vector<Transcription> Transcriber::transcribe(const std::vector<std::string>& files, const Callback& on_done) {
  std::vector<Transcription> results(files.size());
  std::vector<Pieces> pieces(files.size());
  for (size_t i = 0; i < files.size(); ++i) results[i].file = files[i];
  const size_t window = static_cast<size_t>(config_.batch_size) * kBatchesPerWindow;
  for (size_t begin = 0; begin < files.size(); begin += window) {
    const size_t end = std::min(files.size(), begin + window);
    const std::vector<Utterance> loaded = loadWindow(results, pieces, begin, end);
    if (on_done)
      for (size_t i = begin; i < end; ++i)
        if (!results[i].ok()) on_done(results[i]);
    for (size_t b = 0; b < loaded.size(); b += static_cast<size_t>(config_.batch_size)) {
      const auto batch = std::span(loaded).subspan(b, std::min(loaded.size() - b, static_cast<size_t>(config_.batch_size)));
      for (const size_t done : runBatch(batch, results, pieces))
        if (on_done) on_done(results[done]);
    }
  }
  return results;
}

// Reads and featurises files [begin, end) on all threads; failures land in the results.
// Returns the good ones, longest first.
std::vector<Transcriber::Utterance> Transcriber::loadWindow(std::vector<Transcription>& results,
                                                            std::vector<Pieces>& pieces, size_t begin, size_t end) {
  std::vector<std::vector<Utterance>> files(end - begin);
  const int threads = config_.threads > 0 ? config_.threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (size_t i = begin; i < end; ++i) {
    Transcription& r = results[i];
    try {
      const Audio audio = loadAudio(r.file, features_.config().sample_rate);
      r.duration = audio.seconds();
      r.source_rate = audio.source_rate;
      r.warning = audioWarning(r.file, audio, features_.config().sample_rate);
      const std::vector<AudioSpan> spans =
          config_.max_segment > 0 ? splitAtPauses(audio, config_.max_segment) : std::vector<AudioSpan>{{0, audio.samples.size()}};
      Pieces& p = pieces[i];  // this thread's alone, as files[i - begin] is
      p = {.nbest = std::vector<std::vector<Hypothesis>>(spans.size())};
      for (const AudioSpan& span : spans) {
        p.offsets.push_back(static_cast<double>(span.begin) / audio.sample_rate);
        HostTensor features = spans.size() == 1  // a whole file: no copy of its samples
                                  ? features_.compute(audio)
                                  : features_.compute(Audio{{audio.samples.begin() + span.begin,
                                                             audio.samples.begin() + span.end},
                                                            audio.sample_rate, audio.source_rate});
        files[i - begin].push_back({i, files[i - begin].size(), std::move(features)});
      }
    } catch (const std::exception& e) {
      r.error = fileError(r.file, e);
      files[i - begin].clear();
      pieces[i] = {};
    }
  }
  std::vector<Utterance> loaded;
  for (auto& file : files)
    for (Utterance& u : file) loaded.push_back(std::move(u));
  std::stable_sort(loaded.begin(), loaded.end(),
                   [](const Utterance& a, const Utterance& b) { return a.features.dim(3) > b.features.dim(3); });
  return loaded;
}

std::vector<size_t> Transcriber::runBatch(std::span<const Utterance> batch, std::vector<Transcription>& results,
                                          std::vector<Pieces>& pieces) {
  std::vector<Posteriors> posteriors;
  HostTensor probs;
  try {
    std::vector<HostTensor> inputs;
    for (const Utterance& u : batch) inputs.push_back(u.features);
    const FeatureBatch padded = batchFeatures(inputs);
    context_.setInput("features", padded.features);
    context_.setInput("lengths", padded.lengths);
    context_.run();
    probs = context_.output(probe_.output).toFloat32();
    posteriors = splitBatch(probs, context_.output("output_lengths"), decoder_.config().labels.size());
  } catch (const std::exception& e) {
    for (const Utterance& u : batch) results[u.index].error = fileError(results[u.index].file, e);
    posteriors.clear();
  }
  std::vector<std::string> errors(batch.size());
  const int threads = config_.threads > 0 ? config_.threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (config_.beam)
  for (size_t i = 0; i < posteriors.size(); ++i) {
    try {
      pieces[batch[i].index].nbest[batch[i].piece] =
          config_.beam ? decoder_.beamSearch(posteriors[i]) : std::vector{decoder_.greedy(posteriors[i])};
    } catch (const std::exception& e) {
      errors[i] = e.what();
    }
  }
  std::vector<size_t> finished;
  for (size_t i = 0; i < batch.size(); ++i) {
    Transcription& r = results[batch[i].index];
    if (!errors[i].empty() && r.ok()) r.error = fileError(r.file, std::runtime_error(errors[i]));
    Pieces& p = pieces[batch[i].index];
    if (++p.done < p.nbest.size()) continue;
    if (r.ok()) join(r, p);
    p = {};
    finished.push_back(batch[i].index);
  }
  return finished;
}

// A file's hypotheses from its pieces' (joinHypotheses); the i-th joins each piece's i-th, or its
// best where it has fewer.
void Transcriber::join(Transcription& r, Pieces& p) const {
  if (p.nbest.size() == 1) {  // a whole file
    r.nbest = std::move(p.nbest[0]);
  } else {
    size_t ranks = 0;
    for (const auto& nbest : p.nbest) ranks = std::max(ranks, nbest.size());
    r.nbest.clear();
    for (size_t rank = 0; rank < ranks; ++rank) {
      std::vector<Hypothesis> pieces;
      std::vector<double> offsets;
      for (size_t piece = 0; piece < p.nbest.size(); ++piece) {
        if (p.nbest[piece].empty()) continue;
        pieces.push_back(p.nbest[piece][std::min(rank, p.nbest[piece].size() - 1)]);
        offsets.push_back(p.offsets[piece]);
      }
      r.nbest.push_back(joinHypotheses(pieces, offsets, decoder_.config()));
    }
  }
  for (Hypothesis& h : r.nbest)  // the last frame may reach past the end of the audio
    for (DecodedWord& w : h.words) w.end_seconds = std::min(w.end_seconds, r.duration);
}

}  // namespace ds2rt::tools
