#include "transcription/progress.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace ds2rt::tools {

namespace {
constexpr int kWidth = 30;
}

ProgressBar::ProgressBar(size_t total, bool wanted)
    : enabled_(wanted && total > 1 && isatty(STDERR_FILENO) != 0), total_(total) {
  draw();
}

ProgressBar::~ProgressBar() { clear(); }

void ProgressBar::advance(double audio_seconds) {
  ++done_;
  audio_seconds_ += audio_seconds;
  draw();
}

void ProgressBar::message(const std::string& line) {
  clear();
  std::cerr << line << '\n';
  draw();
}

void ProgressBar::clear() const {
  if (enabled_) std::cerr << "\r\033[K" << std::flush;
}

void ProgressBar::draw() const {
  if (!enabled_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int filled = static_cast<int>(kWidth * done_ / total_);
  char speed[48] = "";
  if (elapsed > 0 && audio_seconds_ > 0) std::snprintf(speed, sizeof speed, ", %.1fx real time", audio_seconds_ / elapsed);
  std::cerr << "\r\033[K[" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] " << done_ << '/'
            << total_ << " files, " << static_cast<int>(audio_seconds_) << " s of audio" << speed << std::flush;
}

void ProgressBar::fileDone(const std::string& error, const std::string& warning, double audio_seconds) {
  if (!error.empty()) message("ds2rt: error: " + error);
  if (!warning.empty()) message("ds2rt: warning: " + warning);
  advance(audio_seconds);
}

}  // namespace ds2rt::tools
