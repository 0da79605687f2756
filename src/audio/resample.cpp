// Sample-rate conversion with libsoxr.
#include <soxr.h>

#include <cmath>
#include <memory>

#include "ds2rt/audio.h"
#include "ds2rt/error.h"

namespace ds2rt {
namespace {

struct SoxrDeleter {
  void operator()(soxr_t resampler) const { soxr_delete(resampler); }
};
using Soxr = std::unique_ptr<std::remove_pointer_t<soxr_t>, SoxrDeleter>;

}  // namespace

Audio resample(Audio audio, int target_rate) {
  check(target_rate > 0, "resample: the target sample rate must be positive, got ", target_rate);
  check(audio.sample_rate > 0, "resample: the input sample rate must be positive, got ", audio.sample_rate);
  const int source_rate = audio.source_rate > 0 ? audio.source_rate : audio.sample_rate;
  if (audio.sample_rate == target_rate) {
    audio.source_rate = source_rate;
    return audio;
  }
  if (audio.samples.empty()) return {{}, target_rate, source_rate};

  // SOXR_HQ with no flags (linear phase) on one thread: what python-soxr's quality='HQ' does.
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  soxr_error_t error = nullptr;
  Soxr resampler(soxr_create(audio.sample_rate, target_rate, 1, &error, &io, &quality, &runtime));
  check(error == nullptr && resampler != nullptr, "resample ", audio.sample_rate, " Hz -> ", target_rate,
        " Hz: ", error != nullptr ? error : "soxr_create failed");

  const double ratio = static_cast<double>(target_rate) / audio.sample_rate;
  std::vector<float> out(static_cast<size_t>(std::ceil(audio.samples.size() * ratio)) + 64);
  size_t done = 0;
  size_t produced = 0;
  error = soxr_process(resampler.get(), audio.samples.data(), audio.samples.size(), nullptr, out.data(), out.size(),
                       &produced);
  done += produced;
  // Flush: a null input tells soxr the signal has ended; it then drains its filter's delay line.
  while (error == nullptr && done < out.size()) {
    error = soxr_process(resampler.get(), nullptr, 0, nullptr, out.data() + done, out.size() - done, &produced);
    if (produced == 0) break;
    done += produced;
  }
  check(error == nullptr, "resample ", audio.sample_rate, " Hz -> ", target_rate, " Hz: ", error ? error : "");
  out.resize(done);
  return {std::move(out), target_rate, source_rate};
}

}  // namespace ds2rt
