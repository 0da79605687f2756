// CTC prefix beam search with a word LM, hotwords and pruning, step for step as pyctcdecode 0.5's
// BeamSearchDecoderCTC: a beam is (prefix, last label consumed); beams that agree on both merge
// (log-sum-exp, in the order pyctcdecode visits them: labels, then beams best first); beams are
// ranked by acoustic score + cumulative word scores + a partial-word term; a prefix keeps one
// separator between words. Texts and scores match pyctcdecode's; word frames follow the most
// probable path of each merge instead of the last one merged (see takePath).
#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>

#include "ctc/decoders.h"
#include "ctc/hotwords.h"
#include "ctc/utf8.h"
#include "ctc/word_timing.h"

namespace ds2rt::detail {
namespace {

constexpr int kNoLabel = -1;  // no frame consumed yet
constexpr size_t kAverageWordLength = 6;  // pyctcdecode's AVG_TOKEN_LEN: longer unknown partial words cost more
const double kLnOf10 = 1.0 / std::log10(std::exp(1.0));  // pyctcdecode's LOG_BASE_CHANGE_FACTOR, same rounding

// pyctcdecode's _sum_log_scores; the same formula (not log1p) keeps sums bit-identical.
double sumLogScores(double a, double b) {
  return a >= b ? a + std::log(1 + std::exp(b - a)) : b + std::log(1 + std::exp(a - b));
}

// Every prefix reached, as a trie of labels, so a prefix is one integer. A node's string is the
// normalised text: words joined by one separator, plus a trailing one once a word is completed.
class PrefixTree {
 public:
  static constexpr uint32_t kRoot = 0;
  PrefixTree() {
    nodes_.push_back({kRoot, kNoLabel});
    children_.reserve(1 << 16);
  }

  uint32_t child(uint32_t parent, int label) {
    const uint64_t key = (static_cast<uint64_t>(parent) << 32) | static_cast<uint32_t>(label);
    auto [it, added] = children_.try_emplace(key, static_cast<uint32_t>(nodes_.size()));
    if (added) nodes_.push_back({parent, label});
    return it->second;
  }
  uint32_t parent(uint32_t node) const { return nodes_[node].parent; }
  int label(uint32_t node) const { return nodes_[node].label; }

 private:
  struct Node {
    uint32_t parent;
    int label;
  };
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, uint32_t> children_;
};

struct Beam {
  uint32_t node = PrefixTree::kRoot;  // the prefix, partial word included
  uint32_t text = PrefixTree::kRoot;  // its completed words only
  int last_label = kNoLabel;
  int32_t emission = -1;  // the last emitted label's record (Emission arena), -1: none
  double logit = 0;       // ln P of the prefix over the frames so far
};

// What a candidate does to its source beam's path; applied only to the survivors of pruning.
enum class PathOp : uint8_t { kKeep, kExtendLast, kAppend };

struct Candidate {
  Beam beam;
  PathOp op = PathOp::kKeep;
  float prob = 0;         // posterior of the label at this frame
  double path_logit = 0;  // ln P of the contributor whose path a merged candidate keeps
  double score = 0;
};

// Word times follow the most probable contributor of a merge. (pyctcdecode keeps the last one
// merged, usually the least probable, so its word frames can be a frame or two off the best path.)
void takePath(Candidate& to, const Candidate& from) {
  to.beam.emission = from.beam.emission;
  to.op = from.op;
  to.prob = from.prob;
  to.path_logit = from.path_logit;
}

struct Emission {
  int32_t parent;
  DecodedChar c;
};

// Cumulative word scores of a completed text.
struct TextScore {
  double lm = 0;   // sum of alpha * ln P(word | history) + beta
  double hot = 0;  // sum of hotword boosts
  LanguageModel::State state;
};

class BeamSearch {
 public:
  BeamSearch(const LogPosteriors& p, const DecoderConfig& config, const LanguageModel* lm)
      : p_(p), config_(config), cfg_(config.beam), lm_(lm), hotwords_(config.beam.hotwords),
        separator_(separatorLabel(config)) {}

