// A one-line progress bar on stderr, redrawn in place: files done, audio seconds, speed.
// Only drawn when stderr is a terminal; otherwise every call is a no-op.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace ds2rt::tools {

class ProgressBar {
 public:
  ProgressBar(size_t total, bool wanted);  // wanted && stderr is a terminal && total > 1
  ~ProgressBar();                          // clears the bar
  void advance(double audio_seconds);      // one more file done
  // Prints a line (an error, say) above the bar; without a bar, just the line.
  void message(const std::string& line);
  // One file done: its error or warning (if any) printed, then advance(duration).
  void fileDone(const std::string& error, const std::string& warning, double audio_seconds);

 private:
  void draw() const;
  void clear() const;

  bool enabled_;
  size_t total_;
  size_t done_ = 0;
  double audio_seconds_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace ds2rt::tools
