// Spectrogram features: centred STFT frames, log1p magnitude, normalisation; and batching.
#include <algorithm>
#include <cmath>

#include "audio/fft.h"
#include "ds2rt/audio.h"
#include "ds2rt/error.h"

namespace ds2rt {
namespace {

// numpy.pad(mode='reflect') index for any i, also when the padding exceeds the signal.
int64_t reflectIndex(int64_t i, int64_t length) {
  if (length == 1) return 0;
  const int64_t period = 2 * (length - 1);
  int64_t m = i % period;
  if (m < 0) m += period;
  return m < length ? m : period - m;
}

void normalizePerUtterance(std::span<float> x) {
  double sum = 0.0;
  for (float v : x) sum += v;
  const double mean = sum / static_cast<double>(x.size());
  double squares = 0.0;
  for (float v : x) squares += (v - mean) * (v - mean);
  // torch.std is the unbiased estimate. A constant spectrogram (digital silence) has std 0,
  // where torch would produce NaN; it becomes all zeros here.
  const double stddev = x.size() > 1 ? std::sqrt(squares / static_cast<double>(x.size() - 1)) : 0.0;
  const auto m = static_cast<float>(mean);
  const float s = stddev > 0.0 && std::isfinite(stddev) ? static_cast<float>(stddev) : 1.0f;
  for (float& v : x) v = (v - m) / s;
}

// x is bins x frames.
void normalizeGlobal(std::span<float> x, int64_t frames, const std::vector<float>& mean,
                     const std::vector<float>& stddev) {
  const int64_t bins = static_cast<int64_t>(x.size()) / frames;
  for (int64_t f = 0; f < bins; ++f) {
    const float m = mean.size() == 1 ? mean[0] : mean[f];
    const float s = stddev.size() == 1 ? stddev[0] : stddev[f];
    for (float& v : x.subspan(f * frames, frames)) v = (v - m) / s;
  }
}

}  // namespace

FeatureExtractor::FeatureExtractor(FeatureConfig config) : config_(std::move(config)) {
  config_.validate();
  window_ = makeWindow(config_.window, config_.fftSize(), config_.symmetric_window);
  fft_ = detail::RealFft::ofSize(config_.fftSize());
}

HostTensor FeatureExtractor::compute(const Audio& audio) const {
  check(audio.sample_rate == config_.sample_rate, "features: audio at ", audio.sample_rate,
        " Hz, the features are defined at ", config_.sample_rate, " Hz (resample first: loadAudio does)");
  return compute(audio.samples);
}

HostTensor FeatureExtractor::compute(std::span<const float> samples) const {
  const int n = config_.fftSize();
  const int hop = config_.hopSize();
  const int bins = config_.bins();
  const int64_t frames = config_.frames(samples.size());
  check(frames > 0, "features: ", samples.size(), " samples are too short for one ", n, "-sample window");

  // deepspeech.pytorch's samples are float32 (int16 / 32767): rounded to float after scaling.
  std::vector<float> y(samples.size());
  for (size_t i = 0; i < y.size(); ++i) {
    double x = samples[i];
    if (config_.truncate_to_int16) x = std::clamp(std::floor(x * 32768.0), -32768.0, 32767.0) / 32768.0;
    y[i] = static_cast<float>(x * config_.sample_scale);
  }
  const auto length = static_cast<int64_t>(y.size());
  const int64_t pad = config_.center ? n / 2 : 0;
  const auto padded = [&](int64_t i) -> float {
    if (i >= 0 && i < length) return y[static_cast<size_t>(i)];
    return config_.pad_mode == PadMode::kReflect ? y[static_cast<size_t>(reflectIndex(i, length))] : 0.0f;
  };

  HostTensor out(DataType::kFloat32, {1, 1, bins, frames});
  float* spect = out.mutableData<float>();
  auto in = fft_->makeInput();
  auto spectrum = fft_->makeOutput();
  for (int64_t t = 0; t < frames; ++t) {
    const int64_t start = t * hop - pad;
    // librosa multiplies the float32 frame by its float64 window; the FFT input is rounded once.
    if (start >= 0 && start + n <= length) {
      for (int k = 0; k < n; ++k) in[k] = static_cast<float>(window_[k] * y[static_cast<size_t>(start + k)]);
    } else {
      for (int k = 0; k < n; ++k) in[k] = static_cast<float>(window_[k] * padded(start + k));
    }
    fft_->forward(in.get(), spectrum.get());
    for (int f = 0; f < bins; ++f) spect[f * frames + t] = std::log1p(std::abs(spectrum[f]));
  }

  const std::span<float> values(spect, static_cast<size_t>(bins * frames));
  switch (config_.normalization) {
    case Normalization::kNone: break;
    case Normalization::kPerUtterance: normalizePerUtterance(values); break;
    case Normalization::kGlobal: normalizeGlobal(values, frames, config_.mean, config_.stddev); break;
  }
  return out;
}

FeatureBatch batchFeatures(std::span<const HostTensor> utterances) {
  check(!utterances.empty(), "batchFeatures: no utterances");
  const auto binsOf = [](const HostTensor& x) { return x.dim(x.rank() - 2); };
  const int64_t bins = binsOf(utterances[0]);
  int64_t max_frames = 0;
  for (size_t i = 0; i < utterances.size(); ++i) {
    const HostTensor& x = utterances[i];
    const bool shaped = x.rank() == 2 || (x.rank() == 4 && x.dim(0) == 1 && x.dim(1) == 1);
    check(!x.empty() && x.dtype() == DataType::kFloat32 && shaped, "batchFeatures: utterance ", i,
          " must be float32 1 x 1 x bins x T or bins x T, got ", toString(x.dtype()), " ", toString(x.shape()));
    check(binsOf(x) == bins, "batchFeatures: utterance ", i, " has ", binsOf(x), " bins, utterance 0 has ", bins);
    max_frames = std::max(max_frames, x.dim(x.rank() - 1));
  }

  const auto n = static_cast<int64_t>(utterances.size());
  FeatureBatch batch{HostTensor(DataType::kFloat32, {n, 1, bins, max_frames}), {}};
  float* out = batch.features.mutableData<float>();
  std::vector<int32_t> lengths;
  for (int64_t i = 0; i < n; ++i) {
    const HostTensor& x = utterances[static_cast<size_t>(i)];
    const int64_t frames = x.dim(x.rank() - 1);
    for (int64_t f = 0; f < bins; ++f)
      std::copy_n(x.data<float>() + f * frames, frames, out + (i * bins + f) * max_frames);
    lengths.push_back(static_cast<int32_t>(frames));
  }
  batch.lengths = HostTensor::fromInts({n}, lengths);
  return batch;
}

}  // namespace ds2rt