  std::vector<Hypothesis> run() {
    std::vector<Beam> beams(1);
    for (int64_t t = 0; t < p_.frames; ++t) beams = step(beams, t);
    return finish(beams);
  }

 private:
  bool isMidWord(uint32_t node) const { return node != PrefixTree::kRoot && tree_.label(node) != separator_; }

  // The word ending at `node` and the completed text before it.
  std::pair<uint32_t, std::string> wordBefore(uint32_t node) const {
    std::vector<int> labels;
    while (node != PrefixTree::kRoot && tree_.label(node) != separator_) {
      labels.push_back(tree_.label(node));
      node = tree_.parent(node);
    }
    std::string word;
    for (auto it = labels.rbegin(); it != labels.rend(); ++it) word += config_.labels[static_cast<size_t>(*it)];
    return {node == PrefixTree::kRoot ? node : tree_.parent(node), word};
  }

  // pyctcdecode's LanguageModel.score: alpha * ln(10) * (log10 P + unknown offset) + beta.
  double wordScore(const LanguageModel::State& in, const std::string& word, bool last, LanguageModel::State& out) const {
    double score = lm_->score(in, word, out);
    if (!lm_->contains(word)) score += cfg_.unk_score_offset;
    if (last && cfg_.lm_score_boundary) {
      LanguageModel::State end;
      score += lm_->score(out, "</s>", end);
    }
    return cfg_.alpha * score * kLnOf10 + cfg_.beta;
  }

  const TextScore& textScore(uint32_t text) {
    if (auto it = text_scores_.find(text); it != text_scores_.end()) return it->second;
    TextScore score;
    if (text == PrefixTree::kRoot) {
      if (lm_) score.state = cfg_.lm_score_boundary ? lm_->beginSentence() : lm_->nullContext();
    } else {
      const auto [previous, word] = wordBefore(text);
      const TextScore& before = textScore(previous);
      score.hot = before.hot + hotwords_.wordBoost(word);
      if (lm_) score.lm = before.lm + wordScore(before.state, word, false, score.state);
    }
    return text_scores_.emplace(text, std::move(score)).first->second;
  }

  // The term for an unfinished word: a hotword's share of its boost, else the LM's penalty when
  // no vocabulary word starts with it (unscaled by alpha, as pyctcdecode has it).
  double partialScore(uint32_t node) {
    if (auto it = partial_scores_.find(node); it != partial_scores_.end()) return it->second;
    const std::string partial = wordBefore(node).second;
    double score = 0;
    if (hotwords_.startsHotword(partial)) {
      score = hotwords_.partialBoost(partial);
    } else if (lm_) {
      score = cfg_.unk_score_offset * (lm_->isWordPrefix(partial) ? 0 : 1);
      const size_t length = utf8Length(partial);
      if (length > kAverageWordLength) score = score * static_cast<double>(length) / kAverageWordLength;
    }
    return partial_scores_.emplace(node, score).first->second;
  }

  double rank(const Beam& b) {
    const TextScore& text = textScore(b.text);
    if (!lm_) return b.logit + text.hot + (isMidWord(b.node) ? partialScore(b.node) : 0.0);
    double score = text.lm + text.hot;
    if (isMidWord(b.node)) score += partialScore(b.node);
    return b.logit + score;
  }

