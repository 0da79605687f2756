// CTC decoding of the engine's per-frame probabilities into text: greedy (best path) and prefix
// beam search with an n-gram word language model (KenLM-compatible ARPA files) and hotwords,
// N-best lists, word times and confidences; plus WER / CER.
//
// Beam search scores a prefix exactly as pyctcdecode 0.5 does (and checks against it in tests):
//   score = log P_acoustic                                 (natural log, summed over frames)
//         + sum over completed words of [alpha * ln P_LM(word | history) + beta]
//         + hotword boosts of completed words + a partial-word term (see BeamSearchConfig).
// ln P_LM = ln(10) * log10 P as KenLM computes it (full backoff, <s> at the start and </s> at the
// end when lm_score_boundary), plus unk_score_offset (log10 units) for words the LM lacks.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ds2rt/tensor.h"

namespace ds2rt {

namespace detail { struct LanguageModelData; }

// ---- Language model ---------------------------------------------------------------------------

// An n-gram word language model read from an ARPA file (plain or gzip-compressed), held as one
// hash table of word-id sequences per order. Immutable; copies share the tables, and one model
// may serve any number of decoders and threads.
class LanguageModel {
 public:
  // The words an n-gram state remembers (most recent last), as KenLM's State does.
  struct State {
    std::vector<uint32_t> words;
    bool operator==(const State&) const = default;
  };

  // Throws ds2rt::Error naming the file and line for malformed files (bad or missing counts,
  // truncated sections, non-numeric fields, unknown words in higher orders, no words at all).
  // KenLM's binary format is refused with a clear message: no registry package provides a reader.
  static LanguageModel loadArpa(const std::string& path);
  static LanguageModel parseArpa(std::string_view text, const std::string& name = "ARPA text");

  int order() const;
  size_t vocabularySize() const;  // words besides <s>, </s> and <unk>
  bool contains(std::string_view word) const;     // a word of the vocabulary (not <unk>)
  bool isWordPrefix(std::string_view prefix) const;  // some vocabulary word starts with it

  State beginSentence() const;  // after <s>
  State nullContext() const;    // no history
  // log10 P(word | in), KenLM's BaseScore: unknown words score as <unk>.
  float score(const State& in, std::string_view word, State& out) const;
  // log10 P of a whole sentence of space-separated words, with <s> and </s> (kenlm.Model.score).
  double sentenceScore(std::string_view sentence, bool bos = true, bool eos = true) const;

 private:
  explicit LanguageModel(std::shared_ptr<const detail::LanguageModelData> impl);
  std::shared_ptr<const detail::LanguageModelData> impl_;
};

// ---- Configuration ----------------------------------------------------------------------------

struct Hotword {
  std::string word;     // a word, or several separated by spaces (each boosted on its own)
  double boost = 10.0;  // added to the score of a prefix per occurrence (pyctcdecode's weight)
};
// "WORD:BOOST" (the CLI's --hotword); "WORD" alone gets the default boost.
Hotword parseHotword(const std::string& spec);

struct BeamSearchConfig {
  int beam_width = 100;
  // ctcdecode's candidate pruning per frame: the most probable labels until their probabilities
  // add up to cutoff_prob, at most cutoff_top_n of them (1.0 and >= label count: no pruning).
  int cutoff_top_n = 40;
  double cutoff_prob = 1.0;
  // pyctcdecode's pruning: labels below token_min_logp are skipped unless they are the frame's
  // best; prefixes more than -beam_prune_logp below the best one are dropped.
  double token_min_logp = -5.0;
  double beam_prune_logp = -10.0;
  int nbest = 1;  // hypotheses returned, best first

  // Used only with a language model (pyctcdecode's defaults).
  double alpha = 0.5;               // LM weight on ln P
  double beta = 1.5;                // word insertion bonus, per completed word
  double unk_score_offset = -10.0;  // log10 units added for an out-of-vocabulary word; a partial
                                    // word that no vocabulary word starts with adds it in ln units
  bool lm_score_boundary = true;    // score <s> ... </s>

  // A partial word that starts some hotword w adds boost(w) * len(partial) / len(w) (w: the
  // shortest such hotword) instead of the LM's partial-word term.
  std::vector<Hotword> hotwords;

