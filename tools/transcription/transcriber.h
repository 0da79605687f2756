// Audio files to text: load (libsndfile, resampled to the model's rate) -> features (the
// model's spect config) -> batches -> Engine -> CTC decoder.
//
//   Transcriber t(engine, model.config(), {.batch_size = 8});
//   for (const Transcription& r : t.transcribe({"a.wav", "b.flac"})) std::cout << r.text() << "\n";
//
// Batching: files are read a window of 8 batches at a time, sorted by length within the window
// (longest first), and each batch is padded to its longest utterance and run through the engine
// once. Results come back in the order of the files. A file that cannot be read or decoded gets
// an error and the others go on.
//
// Long files: a file longer than max_segment seconds is cut at pauses (splitAtPauses) and each
// piece is an utterance of its own (normalised on its own, as the model's training utterances
// were); the pieces' hypotheses are joined back, word times counted from the file's start. With
// several hypotheses (nbest), the i-th of a file joins each piece's i-th (its best if it has fewer).
//
// Word times: one output frame lasts window_stride x the network's time stride. The stride is
// measured once, when the Transcriber is made, by running the engine on 64 frames of silence
// (input frames / output frames, rounded: 2 for DeepSpeech2, whose first convolution has stride 2
// in time). An engine built with --log-probs (output "log_probs") is decoded as log-probabilities.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ds2rt/audio.h"
#include "ds2rt/decoder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/engine.h"

namespace ds2rt::tools {

struct TranscriberConfig {
  int batch_size = 8;
  int threads = 0;          // engine and file-reading threads (0: every core)
  double max_segment = 0;   // seconds: longer files are transcribed in pieces cut at pauses (0: whole)
  bool beam = false;        // prefix beam search; false: greedy
  BeamSearchConfig search;  // beam width, pruning, alpha, beta, hotwords, nbest (beam only)
  std::string lm_path;      // ARPA file, "" for none (beam only)

  void validate() const;
};

struct Transcription {
  std::string file;
  std::string error;              // non-empty when the file failed; names the file
  double duration = 0;            // seconds of audio
  int source_rate = 0;            // the file's sample rate (before resampling to the model's)
  std::string warning;            // non-empty when the result may be poor for a known reason (names the file)
  std::vector<Hypothesis> nbest;  // best first; one for greedy

  bool ok() const { return error.empty(); }
  std::string text() const { return nbest.empty() ? std::string() : nbest[0].text; }
};

class Transcriber {
 public:
  Transcriber(Engine engine, const DeepSpeech2Config& model, TranscriberConfig config);

  // `on_done` is called once per file as soon as its result is known (not in file order).
  using Callback = std::function<void(const Transcription&)>;
  std::vector<Transcription> transcribe(const std::vector<std::string>& files, const Callback& on_done = {});

  const TranscriberConfig& config() const { return config_; }
  const DecoderConfig& decoderConfig() const { return decoder_.config(); }
  const FeatureConfig& featureConfig() const { return features_.config(); }
  int timeStride() const { return probe_.time_stride; }

 private:
  struct Probe {
    std::string output = "probs";  // or "log_probs" (an engine built with --log-probs)
    PosteriorKind kind = PosteriorKind::kProbabilities;
    int time_stride = 2;
  };
  struct Utterance {
    size_t index;  // into the results
    size_t piece;  // of the file (0 when it is whole)
    HostTensor features;
  };
  // The pieces of each file decoded so far, until all are there and joined into its result.
  struct Pieces {
    size_t done = 0;
    std::vector<std::vector<Hypothesis>> nbest;  // per piece
    std::vector<double> offsets;                 // seconds from the file's start, per piece
  };
  static Probe probeEngine(const Engine& engine, ExecutionContext& context, const FeatureConfig& features);
  static CtcDecoder makeDecoder(const DeepSpeech2Config& model, const TranscriberConfig& config, const Probe& probe);
  std::vector<Utterance> loadWindow(std::vector<Transcription>& results, std::vector<Pieces>& pieces, size_t begin,
                                    size_t end);
  // Returns the files whose last piece this batch decoded (their results are complete).
  std::vector<size_t> runBatch(std::span<const Utterance> batch, std::vector<Transcription>& results,
                               std::vector<Pieces>& pieces);
  void join(Transcription& result, Pieces& pieces) const;

  TranscriberConfig config_;
  Engine engine_;
  ExecutionContext context_;
  FeatureExtractor features_;
  Probe probe_;
  CtcDecoder decoder_;
};

}  // namespace ds2rt::tools
