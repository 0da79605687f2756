// ds2rt lm build TEXT OUT.arpa [--order 3] [--prune 0,1,1] [--case upper] [--max-ngrams N]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "common.h"
#include "ds2rt/error.h"
#include "ds2rt/lm_builder.h"

namespace ds2rt::tools {

namespace {

constexpr const char* kFooter = R"(
TEXT: one sentence per line, words separated by whitespace (plain or gzip; - reads standard input).
Put it in the form the decoder will see: for ds2rt's English models, upper-case words of A-Z and
the apostrophe (--case upper folds ASCII letters).

The model is interpolated modified Kneser-Ney with three discounts per order from the
count-of-counts, as KenLM's lmplz estimates it; orders whose counts cannot give discounts (small
texts) use --discount-fallback, and the summary says so. Backoff weights make every context's
probabilities sum to one. --prune 0,1,1 drops bigrams and trigrams seen only once (the last value
holds for higher orders; unigrams are never pruned); --max-ngrams raises the thresholds of orders 2
and up together until the model fits. An OUT ending in .gz is written gzip-compressed; ds2rt and
KenLM read both. Example:
  ds2rt lm build train.txt lm.arpa --order 4 --prune 0,0,1 --case upper)";

// "read 12.3 MB (31%)" on stderr, redrawn at most every 0.2 s, when stderr is a terminal.
class ReadProgress {
 public:
  ReadProgress(const std::string& path, bool wanted) : enabled_(wanted && isatty(STDERR_FILENO) != 0) {
    std::error_code error;
    if (path != "-" && !path.ends_with(".gz")) total_ = std::filesystem::file_size(path, error);
    if (error) total_ = 0;
  }
  ~ReadProgress() {
    if (drawn_) std::cerr << "\r\033[K" << std::flush;
  }
  void operator()(uint64_t bytes) {
    const auto now = std::chrono::steady_clock::now();
    if (!enabled_ || now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    drawn_ = true;
    std::fprintf(stderr, "\r\033[Kcounting n-grams: read %.1f MB", static_cast<double>(bytes) / 1e6);
    if (total_ > 0) std::fprintf(stderr, " of %.1f MB (%.0f%%)", static_cast<double>(total_) / 1e6, 100.0 * bytes / total_);
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  bool drawn_ = false;
  uint64_t total_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

void addBuild(CLI::App& lm) {
  struct Args {
    std::string text, arpa, prune, text_case = "keep", fallback;
    LmBuildOptions options;
    bool no_progress = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = lm.add_subcommand("build", "Build a word n-gram LM (modified Kneser-Ney, ARPA) from text");
  cmd->footer(kFooter);
  cmd->add_option("text", args->text, "training text, one sentence per line (plain, .gz, or - for stdin)")->required();
  cmd->add_option("output", args->arpa, "ARPA file to write (.gz: compressed)")->required();
  cmd->add_option("--order", args->options.order, "n-gram order (1 to 6)")->capture_default_str();
  cmd->add_option("--prune", args->prune, "per order, drop n-grams seen at most this many times (lmplz --prune): e.g. 0,1,1");
  cmd->add_option("--case", args->text_case, "keep | lower | upper: fold ASCII letters")
      ->capture_default_str()
      ->check(CLI::IsMember({"keep", "lower", "upper"}));
  cmd->add_option("--max-ngrams", args->options.max_ngrams, "at most this many n-grams in all (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--discount-fallback", args->fallback, "D1,D2,D3+ for orders without usable count-of-counts (default 0.5,1,1.5)");
  cmd->add_flag("--no-progress", args->no_progress, "no progress line (it is drawn only when stderr is a terminal)");
  cmd->callback([args] {
    LmBuildOptions& o = args->options;
    try {
      if (!args->prune.empty()) o.prune = parsePruneThresholds(args->prune);
      if (!args->fallback.empty()) {
        std::vector<double> values;
        std::string text = args->fallback;
        for (char& c : text) c = c == ',' ? ' ' : c;
        std::istringstream in(text);
        for (double v; in >> v;) values.push_back(v);
        check(in.eof() && values.size() == 3, "--discount-fallback needs three numbers such as 0.5,1,1.5, got '",
              args->fallback, "'");
        o.discount_fallback = {values[0], values[1], values[2]};
      }
      o.text_case = args->text_case == "lower"   ? LmBuildOptions::Case::kLower
                    : args->text_case == "upper" ? LmBuildOptions::Case::kUpper
                                                 : LmBuildOptions::Case::kKeep;
      o.validate();
    } catch (const Error& e) {
      throw CLI::ValidationError(e.what());
    }
    const auto start = std::chrono::steady_clock::now();
    LmBuildStats stats;
    {
      ReadProgress progress(args->text, !args->no_progress);
      stats = buildArpa(args->text, args->arpa, o, [&progress](uint64_t bytes) { progress(bytes); });
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << stats.sentences << " sentences, " << stats.words << " words\n";
    for (size_t n = 0; n < stats.ngrams.size(); ++n) {
      const auto& d = stats.discounts[n];
      std::cout << "  " << n + 1 << "-grams: " << stats.ngrams[n];
      if (stats.pruned[n] > 0) std::cout << " (" << stats.pruned[n] << " seen at most " << stats.prune[n] << " times pruned)";
      std::cout << "  discounts " << d[0] << " " << d[1] << " " << d[2]
                << (stats.discount_fallback[n] ? " (fallback: too little text for this order's count-of-counts)" : "")
                << "\n";
    }
    std::error_code error;
    const auto bytes = std::filesystem::file_size(args->arpa, error);
    std::cout << "wrote " << args->arpa << " (" << (error ? 0 : bytes) << " bytes) in " << seconds << " s\n";
  });
}

}  // namespace

void addLmCommand(CLI::App& app) {
  auto* lm = app.add_subcommand("lm", "Word n-gram language models for beam search");
  lm->require_subcommand(1);
  addBuild(*lm);
}

}  // namespace ds2rt::tools