  void validate() const;
};

enum class PosteriorKind : uint8_t { kProbabilities, kLogProbabilities };

struct DecoderConfig {
  std::vector<std::string> labels;  // class index -> text, e.g. "_", "'", "A", ..., "Z", " "
  int blank_index = 0;
  std::string word_separator = " ";  // the label between words; without it the text is one word
  double frame_seconds = 0.02;       // duration of one output frame (DS2: 10 ms hop x stride 2)
  PosteriorKind input = PosteriorKind::kProbabilities;
  BeamSearchConfig beam;

  void validate() const;
};

// ---- Results ----------------------------------------------------------------------------------

// One label of the text, with the frames [start_frame, end_frame) the path spent emitting it and
// its confidence: the highest posterior of that label over those frames.
struct DecodedChar {
  int label = 0;
  int start_frame = 0;
  int end_frame = 0;
  float confidence = 0;
};

struct DecodedWord {
  std::string text;
  int start_frame = 0;  // first frame of its first label
  int end_frame = 0;    // one past the last frame of its last label
  double start_seconds = 0;
  double end_seconds = 0;
  float confidence = 0;  // mean of its labels' confidences
};

struct Hypothesis {
  std::string text;                // words joined by single spaces
  std::vector<DecodedChar> chars;  // one per label of `text` (separators included)
  std::vector<DecodedWord> words;
  double acoustic_score = 0;  // ln P of the prefix over all frames (beam) or of the best path (greedy)
  double score = 0;           // ranking score: acoustic + LM + hotword terms
  float confidence = 0;       // mean of the words' confidences (0 without words)
};

// One utterance's posteriors: frames x classes, row-major (a view; the caller keeps the data).
struct Posteriors {
  std::span<const float> values;
  int64_t frames = 0;
  int64_t classes = 0;
};

// ---- Decoder ----------------------------------------------------------------------------------

// Decoding is const and keeps its working state per call: one decoder serves many threads.
class CtcDecoder {
 public:
  explicit CtcDecoder(DecoderConfig config, std::optional<LanguageModel> lm = std::nullopt);

  // Throw ds2rt::Error for a class count unlike the label count, NaN, or invalid values.
  Hypothesis greedy(const Posteriors& posteriors) const;
  std::vector<Hypothesis> beamSearch(const Posteriors& posteriors) const;  // N-best, best first

  // A batch as the engine returns it: probs N x T x C (float32), lengths N (int32 or int64).
  std::vector<Hypothesis> greedy(const HostTensor& probs, const HostTensor& lengths) const;
  std::vector<std::vector<Hypothesis>> beamSearch(const HostTensor& probs, const HostTensor& lengths) const;

  const DecoderConfig& config() const { return config_; }
  const LanguageModel* languageModel() const { return lm_ ? &*lm_ : nullptr; }

 private:
  DecoderConfig config_;
  std::optional<LanguageModel> lm_;
};

// One hypothesis for a recording decoded in consecutive pieces (splitAtPauses), piece i starting
// offsets_seconds[i] into it: the texts joined by a space (and the " " label, where there is one,
// between their chars), frames and times counted from the recording's start, scores added,
// confidence the mean of all words'.
Hypothesis joinHypotheses(std::span<const Hypothesis> pieces, std::span<const double> offsets_seconds,
                          const DecoderConfig& config);

// Splits a batch (N x T x C probabilities, N lengths) into per-utterance views, checking shapes.
std::vector<Posteriors> splitBatch(const HostTensor& probs, const HostTensor& lengths, size_t num_labels);

// ---- Error rates ------------------------------------------------------------------------------

// Levenshtein alignment counts, as jiwer reports them. Corpus rates: add the counts, then rate().
struct EditCounts {
  int64_t hits = 0;
  int64_t substitutions = 0;
  int64_t deletions = 0;
  int64_t insertions = 0;

  int64_t referenceLength() const { return hits + substitutions + deletions; }
  int64_t errors() const { return substitutions + deletions + insertions; }
  // errors / reference length; for an empty reference jiwer's convention: the insertion count.
  double rate() const;
  EditCounts& operator+=(const EditCounts& other);
};

// Words: split at whitespace. Characters: Unicode code points of the text with leading and
// trailing whitespace removed, inner spaces included (jiwer's default transforms).
EditCounts wordEdits(std::string_view reference, std::string_view hypothesis);
EditCounts charEdits(std::string_view reference, std::string_view hypothesis);
double wordErrorRate(std::string_view reference, std::string_view hypothesis);
double charErrorRate(std::string_view reference, std::string_view hypothesis);

}  // namespace ds2rt
