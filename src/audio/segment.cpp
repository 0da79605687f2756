// Cutting long recordings into utterance-sized spans at their quietest moments.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ds2rt/audio.h"
#include "ds2rt/error.h"

namespace ds2rt {

namespace {

constexpr double kFrameSeconds = 0.01;  // energy is measured per 10 ms
constexpr int kPauseFrames = 10;        // a cut goes in the middle of the quietest 100 ms

}  // namespace

std::vector<AudioSpan> splitAtPauses(const Audio& audio, double max_seconds) {
  check(audio.sample_rate > 0, "splitAtPauses: the audio has no sample rate");
  check(max_seconds >= 1.0, "splitAtPauses: spans must be allowed at least 1 s, got ", max_seconds, " s");
  const size_t total = audio.samples.size();
  const auto max_samples = static_cast<size_t>(max_seconds * audio.sample_rate);
  if (total <= max_samples) return {{0, total}};

  // Energy of each 10 ms frame, and prefix sums for the mean over any stretch of frames.
  const auto frame = std::max<size_t>(1, static_cast<size_t>(kFrameSeconds * audio.sample_rate));
  const size_t frames = (total + frame - 1) / frame;
  std::vector<double> prefix(frames + 1, 0.0);
  for (size_t f = 0; f < frames; ++f) {
    double energy = 0;
    for (size_t i = f * frame; i < std::min(total, (f + 1) * frame); ++i) energy += double{audio.samples[i]} * audio.samples[i];
    prefix[f + 1] = prefix[f] + energy;
  }
  const size_t max_frames = max_samples / frame, pause = std::min<size_t>(kPauseFrames, max_frames / 4);

  // Each span ends in the quietest stretch of the second half of what it may hold.
  std::vector<AudioSpan> spans;
  size_t start = 0;  // in frames
  while (total - start * frame > max_samples) {
    const size_t first = start + max_frames / 2, last = start + max_frames - pause;  // stretch starts
    size_t best = first;
    double quietest = std::numeric_limits<double>::infinity();
    for (size_t s = first; s <= last; ++s) {
      const double energy = prefix[s + pause] - prefix[s];
      if (energy <= quietest) quietest = energy, best = s;  // the latest of equals: longer spans
    }
    const size_t cut = best + pause / 2;
    spans.push_back({start * frame, cut * frame});
    start = cut;
  }
  spans.push_back({start * frame, total});
  return spans;
}

}  // namespace ds2rt
