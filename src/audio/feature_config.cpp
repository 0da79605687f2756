// FeatureConfig: sizes, validation, the model's spect_cfg and global normalisation statistics.
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "ds2rt/audio.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "ds2rt/weights.h"

namespace ds2rt {
namespace {

// Python's int(sample_rate * seconds), as deepspeech.pytorch sizes its STFT.
int samplesIn(int sample_rate, double seconds) { return static_cast<int>(std::floor(sample_rate * seconds)); }

std::vector<float> statsFromJson(const nlohmann::json& json, const char* key, const std::string& path) {
  check(json.contains(key), "normalisation stats '", path, "': no \"", key, "\" entry");
  const nlohmann::json& value = json.at(key);
  try {
    if (value.is_number()) return {value.get<float>()};
    return value.get<std::vector<float>>();
  } catch (const nlohmann::json::exception&) {
    fail("normalisation stats '", path, "': \"", key, "\" must be a number or a list of numbers");
  }
}

std::vector<float> statsFromTensor(const WeightStore& store, const std::string& name) {
  const HostTensor tensor = store.get(name).toFloat32();
  return {tensor.data<float>(), tensor.data<float>() + tensor.size()};
}

}  // namespace

int FeatureConfig::fftSize() const { return samplesIn(sample_rate, window_size); }
int FeatureConfig::hopSize() const { return samplesIn(sample_rate, window_stride); }
int FeatureConfig::bins() const { return fftSize() / 2 + 1; }

int64_t FeatureConfig::frames(size_t num_samples) const {
  const int64_t n = fftSize();
  const int64_t padded = static_cast<int64_t>(num_samples) + (center ? 2 * (n / 2) : 0);
  if (num_samples == 0 || padded < n) return 0;
  return 1 + (padded - n) / hopSize();
}

void FeatureConfig::validate() const {
  check(sample_rate > 0, "features: sample rate must be positive, got ", sample_rate);
  check(window_size > 0 && window_stride > 0, "features: window size and stride must be positive, got ", window_size,
        " s and ", window_stride, " s");
  check(fftSize() >= 2, "features: a window of ", window_size, " s at ", sample_rate, " Hz is under 2 samples");
  check(hopSize() >= 1, "features: a stride of ", window_stride, " s at ", sample_rate, " Hz is under 1 sample");
  check(std::isfinite(sample_scale) && sample_scale > 0, "features: sample scale must be positive, got ",
        sample_scale);
  if (normalization != Normalization::kGlobal) return;
  const auto sized = [&](const std::vector<float>& v) { return v.size() == 1 || v.size() == size_t(bins()); };
  check(sized(mean) && sized(stddev), "features: global mean and std need 1 or ", bins(), " values each, got ",
        mean.size(), " and ", stddev.size());
  for (float s : stddev) check(std::isfinite(s) && s > 0, "features: global std values must be positive, got ", s);
}

FeatureConfig FeatureConfig::fromSpectrogramConfig(const SpectrogramConfig& spect) {
  FeatureConfig config;
  config.sample_rate = spect.sample_rate;
  config.window_size = spect.window_size;
  config.window_stride = spect.window_stride;
  config.window = windowTypeFromString(spect.window);
  config.validate();
  return config;
}

void FeatureConfig::loadGlobalStats(const std::string& path) {
  const std::string extension = std::filesystem::path(path).extension().string();
  if (extension == ".json") {
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(detail::readTextFile(path));
    } catch (const nlohmann::json::exception& e) {
      fail("normalisation stats '", path, "': not valid JSON (", e.what(), ")");
    }
    check(json.is_object(), "normalisation stats '", path, "': expected an object {\"mean\": ..., \"std\": ...}");
    mean = statsFromJson(json, "mean", path);
    stddev = statsFromJson(json, "std", path);
  } else if (extension == ".safetensors") {
    const WeightStore store = WeightStore::load(path);
    mean = statsFromTensor(store, "mean");
    stddev = statsFromTensor(store, "std");
  } else {
    fail("normalisation stats '", path, "': expected a .json or .safetensors file");
  }
  normalization = Normalization::kGlobal;
  try {
    validate();
  } catch (const Error& e) {
    fail("normalisation stats '", path, "': ", e.what());
  }
}

}  // namespace ds2rt
