// ARPA reader: \data\ counts, then one \N-grams: section per order ("logprob words [backoff]",
// fields separated by spaces or tabs), then \end\. Every defect is an Error naming file and line.
#include <algorithm>
#include <charconv>
#include <cmath>

#include "ctc/language_model_impl.h"
#include "ds2rt/error.h"

namespace ds2rt::detail {
namespace {

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> splitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) fields.push_back(line.substr(i, j - i));
    i = j;
  }
  return fields;
}

class LineReader {
 public:
  LineReader(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  // Moves to the next line; false (with an empty line) at the end of the text.
  bool next() {
    if (pos_ >= text_.size()) {
      line_ = {};
      at_end_ = true;
      return false;
    }
    size_t end = text_.find('\n', pos_);
    terminated_ = end != std::string_view::npos;
    if (!terminated_) end = text_.size();
    line_ = trim(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    ++number_;
    return true;
  }
  // Moves past blank lines; false at the end of the text.
  bool skipBlank() {
    while (!at_end_ && line_.empty()) next();
    return !at_end_;
  }
  std::string_view line() const { return line_; }
  bool atEnd() const { return at_end_; }
  bool lineTerminated() const { return terminated_; }  // false for a last line without a newline
  const std::string& name() const { return name_; }

  template <typename... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    ds2rt::fail(name_, ":", number_, ": ", std::forward<Parts>(parts)...);
  }

 private:
  std::string_view text_;
  const std::string& name_;
  std::string_view line_;
  size_t pos_ = 0;
  size_t number_ = 0;
  bool at_end_ = false;
  bool terminated_ = true;
};

float parseFloat(std::string_view field, const LineReader& in, const char* what) {
  float value = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (ec != std::errc() || end != field.data() + field.size() || std::isnan(value))
    in.fail(what, " '", field, "' is not a number");
  return value;
}

size_t parseCount(std::string_view field, const LineReader& in) {
  size_t value = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (field.empty() || ec != std::errc() || end != field.data() + field.size())
    in.fail("bad count line '", in.line(), "' (expected 'ngram N=COUNT')");
  return value;
}

// "ngram N=COUNT" lines after \data\; leaves the reader on the first line after them.
std::vector<size_t> readCounts(LineReader& in) {
  while (in.next() && in.line() != "\\data\\") {}
  if (in.atEnd()) fail(in.name(), ": not an ARPA file: no \\data\\ line");
  std::vector<size_t> counts;
  while (in.next()) {
    std::string_view line = in.line();
    if (line.empty()) continue;
    if (!line.starts_with("ngram")) break;
    line = trim(line.substr(5));
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) in.fail("bad count line '", in.line(), "' (expected 'ngram N=COUNT')");
    const size_t n = parseCount(trim(line.substr(0, eq)), in);
    if (n != counts.size() + 1) in.fail("count line for order ", n, " where order ", counts.size() + 1, " was expected");
    counts.push_back(parseCount(trim(line.substr(eq + 1)), in));
  }
  if (counts.empty()) fail(in.name(), ": no 'ngram N=COUNT' lines after \\data\\");
  if (in.atEnd()) fail(in.name(), ": truncated: the file ends after the \\data\\ counts");
  if (counts[0] == 0) fail(in.name(), ": empty vocabulary: the file declares no unigrams");
  return counts;
}

uint32_t addWord(LanguageModelData& lm, std::string_view word, const LineReader& in) {
  const auto id = static_cast<uint32_t>(lm.vocabulary.size());
  if (!lm.vocabulary.emplace(std::string(word), id).second) in.fail("duplicate unigram '", word, "'");
  return id;
}

