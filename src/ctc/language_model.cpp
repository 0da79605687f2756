// LanguageModel: loading and KenLM-compatible scoring (BaseScore semantics, float arithmetic as
// KenLM does it, so scores match the kenlm Python module bit for bit on the same ARPA file).
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "ctc/language_model_impl.h"
#include "ds2rt/error.h"

namespace ds2rt {
namespace {

constexpr std::string_view kKenlmBinaryMagic = "mmap lm ";

// The whole file, decompressed when it is gzip (zlib reads plain files unchanged).
std::string readMaybeGzipped(const std::string& path) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) fail("cannot open language model '", path, "': ", std::strerror(errno));
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const int got = gzread(file.get(), buffer, sizeof buffer);
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file.get(), &code);
      fail("cannot read language model '", path, "': ", code == Z_ERRNO ? std::strerror(errno) : message);
    }
    if (got == 0) break;
    text.append(buffer, static_cast<size_t>(got));
  }
  return text;
}

}  // namespace

LanguageModel::LanguageModel(std::shared_ptr<const detail::LanguageModelData> impl) : impl_(std::move(impl)) {}

LanguageModel LanguageModel::loadArpa(const std::string& path) {
  const std::string text = readMaybeGzipped(path);
  if (text.starts_with(kKenlmBinaryMagic))
    fail(path, ": a KenLM binary model; ds2rt reads ARPA files only (no Debian or PyPI package provides a "
               "KenLM binary reader for C++): pass the .arpa file the binary was built from");
  return LanguageModel(detail::readArpa(text, path));
}

LanguageModel LanguageModel::parseArpa(std::string_view text, const std::string& name) {
  return LanguageModel(detail::readArpa(text, name));
}

int LanguageModel::order() const { return impl_->order(); }
size_t LanguageModel::vocabularySize() const { return impl_->vocabulary.size() - 3; }

bool LanguageModel::contains(std::string_view word) const {
  auto it = impl_->vocabulary.find(word);
  return it != impl_->vocabulary.end() && it->second != impl_->unk;
}

bool LanguageModel::isWordPrefix(std::string_view prefix) const {
  const auto& words = impl_->sorted_words;
  auto it = std::lower_bound(words.begin(), words.end(), prefix,
                             [](const std::string& w, std::string_view p) { return std::string_view(w) < p; });
  return it != words.end() && it->starts_with(prefix);
}

LanguageModel::State LanguageModel::beginSentence() const {
  return impl_->order() > 1 ? State{{impl_->bos}} : State{};
}
LanguageModel::State LanguageModel::nullContext() const { return {}; }

// The longest n-gram ending in `word` is found by extending backwards through the history and
// stopping at the first missing one (as KenLM does); the backoffs of the longer contexts are
// then added, shortest first, in float.
float LanguageModel::score(const State& in, std::string_view word, State& out) const {
  const detail::LanguageModelData& lm = *impl_;
  const size_t max_context = static_cast<size_t>(lm.order() - 1);
  const size_t context = std::min(in.words.size(), max_context);
  const uint32_t* history = in.words.data() + (in.words.size() - context);  // the usable tail

  std::vector<uint32_t> gram(history, history + context);
  gram.push_back(lm.id(word));
  const uint32_t* last = gram.data() + context;  // the word itself

  const auto* unigram = lm.tables[0].find({last, 1});
  float prob = unigram ? unigram->prob : lm.tables[0].find({&lm.unk, 1})->prob;
  size_t matched = 1;
  for (size_t k = 1; k <= context; ++k) {
    const auto* entry = lm.tables[k].find({last - k, k + 1});
    if (!entry) break;
    prob = entry->prob;
    matched = k + 1;
  }
  for (size_t j = matched; j <= context; ++j) {
    const auto* ctx = lm.tables[j - 1].find({history + (context - j), j});
    if (ctx) prob += ctx->backoff;
  }
  const size_t keep = std::min(matched, max_context);
  out.words.assign(last + 1 - keep, last + 1);
  return prob;
}

double LanguageModel::sentenceScore(std::string_view sentence, bool bos, bool eos) const {
  State state = bos ? beginSentence() : nullContext();
  State next;
  float total = 0;  // kenlm.Model.score accumulates in float too
  size_t i = 0;
  while (i < sentence.size()) {
    while (i < sentence.size() && sentence[i] == ' ') ++i;
    size_t j = i;
    while (j < sentence.size() && sentence[j] != ' ') ++j;
    if (j > i) {
      total += score(state, sentence.substr(i, j - i), next);
      state.words.swap(next.words);
    }
    i = j;
  }
  if (eos) total += score(state, "</s>", next);
  return total;
}

}  // namespace ds2rt
