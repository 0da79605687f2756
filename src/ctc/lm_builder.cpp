// The public LM builder: options, reading the text (plain, gzip or standard input) and writing
// the ARPA file; the estimation is in kneser_ney.cpp.
#include "ds2rt/lm_builder.h"

#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "ctc/ngram_counts.h"
#include "ds2rt/error.h"

namespace ds2rt {
namespace {

using GzFile = std::unique_ptr<gzFile_s, int (*)(gzFile)>;

// Feeds the text to `counts` line by line, reading 1 MiB at a time.
void countFile(const std::string& path, detail::NGramCounts& counts, const LmProgress& progress) {
  const bool standard_input = path == "-";
  const std::string name = standard_input ? "standard input" : "'" + path + "'";
  if (!standard_input && std::filesystem::is_directory(path)) fail("cannot read text ", name, ": it is a directory");
  GzFile file(standard_input ? gzdopen(dup(STDIN_FILENO), "rb") : gzopen(path.c_str(), "rb"), gzclose);
  if (!file) fail("cannot open text ", name, ": ", std::strerror(errno));
  std::vector<char> buffer(1 << 20);
  std::string partial;  // a line split across two reads
  uint64_t read = 0;
  for (;;) {
    const int got = gzread(file.get(), buffer.data(), static_cast<unsigned>(buffer.size()));
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file.get(), &code);
      fail("cannot read text ", name, ": ", code == Z_ERRNO ? std::strerror(errno) : message);
    }
    if (got == 0) break;
    std::string_view chunk(buffer.data(), static_cast<size_t>(got));
    for (size_t end; (end = chunk.find('\n')) != std::string_view::npos; chunk.remove_prefix(end + 1)) {
      if (partial.empty()) {
        counts.addSentence(chunk.substr(0, end));
      } else {
        partial.append(chunk.substr(0, end));
        counts.addSentence(partial);
        partial.clear();
      }
    }
    partial.append(chunk);
    read += static_cast<uint64_t>(got);
    if (progress) progress(read);
  }
  counts.addSentence(partial);
  check(counts.words > 0, "no words in text ", name, ": it has no non-blank line");
}

void writeFile(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".partial";
  try {
    if (path.ends_with(".gz")) {
      GzFile file(gzopen(temporary.c_str(), "wb"), gzclose);
      if (!file) fail("cannot open '", temporary, "' for writing: ", std::strerror(errno));
      for (size_t done = 0; done < text.size();) {
        const auto chunk = static_cast<unsigned>(std::min<size_t>(text.size() - done, 1 << 30));
        check(gzwrite(file.get(), text.data() + done, chunk) == static_cast<int>(chunk), "cannot write '", temporary, "'");
        done += chunk;
      }
      check(gzclose(file.release()) == Z_OK, "cannot write '", temporary, "'");
    } else {
      std::ofstream out(temporary, std::ios::binary);
      if (!out) fail("cannot open '", temporary, "' for writing: ", std::strerror(errno));
      out.write(text.data(), static_cast<std::streamsize>(text.size()));
      check(static_cast<bool>(out.flush()), "cannot write '", temporary, "': ", std::strerror(errno));
    }
    std::error_code error;
    std::filesystem::rename(temporary, path, error);
    check(!error, "cannot rename '", temporary, "' to '", path, "': ", error.message());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw;
  }
}

}  // namespace

void LmBuildOptions::validate() const {
  check(order >= 1 && order <= detail::kMaxLmOrder, "LM order must be 1 to ", detail::kMaxLmOrder, ", got ", order);
  check(prune.size() <= static_cast<size_t>(order), "prune has ", prune.size(),
        " thresholds, more than the order ", order);
  for (size_t i = 0; i < prune.size(); ++i) {
    check(prune[i] >= 0, "prune thresholds must not be negative, got ", prune[i], " for order ", i + 1);
    check(i > 0 || prune[i] == 0, "the unigram prune threshold must be 0 (unigrams are never pruned), got ", prune[i]);
    check(i == 0 || prune[i] >= prune[i - 1], "prune thresholds must not decrease with the order, got ", prune[i - 1],
          " then ", prune[i]);
  }
  check(max_ngrams >= 0, "max_ngrams must not be negative, got ", max_ngrams);
  for (size_t k = 1; k <= 3; ++k)
    check(discount_fallback[k - 1] > 0 && discount_fallback[k - 1] <= static_cast<double>(k), "fallback discount D",
          k, k == 3 ? "+" : "", " must be in (0, ", k, "], got ", discount_fallback[k - 1]);
}

std::vector<int64_t> parsePruneThresholds(std::string_view text) {
  std::vector<int64_t> values;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ',' || text[i] == ' ')) ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ',' && text[j] != ' ') ++j;
    if (j > i) {
      int64_t value = 0;
      const auto [end, ec] = std::from_chars(text.data() + i, text.data() + j, value);
      check(ec == std::errc() && end == text.data() + j, "bad prune threshold '", text.substr(i, j - i),
            "' in '", text, "' (expected counts such as 0,1,1)");
      values.push_back(value);
    }
    i = j;
  }
  check(!values.empty(), "no prune thresholds in '", text, "' (expected counts such as 0,1,1)");
  return values;
}

LmBuildStats buildArpa(const std::string& text_path, const std::string& arpa_path, const LmBuildOptions& options,
                       const LmProgress& progress) {
  options.validate();
  check(!arpa_path.empty(), "no output path for the ARPA file");
  detail::NGramCounts counts(options.order, options.text_case);
  countFile(text_path, counts, progress);
  LmBuildStats stats = detail::estimateKneserNey(counts, options);
  std::string arpa;
  detail::writeArpa(counts, arpa);
  writeFile(arpa_path, arpa);
  return stats;
}

std::string buildArpaText(std::string_view text, const LmBuildOptions& options, LmBuildStats* stats) {
  options.validate();
  detail::NGramCounts counts(options.order, options.text_case);
  for (size_t end; (end = text.find('\n')) != std::string_view::npos; text.remove_prefix(end + 1))
    counts.addSentence(text.substr(0, end));
  counts.addSentence(text);
  LmBuildStats result = detail::estimateKneserNey(counts, options);
  if (stats) *stats = std::move(result);
  std::string arpa;
  detail::writeArpa(counts, arpa);
  return arpa;
}

}  // namespace ds2rt