  // Labels tried at a frame, ascending: ctcdecode's cutoff (most probable first until cutoff_prob
  // or cutoff_top_n), then pyctcdecode's floor token_min_logp, which always lets the best through.
  std::vector<int> labelsAt(const double* row) const {
    const auto classes = static_cast<int>(p_.classes);
    const int best = static_cast<int>(std::max_element(row, row + classes) - row);
    std::vector<bool> allowed(static_cast<size_t>(classes), true);
    if (cfg_.cutoff_prob < 1.0 || cfg_.cutoff_top_n < classes) {
      std::vector<int> order(static_cast<size_t>(classes));
      for (int i = 0; i < classes; ++i) order[static_cast<size_t>(i)] = i;
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return row[a] > row[b]; });
      allowed.assign(allowed.size(), false);
      double cumulative = 0;
      for (int n = 0; n < classes; ++n) {
        allowed[static_cast<size_t>(order[static_cast<size_t>(n)])] = true;
        cumulative += std::exp(row[order[static_cast<size_t>(n)]]);
        if (cumulative >= cfg_.cutoff_prob || n + 1 >= cfg_.cutoff_top_n) break;
      }
    }
    std::vector<int> labels;
    for (int i = 0; i < classes; ++i)
      if (allowed[static_cast<size_t>(i)] && (row[i] >= cfg_.token_min_logp || i == best)) labels.push_back(i);
    return labels;
  }

  Candidate extend(const Beam& from, int label, double logp) {
    Candidate c{from};
    c.beam.last_label = label;
    c.beam.logit = from.logit + logp;
    c.path_logit = c.beam.logit;
    c.prob = static_cast<float>(std::exp(logp));
    if (label == config_.blank_index || from.last_label == label) {
      if (label != config_.blank_index && label != separator_) c.op = PathOp::kExtendLast;
    } else if (label == separator_) {
      if (isMidWord(from.node)) {  // completes a word; repeated or leading separators change nothing
        c.beam.text = from.node;
        c.beam.node = tree_.child(from.node, label);
        c.op = PathOp::kAppend;
      }
    } else {
      c.beam.node = tree_.child(from.node, label);
      c.op = PathOp::kAppend;
    }
    return c;
  }

  int32_t applyPath(const Candidate& c, int64_t t) {
    const auto frame = static_cast<int>(t);
    if (c.op == PathOp::kKeep) return c.beam.emission;
    if (c.op == PathOp::kExtendLast) {
      Emission e = emissions_[static_cast<size_t>(c.beam.emission)];
      e.c.end_frame = frame + 1;
      e.c.confidence = std::max(e.c.confidence, c.prob);
      emissions_.push_back(e);
    } else {
      emissions_.push_back({c.beam.emission, {c.beam.last_label, frame, frame + 1, c.prob}});
    }
    return static_cast<int32_t>(emissions_.size() - 1);
  }

  // Keeps candidates within -beam_prune_logp of the best, then the best beam_width, stably.
  std::vector<size_t> prune(const std::vector<Candidate>& candidates) const {
    double best = -INFINITY;
    for (const Candidate& c : candidates) best = std::max(best, c.score);
    std::vector<size_t> kept;
    for (size_t i = 0; i < candidates.size(); ++i)
      if (candidates[i].score >= best + cfg_.beam_prune_logp) kept.push_back(i);
    std::stable_sort(kept.begin(), kept.end(), [&](size_t a, size_t b) { return candidates[a].score > candidates[b].score; });
    if (kept.size() > static_cast<size_t>(cfg_.beam_width)) kept.resize(static_cast<size_t>(cfg_.beam_width));
    return kept;
  }

  std::vector<Beam> step(const std::vector<Beam>& beams, int64_t t) {
    const double* row = p_.row(t);
    std::vector<Candidate>& candidates = candidates_;
    std::unordered_map<uint64_t, size_t>& index = candidate_index_;  // (prefix, last label) -> candidate
    candidates.clear();
    index.clear();
    for (int label : labelsAt(row)) {
      for (const Beam& beam : beams) {
        Candidate c = extend(beam, label, row[label]);
        const uint64_t key = (static_cast<uint64_t>(c.beam.node) << 32) | static_cast<uint32_t>(label);
        auto [it, added] = index.try_emplace(key, candidates.size());
        if (added) {
          candidates.push_back(c);
        } else {
          Candidate& merged = candidates[it->second];
          merged.beam.logit = sumLogScores(merged.beam.logit, c.beam.logit);
          if (c.path_logit > merged.path_logit) takePath(merged, c);
        }
      }
    }
    for (Candidate& c : candidates) c.score = rank(c.beam);
    std::vector<Beam> next;
    for (size_t i : prune(candidates)) {
      next.push_back(candidates[i].beam);
      next.back().emission = applyPath(candidates[i], t);
    }
    return next;
  }