void readSection(LineReader& in, LanguageModelData& lm, int n, size_t declared) {
  const int order = lm.order();
  const auto header = cat("\\", n, "-grams:");
  if (!in.skipBlank()) fail(in.name(), ": truncated: the file ends before the ", header, " section");
  if (in.line() != header) in.fail("expected '", header, "', found '", in.line(), "'");

  detail::NGramTable& table = lm.tables[static_cast<size_t>(n - 1)];
  std::vector<uint32_t> ids(static_cast<size_t>(n));
  size_t found = 0;
  while (in.next() && !in.line().empty() && !in.line().starts_with('\\')) {
    if (!in.lineTerminated()) in.fail("truncated in the middle of a ", n, "-gram line");
    if (++found > declared) in.fail("more ", n, "-grams than the ", declared, " the \\data\\ section declares");
    const auto fields = splitFields(in.line());
    const size_t words = static_cast<size_t>(n);
    const bool with_backoff = fields.size() == words + 2 && n < order;
    if (fields.size() != words + 1 && !with_backoff)
      in.fail("a ", n, "-gram line needs a log10 probability, ", n, " word(s)",
              n < order ? " and an optional backoff" : "", "; found ", fields.size(), " field(s)");
    detail::NGramTable::Entry entry;
    entry.prob = parseFloat(fields[0], in, "probability");
    if (entry.prob > 0) in.fail("positive log10 probability ", fields[0]);
    if (with_backoff) entry.backoff = parseFloat(fields[words + 1], in, "backoff");
    for (size_t i = 0; i < words; ++i) {
      if (n == 1) {
        ids[i] = addWord(lm, fields[1], in);
      } else {
        auto it = lm.vocabulary.find(fields[i + 1]);
        if (it == lm.vocabulary.end()) in.fail("word '", fields[i + 1], "' is not among the unigrams");
        ids[i] = it->second;
      }
    }
    if (!table.insert(ids, entry)) in.fail("duplicate ", n, "-gram '", trim(in.line().substr(fields[0].size())), "'");
  }
  if (found != declared) {
    if (in.atEnd()) fail(in.name(), ": truncated: the ", header, " section ends after ", found, " of ", declared, " entries");
    in.fail("the ", header, " section has ", found, " entries, the \\data\\ section declares ", declared);
  }
}

// KenLM's conventions: <s> and </s> must exist; a missing <unk> gets log10 probability -100.
void finishVocabulary(LanguageModelData& lm) {
  const auto idOf = [&](const char* word) {
    auto it = lm.vocabulary.find(std::string_view(word));
    if (it == lm.vocabulary.end()) fail(lm.name, ": the unigrams lack ", word, " (sentence markers are required)");
    return it->second;
  };
  lm.bos = idOf("<s>");
  lm.eos = idOf("</s>");
  auto unk = lm.vocabulary.find(std::string_view("<unk>"));
  if (unk == lm.vocabulary.end()) {
    lm.unk = static_cast<uint32_t>(lm.vocabulary.size());
    lm.vocabulary.emplace("<unk>", lm.unk);
    const uint32_t ids[] = {lm.unk};
    lm.tables[0].insert(ids, {-100.0f, 0.0f});
  } else {
    lm.unk = unk->second;
  }
  for (const auto& [word, id] : lm.vocabulary)
    if (id != lm.unk) lm.sorted_words.push_back(word);
  std::sort(lm.sorted_words.begin(), lm.sorted_words.end());
  if (lm.vocabulary.size() <= 3) fail(lm.name, ": empty vocabulary: no words besides <s>, </s> and <unk>");
}

}  // namespace

std::shared_ptr<LanguageModelData> readArpa(std::string_view text, const std::string& name) {
  auto lm = std::make_shared<LanguageModelData>();
  lm->name = name;
  LineReader in(text, name);
  const std::vector<size_t> counts = readCounts(in);
  for (size_t n = 1; n <= counts.size(); ++n) lm->tables.emplace_back(static_cast<int>(n), counts[n - 1]);
  for (size_t n = 1; n <= counts.size(); ++n) {
    readSection(in, *lm, static_cast<int>(n), counts[n - 1]);
    if (n == 1) finishVocabulary(*lm);
  }
  if (!in.skipBlank()) fail(name, ": truncated: no \\end\\ line after the ", counts.size(), "-grams");
  if (in.line() != "\\end\\") in.fail("expected '\\end\\', found '", in.line(), "'");
  return lm;
}

}  // namespace ds2rt::detail
