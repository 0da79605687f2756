// What makes audio a poor input for a speech model, found before the model runs.
#include <algorithm>
#include <cmath>

#include "ds2rt/audio.h"
#include "ds2rt/error.h"

namespace ds2rt {

namespace {

// Audio recorded below the model's rate (8 kHz telephone audio for a 16 kHz model, say) holds
// nothing above half its own rate once upsampled; a model trained on full-band speech has never
// seen such spectra. Audio resampled down holds only the band of the lower rate too.
std::string narrowbandWarning(const Audio& audio, int model_rate) {
  int band = audio.sample_rate;
  if (audio.source_rate > 0 && (band <= 0 || audio.source_rate < band)) band = audio.source_rate;
  if (band <= 0 || band >= model_rate) return {};
  return cat(band, " Hz audio, upsampled to the model's ", model_rate, " Hz: it holds nothing above ", band / 2,
             " Hz, which a model trained on ", model_rate, " Hz speech expects; the transcript may be poor");
}

// Digital silence (peak below two 16-bit steps, -84 dBFS): per-utterance feature normalisation
// scales whatever is there up to speech level, and a model trained on speech writes letters.
std::string silenceWarning(const Audio& audio) {
  float peak = 0.0f;
  for (const float s : audio.samples) peak = std::max(peak, std::abs(s));
  if (peak >= 2.0f / 32768.0f) return {};
  return cat("the audio is silent (peak ", peak > 0 ? cat(std::lround(20.0 * std::log10(peak)), " dBFS") : std::string("0"),
             "): a transcript of it is noise, not speech");
}

}  // namespace

std::vector<std::string> audioWarnings(const Audio& audio, int model_rate) {
  std::vector<std::string> warnings;
  for (std::string w : {narrowbandWarning(audio, model_rate), silenceWarning(audio)})
    if (!w.empty()) warnings.push_back(std::move(w));
  return warnings;
}

}  // namespace ds2rt