  // End of utterance: the partial word is completed and </s> scored. Beams are merged by their
  // completed text; as in pyctcdecode, the last one of a merge decides what the last word is, and
  // a beam that ended on a separator scores an empty word there.
  std::vector<Hypothesis> finish(const std::vector<Beam>& beams) {
    struct Final {
      Beam last;  // the last beam merged in: its split into text and last word is scored
      uint32_t text;
      double logit;
      int32_t emission;  // the most probable contributor's path
      double path_logit;
      double score = 0;
    };
    std::vector<Final> finals;
    std::unordered_map<uint32_t, size_t> index;
    for (const Beam& b : beams) {
      const uint32_t text = isMidWord(b.node) ? b.node : b.text;
      auto [it, added] = index.try_emplace(text, finals.size());
      if (added) {
        finals.push_back({b, text, b.logit, b.emission, b.logit});
      } else {
        Final& merged = finals[it->second];
        merged.logit = sumLogScores(merged.logit, b.logit);
        merged.last = b;
        if (b.logit > merged.path_logit) {
          merged.emission = b.emission;
          merged.path_logit = b.logit;
        }
      }
    }
    std::vector<Candidate> ranked;  // reuses prune(): scores only
    for (Final& f : finals) {
      const std::string word = isMidWord(f.last.node) ? wordBefore(f.last.node).second : std::string();
      const TextScore& before = textScore(f.last.text);
      const double hot = before.hot + hotwords_.wordBoost(word);
      double words = hot;
      if (lm_) {
        LanguageModel::State unused;
        words = (before.lm + wordScore(before.state, word, true, unused)) + hot;
      }
      f.score = f.logit + words;
      ranked.push_back({});
      ranked.back().score = f.score;
    }
    std::vector<Hypothesis> out;
    for (size_t i : prune(ranked)) {
      if (out.size() == static_cast<size_t>(cfg_.nbest)) break;
      out.push_back(hypothesis(finals[i].emission, finals[i].logit, finals[i].score));
    }
    return out;
  }

  Hypothesis hypothesis(int32_t emission, double logit, double score) const {
    std::vector<DecodedChar> path;
    for (int32_t e = emission; e >= 0; e = emissions_[static_cast<size_t>(e)].parent)
      path.push_back(emissions_[static_cast<size_t>(e)].c);
    std::reverse(path.begin(), path.end());
    Hypothesis h;
    h.acoustic_score = logit;
    h.score = score;
    fillText(h, path, config_, separator_);
    return h;
  }

  const LogPosteriors& p_;
  const DecoderConfig& config_;
  const BeamSearchConfig& cfg_;
  const LanguageModel* lm_;
  HotwordScorer hotwords_;
  int separator_;
  PrefixTree tree_;
  std::vector<Emission> emissions_;
  std::vector<Candidate> candidates_;  // per frame; kept to reuse their memory
  std::unordered_map<uint64_t, size_t> candidate_index_;
  std::unordered_map<uint32_t, TextScore> text_scores_;  // by completed-text node
  std::unordered_map<uint32_t, double> partial_scores_;  // by partial-word node
};

}  // namespace

std::vector<Hypothesis> beamSearchDecode(const LogPosteriors& p, const DecoderConfig& config, const LanguageModel* lm) {
  return BeamSearch(p, config, lm).run();
}

}  // namespace ds2rt::detail
