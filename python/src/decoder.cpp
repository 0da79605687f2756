// CTC decoding (greedy, prefix beam search with an ARPA word LM and hotwords) and WER/CER.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include "bindings.h"
#include "ds2rt/decoder.h"
#include "ds2rt/error.h"

namespace ds2rt::python {

using namespace nb::literals;

namespace {

// One utterance's posteriors (frames x classes) as a float32 copy when needed; the returned tensor
// owns or views the data the Posteriors point to.
std::pair<HostTensor, Posteriors> posteriors(const HostTensor& probs) {
  check(probs.rank() == 2, "posteriors must be frames x classes, got ", toString(probs.shape()),
        " (pass lengths too for a batch)");
  HostTensor f = probs.toFloat32();
  const Posteriors p{f.floats(), f.dim(0), f.dim(1)};
  return {std::move(f), p};
}

void bindLanguageModel(nb::module_& m) {
  using LM = LanguageModel;
  nb::class_<LM> lm(m, "LanguageModel", "An n-gram word language model from an ARPA file (plain or gzip).");
  nb::class_<LM::State>(lm, "State", "The words an n-gram state remembers, most recent last.")
      .def_ro("words", &LM::State::words)
      .def(
          "__eq__",
          [](const LM::State& a, nb::handle other) {
            const LM::State* b = nullptr;
            return nb::try_cast(other, b) && b && a == *b;
          },
          "other"_a.none());
  lm.def_static(
        "load_arpa", [](const std::filesystem::path& path) { return LM::loadArpa(pathString(path)); }, "path"_a,
        nb::call_guard<nb::gil_scoped_release>())
      .def_static("parse_arpa", &LM::parseArpa, "text"_a, "name"_a = "ARPA text")
      .def_prop_ro("order", &LM::order)
      .def_prop_ro("vocabulary_size", &LM::vocabularySize, "Words besides <s>, </s> and <unk>.")
      .def("__contains__", &LM::contains, "word"_a)
      .def("is_word_prefix", &LM::isWordPrefix, "prefix"_a)
      .def("begin_sentence", &LM::beginSentence)
      .def("null_context", &LM::nullContext)
      .def(
          "score",
          [](const LM& model, const LM::State& in, std::string_view word) {
            LM::State out;
            const float log10p = model.score(in, word, out);
            return std::make_pair(log10p, out);
          },
          "state"_a, "word"_a, "(log10 P(word | state), the next state), as KenLM's BaseScore.")
      .def("sentence_score", &LM::sentenceScore, "sentence"_a, "bos"_a = true, "eos"_a = true,
           "log10 P of space-separated words (kenlm.Model.score).");
}

void bindConfigs(nb::module_& m) {
  nb::class_<Hotword>(m, "Hotword")
      .def(nb::init<std::string, double>(), "word"_a, "boost"_a = Hotword{}.boost)
      .def_rw("word", &Hotword::word)
      .def_rw("boost", &Hotword::boost)
      .def("__repr__", [](const Hotword& h) { return cat("Hotword('", h.word, "', ", h.boost, ")"); });
  m.def("parse_hotword", &parseHotword, "spec"_a, "'WORD:BOOST' (or 'WORD' with the default boost).");

  const BeamSearchConfig b;
  using B = BeamSearchConfig;
  nb::class_<B>(m, "BeamSearchConfig", "Prefix beam search; alpha/beta/unk_score_offset apply with an LM.")
      .def(
          "__init__",
          [](B* self, int beam_width, int cutoff_top_n, double cutoff_prob, double token_min_logp,
             double beam_prune_logp, int nbest, double alpha, double beta, double unk_score_offset,
             bool lm_score_boundary, std::vector<Hotword> hotwords) {
            construct(self, B{beam_width, cutoff_top_n, cutoff_prob, token_min_logp, beam_prune_logp, nbest, alpha,
                              beta, unk_score_offset, lm_score_boundary, std::move(hotwords)});
          },
          "beam_width"_a = b.beam_width, "cutoff_top_n"_a = b.cutoff_top_n, "cutoff_prob"_a = b.cutoff_prob,
          "token_min_logp"_a = b.token_min_logp, "beam_prune_logp"_a = b.beam_prune_logp, "nbest"_a = b.nbest,
          "alpha"_a = b.alpha, "beta"_a = b.beta, "unk_score_offset"_a = b.unk_score_offset,
          "lm_score_boundary"_a = b.lm_score_boundary, "hotwords"_a = b.hotwords)
      .def_rw("beam_width", &B::beam_width)
      .def_rw("cutoff_top_n", &B::cutoff_top_n)
      .def_rw("cutoff_prob", &B::cutoff_prob)
      .def_rw("token_min_logp", &B::token_min_logp)
      .def_rw("beam_prune_logp", &B::beam_prune_logp)
      .def_rw("nbest", &B::nbest)
      .def_rw("alpha", &B::alpha, "LM weight on ln P.")
      .def_rw("beta", &B::beta, "Word insertion bonus.")
      .def_rw("unk_score_offset", &B::unk_score_offset)
      .def_rw("lm_score_boundary", &B::lm_score_boundary)
      .def_rw("hotwords", &B::hotwords)
      .def("validate", &B::validate);

  nb::enum_<PosteriorKind>(m, "PosteriorKind")
      .value("PROBABILITIES", PosteriorKind::kProbabilities)
      .value("LOG_PROBABILITIES", PosteriorKind::kLogProbabilities);
  const DecoderConfig d;
  using D = DecoderConfig;
  nb::class_<D>(m, "DecoderConfig")
      .def(
          "__init__",
          [](D* self, std::vector<std::string> labels, int blank_index, std::string word_separator,
             double frame_seconds, PosteriorKind input, BeamSearchConfig beam) {
            construct(self, D{std::move(labels), blank_index, std::move(word_separator), frame_seconds, input,
                              std::move(beam)});
          },
          "labels"_a, "blank_index"_a = d.blank_index, "word_separator"_a = d.word_separator,
          "frame_seconds"_a = d.frame_seconds, "input"_a = d.input, "beam"_a = d.beam)
      .def_rw("labels", &D::labels, "Class index -> text.")
      .def_rw("blank_index", &D::blank_index)
      .def_rw("word_separator", &D::word_separator)
      .def_rw("frame_seconds", &D::frame_seconds, "One output frame (DeepSpeech2: 10 ms hop x time stride 2).")
      .def_rw("input", &D::input)
      .def_rw("beam", &D::beam)
      .def("validate", &D::validate);
}

void bindResults(nb::module_& m) {
  nb::class_<DecodedChar>(m, "DecodedChar")
      .def_ro("label", &DecodedChar::label)
      .def_ro("start_frame", &DecodedChar::start_frame)
      .def_ro("end_frame", &DecodedChar::end_frame)
      .def_ro("confidence", &DecodedChar::confidence);
  nb::class_<DecodedWord>(m, "DecodedWord")
      .def_ro("text", &DecodedWord::text)
      .def_ro("start_frame", &DecodedWord::start_frame)
      .def_ro("end_frame", &DecodedWord::end_frame)
      .def_ro("start_seconds", &DecodedWord::start_seconds)
      .def_ro("end_seconds", &DecodedWord::end_seconds)
      .def_ro("confidence", &DecodedWord::confidence)
      .def("__repr__", [](const DecodedWord& w) {
        return cat("DecodedWord('", w.text, "', ", w.start_seconds, "-", w.end_seconds, " s)");
      });
  nb::class_<Hypothesis>(m, "Hypothesis")
      .def_ro("text", &Hypothesis::text)
      .def_ro("chars", &Hypothesis::chars)
      .def_ro("words", &Hypothesis::words)
      .def_ro("acoustic_score", &Hypothesis::acoustic_score)
      .def_ro("score", &Hypothesis::score)
      .def_ro("confidence", &Hypothesis::confidence)
      .def("__str__", [](const Hypothesis& h) { return h.text; })
      .def("__repr__", [](const Hypothesis& h) { return cat("Hypothesis('", h.text, "', score=", h.score, ")"); });
}

void bindCtcDecoder(nb::module_& m) {
  using C = CtcDecoder;
  nb::class_<C>(m, "CtcDecoder", "Greedy and beam-search CTC decoding; one decoder serves many threads.")
      .def(nb::init<DecoderConfig, std::optional<LanguageModel>>(), "config"_a, "lm"_a = nb::none())
      .def(
          "greedy",
          [](const C& c, const HostTensor& probs) {
            const auto [data, p] = posteriors(probs);
            nb::gil_scoped_release release;
            return c.greedy(p);
          },
          "probs"_a, "One utterance: frames x classes.")
      .def("greedy", nb::overload_cast<const HostTensor&, const HostTensor&>(&C::greedy, nb::const_), "probs"_a,
           "lengths"_a, nb::call_guard<nb::gil_scoped_release>(),
           "A batch as the engine returns it: probs N x T x C, lengths N.")
      .def(
          "beam_search",
          [](const C& c, const HostTensor& probs) {
            const auto [data, p] = posteriors(probs);
            nb::gil_scoped_release release;
            return c.beamSearch(p);
          },
          "probs"_a, "One utterance: the N-best hypotheses, best first.")
      .def("beam_search", nb::overload_cast<const HostTensor&, const HostTensor&>(&C::beamSearch, nb::const_),
           "probs"_a, "lengths"_a, nb::call_guard<nb::gil_scoped_release>(), "A batch: N-best lists per utterance.")
      .def_prop_ro("config", [](const C& c) { return c.config(); })
      .def_prop_ro("language_model", [](const C& c) {
        return c.languageModel() ? std::optional<LanguageModel>(*c.languageModel()) : std::nullopt;
      });
  m.def(
      "join_hypotheses",
      [](const std::vector<Hypothesis>& pieces, const std::vector<double>& offsets, const DecoderConfig& config) {
        return joinHypotheses(pieces, offsets, config);
      },
      "pieces"_a, "offsets_seconds"_a, "config"_a,
      "One hypothesis for a recording decoded in consecutive pieces (split_at_pauses), piece i starting "
      "offsets_seconds[i] into it: texts joined by a space, frames and times from its start, scores added.");
}

void bindErrorRates(nb::module_& m) {
  nb::class_<EditCounts>(m, "EditCounts", "Levenshtein alignment counts, as jiwer reports them.")
      .def(nb::init<>())
      .def_rw("hits", &EditCounts::hits)
      .def_rw("substitutions", &EditCounts::substitutions)
      .def_rw("deletions", &EditCounts::deletions)
      .def_rw("insertions", &EditCounts::insertions)
      .def_prop_ro("reference_length", &EditCounts::referenceLength)
      .def_prop_ro("errors", &EditCounts::errors)
      .def("rate", &EditCounts::rate, "errors / reference length (the insertion count for an empty reference).")
      .def("__add__", [](EditCounts a, const EditCounts& b) { return a += b; })
      .def("__repr__", [](const EditCounts& e) {
        return cat("EditCounts(hits=", e.hits, ", substitutions=", e.substitutions, ", deletions=", e.deletions,
                   ", insertions=", e.insertions, ")");
      });
  m.def("word_edits", &wordEdits, "reference"_a, "hypothesis"_a);
  m.def("char_edits", &charEdits, "reference"_a, "hypothesis"_a);
  m.def("word_error_rate", &wordErrorRate, "reference"_a, "hypothesis"_a, "WER as jiwer computes it.");
  m.def("char_error_rate", &charErrorRate, "reference"_a, "hypothesis"_a, "CER as jiwer computes it.");
}

}  // namespace

void bindDecoder(nb::module_& m) {
  bindLanguageModel(m);
  bindConfigs(m);
  bindResults(m);
  bindCtcDecoder(m);
  bindErrorRates(m);
}

}  // namespace ds2rt::python
