// Audio front end: decoding, mono mixdown, resampling and deepspeech.pytorch's spectrogram features.
#include <nanobind/ndarray.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>

#include "bindings.h"
#include "ds2rt/audio.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"

namespace ds2rt::python {

using namespace nb::literals;

namespace {

template <typename T>
HostTensor vectorTensor(const std::vector<T>& values, DataType type) {
  HostTensor t(type, {static_cast<int64_t>(values.size())});
  if (!values.empty()) std::memcpy(t.mutableData(), values.data(), values.size() * sizeof(T));
  return t;
}

std::vector<float> floatVector(const HostTensor& samples) {
  const HostTensor f = samples.toFloat32();
  const std::span<const float> values = f.floats();
  return {values.begin(), values.end()};
}

std::span<const uint8_t> byteSpan(const nb::bytes& data) {
  return {static_cast<const uint8_t*>(data.data()), data.size()};
}

void bindAudioData(nb::module_& m) {
  nb::class_<Audio>(m, "Audio", "Mono samples in [-1, 1] at a sample rate.")
      .def(
          "__init__",
          [](Audio* self, const HostTensor& samples, int sample_rate) {
            check(samples.rank() == 1, "Audio samples must be 1-D, got ", toString(samples.shape()));
            construct(self, Audio{floatVector(samples), sample_rate});
          },
          "samples"_a, "sample_rate"_a)
      .def_prop_ro(
          "samples",
          [](nb::handle self) {
            const Audio& a = nb::cast<const Audio&>(self);
            return nb::ndarray<nb::numpy, const float, nb::ndim<1>>(a.samples.data(), {a.samples.size()}, self);
          },
          "The samples, float32 (a read-only view kept alive by this object).")
      .def_rw("sample_rate", &Audio::sample_rate)
      .def_rw("source_rate", &Audio::source_rate, "the rate the file held, before resampling (0: not known)")
      .def_prop_ro("seconds", &Audio::seconds)
      .def("__len__", [](const Audio& a) { return a.samples.size(); })
      .def("__repr__", [](const Audio& a) { return cat("Audio(", a.seconds(), " s at ", a.sample_rate, " Hz)"); });

  nb::class_<AudioFormat>(m, "AudioFormat")
      .def_ro("name", &AudioFormat::name)
      .def_ro("extension", &AudioFormat::extension)
      .def("__repr__", [](const AudioFormat& f) { return cat("AudioFormat(", f.extension, ": ", f.name, ")"); });

  m.def(
      "load_audio",
      [](const std::filesystem::path& path, int target_rate) { return loadAudio(pathString(path), target_rate); },
      "path"_a, "target_rate"_a, nb::call_guard<nb::gil_scoped_release>(),
      "Decodes any format libsndfile reads (WAV, FLAC, Ogg, Opus, MP3, ...), mixes to mono and resamples to "
      "target_rate (soxr, high quality).");
  m.def(
      "decode_audio",
      [](nb::bytes encoded, int target_rate, const std::string& name) {
        return decodeAudio(byteSpan(encoded), target_rate, name);
      },
      "encoded"_a, "target_rate"_a, "name"_a = "<memory>", "As load_audio, for a whole encoded file in memory.");
  m.def(
      "decode_pcm16",
      [](nb::bytes pcm, int rate, int channels, int target_rate, const std::string& name) {
        return decodePcm16(byteSpan(pcm), rate, channels, target_rate, name);
      },
      "pcm"_a, "rate"_a, "channels"_a, "target_rate"_a, "name"_a = "<memory>",
      "Raw interleaved signed 16-bit little-endian PCM.");
  m.def("resample", &resample, "audio"_a, "target_rate"_a, nb::call_guard<nb::gil_scoped_release>());
  m.def(
      "mix_to_mono",
      [](const HostTensor& interleaved, int channels) {
        const HostTensor f = interleaved.toFloat32();
        return vectorTensor(mixToMono(f.floats(), channels), DataType::kFloat32);
      },
      "interleaved"_a, "channels"_a, "Mean of the channels of interleaved frames.");
  m.def("audio_formats", &audioFormats, "The container formats the linked libsndfile reads.");
  m.def(
      "split_at_pauses",
      [](const Audio& audio, double max_seconds) {
        std::vector<std::pair<size_t, size_t>> spans;
        for (const AudioSpan& s : splitAtPauses(audio, max_seconds)) spans.emplace_back(s.begin, s.end);
        return spans;
      },
      "audio"_a, "max_seconds"_a,
      "Cuts audio longer than max_seconds (>= 1) into consecutive (begin, end) sample ranges of at most that "
      "length, each ending in the quietest 100 ms of the second half of what it may hold; they cover every "
      "sample. Transcribe each piece on its own (as `ds2rt transcribe --max-segment` does).");
  m.def("audio_warnings", &audioWarnings, "audio"_a, "model_rate"_a,
        "What may make a transcript of this audio poor with a model trained at model_rate Hz (a narrower band "
        "than the model's, digital silence): one sentence each, [] when nothing does.");
}

void bindFeatureConfig(nb::module_& m) {
  nb::enum_<WindowType>(m, "WindowType")
      .value("HAMMING", WindowType::kHamming)
      .value("HANN", WindowType::kHann)
      .value("BLACKMAN", WindowType::kBlackman)
      .value("BARTLETT", WindowType::kBartlett);
  nb::enum_<PadMode>(m, "PadMode", "Padding of the signal ends for centred frames.")
      .value("REFLECT", PadMode::kReflect, "librosa <= 0.8 (deepspeech.pytorch's released models)")
      .value("CONSTANT", PadMode::kConstant, "zeros, librosa >= 0.9");
  nb::enum_<Normalization>(m, "Normalization")
      .value("NONE", Normalization::kNone)
      .value("PER_UTTERANCE", Normalization::kPerUtterance, "(x - mean) / std over the utterance")
      .value("GLOBAL", Normalization::kGlobal, "(x - mean) / std with FeatureConfig.mean / stddev");
  m.def(
      "make_window",
      [](WindowType type, int length, bool symmetric) {
        return vectorTensor(makeWindow(type, length, symmetric), DataType::kFloat64);
      },
      "type"_a, "length"_a, "symmetric"_a = false, "scipy.signal.get_window(type, length, fftbins=not symmetric).");

  const FeatureConfig d;
  using F = FeatureConfig;
  nb::class_<F>(m, "FeatureConfig", "What the features are; the defaults are deepspeech.pytorch's.")
      .def(
          "__init__",
          [](F* self, int sample_rate, double window_size, double window_stride, WindowType window,
             bool symmetric_window, bool center, PadMode pad_mode, double sample_scale, bool truncate_to_int16,
             Normalization normalization, std::vector<float> mean, std::vector<float> stddev) {
            construct(self, F{sample_rate, window_size, window_stride, window, symmetric_window, center, pad_mode,
                              sample_scale, truncate_to_int16, normalization, std::move(mean), std::move(stddev)});
          },
          "sample_rate"_a = d.sample_rate, "window_size"_a = d.window_size, "window_stride"_a = d.window_stride,
          "window"_a = d.window, "symmetric_window"_a = d.symmetric_window, "center"_a = d.center,
          "pad_mode"_a = d.pad_mode, "sample_scale"_a = d.sample_scale, "truncate_to_int16"_a = d.truncate_to_int16,
          "normalization"_a = d.normalization, "mean"_a = d.mean, "stddev"_a = d.stddev)
      .def_rw("sample_rate", &F::sample_rate)
      .def_rw("window_size", &F::window_size, "Seconds.")
      .def_rw("window_stride", &F::window_stride, "Seconds.")
      .def_rw("window", &F::window)
      .def_rw("symmetric_window", &F::symmetric_window)
      .def_rw("center", &F::center)
      .def_rw("pad_mode", &F::pad_mode)
      .def_rw("sample_scale", &F::sample_scale)
      .def_rw("truncate_to_int16", &F::truncate_to_int16)
      .def_rw("normalization", &F::normalization)
      .def_rw("mean", &F::mean, "GLOBAL normalization: one value, or one per frequency bin.")
      .def_rw("stddev", &F::stddev)
      .def_prop_ro("fft_size", &F::fftSize)
      .def_prop_ro("hop_size", &F::hopSize)
      .def_prop_ro("bins", &F::bins)
      .def("frames", &F::frames, "num_samples"_a, "Frames for this many samples (0 when too short for one).")
      .def("validate", &F::validate)
      .def_static("from_spectrogram_config", &F::fromSpectrogramConfig, "spect"_a,
                  "deepspeech.pytorch's defaults with the model's sample rate, sizes and window.")
      .def(
          "load_global_stats", [](F& f, const std::filesystem::path& path) { f.loadGlobalStats(pathString(path)); },
          "path"_a, "Reads mean/std (.json or .safetensors) and sets GLOBAL normalization.");
}

void bindFeatureExtractor(nb::module_& m) {
  nb::class_<FeatureExtractor>(m, "FeatureExtractor", "Computes features; one extractor serves many threads.")
      .def(nb::init<FeatureConfig>(), "config"_a = FeatureConfig{})
      .def_prop_ro("config", [](const FeatureExtractor& e) { return e.config(); })
      .def("compute", nb::overload_cast<const Audio&>(&FeatureExtractor::compute, nb::const_), "audio"_a,
           nb::call_guard<nb::gil_scoped_release>(),
           "1 x 1 x bins x T float32: the engine's 'features' input for one utterance.")
      .def(
          "compute",
          [](const FeatureExtractor& e, const HostTensor& samples) {
            check(samples.rank() == 1, "samples must be 1-D, got ", toString(samples.shape()));
            const HostTensor f = samples.toFloat32();
            nb::gil_scoped_release release;
            return e.compute(f.floats());
          },
          "samples"_a, "Samples at the configured sample rate.");

  m.def(
      "batch_features",
      [](const std::vector<HostTensor>& utterances) {
        FeatureBatch batch = batchFeatures(utterances);
        return std::make_pair(std::move(batch.features), std::move(batch.lengths));
      },
      "utterances"_a,
      "Pads 1 x 1 x bins x T (or bins x T) features into one batch: returns (features N x 1 x bins x Tmax, "
      "lengths N int32).");
}

}  // namespace

void bindAudio(nb::module_& m) {
  bindAudioData(m);
  bindFeatureConfig(m);
  bindFeatureExtractor(m);
}

}  // namespace ds2rt::python
