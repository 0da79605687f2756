// Audio front end: decoding (libsndfile), mixing to mono, resampling (soxr) and the spectrogram
// features a DeepSpeech2 model was trained on (FFTW), exactly as deepspeech.pytorch computes them.
//
//   ds2rt::Audio audio = ds2rt::loadAudio("speech.flac", 16000);
//   ds2rt::FeatureExtractor features(ds2rt::FeatureConfig::fromSpectrogramConfig(model.config().spect));
//   ds2rt::HostTensor x = features.compute(audio);  // 1 x 1 x bins x T, float32
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ds2rt/tensor.h"

namespace ds2rt {

struct SpectrogramConfig;  // ds2rt/deepspeech2.h

// ---- Decoding and resampling ----------------------------------------------------------------

// Mono samples. Integer PCM maps to [-1, 1) (divided by 2^(bits-1)); float and lossy sources
// are clipped to [-1, 1].
struct Audio {
  std::vector<float> samples;
  int sample_rate = 0;
  int source_rate = 0;  // the rate the file or stream held, before resampling (0: not known)
  double seconds() const;
};

// Decodes a file in any format the linked libsndfile reads (WAV, FLAC, OGG/Vorbis, Opus, MP3,
// ...: audioFormats()) and any sample format, mixes the channels to mono (their mean) and
// resamples to `target_rate` with soxr at high quality; a file already at that rate passes
// through untouched. A missing, empty, truncated, corrupt, non-audio or unsupported file, or a
// directory, throws ds2rt::Error naming the file and what is wrong with it.
Audio loadAudio(const std::string& path, int target_rate);

// The same for a whole encoded file held in memory (a WAV piped to stdin, say); `name` is
// what error messages call it.
Audio decodeAudio(std::span<const uint8_t> encoded, int target_rate, const std::string& name = "<memory>");

// Raw interleaved signed 16-bit little-endian PCM at `rate` Hz with `channels` channels.
Audio decodePcm16(std::span<const uint8_t> pcm, int rate, int channels, int target_rate,
                  const std::string& name = "<memory>");
// Reads raw PCM as above from `in` until its end (std::cin for stdin).
Audio readPcm16(std::istream& in, int rate, int channels, int target_rate, const std::string& name = "<stdin>");

// Mean of the channels of interleaved frames.
std::vector<float> mixToMono(std::span<const float> interleaved, int channels);

// soxr at SOXR_HQ (20-bit, linear phase); returns `audio` as it is when the rates match.
Audio resample(Audio audio, int target_rate);

// What may make a transcript of `audio` poor with a model trained on `model_rate` Hz speech, one
// sentence each, none when nothing does: audio holding a narrower band than the model's (recorded,
// or resampled, below its rate) and digital silence (peak below -84 dBFS). The model still runs on
// such audio; transcribe and eval print these, the Python Transcriber warns with them.
std::vector<std::string> audioWarnings(const Audio& audio, int model_rate);

// Samples [begin, end) of an Audio.
struct AudioSpan {
  size_t begin = 0, end = 0;
};
// Cuts audio longer than `max_seconds` (>= 1) into consecutive spans of at most that length, each
// ending in the middle of the quietest 100 ms of the second half of what it may hold (a pause
// between words where there is one). The spans cover every sample, in order. A model trained on
// utterances of seconds transcribes a long recording best a span at a time, each normalised on
// its own as in training; transcribe and eval do so (--max-segment).
std::vector<AudioSpan> splitAtPauses(const Audio& audio, double max_seconds);

struct AudioFormat {
  std::string name;       // "FLAC (Free Lossless Audio Codec)"
  std::string extension;  // "flac"
};
// The container formats the linked libsndfile reads (SFC_GET_FORMAT_MAJOR).
std::vector<AudioFormat> audioFormats();

// ---- Features ---------------------------------------------------------------------------------

enum class WindowType : uint8_t { kHamming, kHann, kBlackman, kBartlett };
WindowType windowTypeFromString(const std::string& name);  // "hamming", "hann", "blackman", "bartlett"
const char* toString(WindowType type);
// scipy.signal.get_window(type, length, fftbins=!symmetric), computed in double.
std::vector<double> makeWindow(WindowType type, int length, bool symmetric);

// How the signal ends are padded for centred frames. librosa <= 0.8 (what deepspeech.pytorch's
// released models were trained with) reflected the whole signal, numpy.pad(mode='reflect');
// librosa >= 0.9 pads zeros by default.
enum class PadMode : uint8_t { kReflect, kConstant };

enum class Normalization : uint8_t {
  kNone,
  kPerUtterance,  // (x - mean) / std over all bins and frames, unbiased std (n - 1); silence gives 0s
  kGlobal,        // (x - mean) / std with FeatureConfig::mean / stddev
};

// What the features are. The defaults are deepspeech.pytorch's (loader/data_loader.py with its
// default SpectConfig and normalize=True, librosa <= 0.8 as its released models were trained):
//   samples scaled by 32768/32767 (it reads int16 and divides by 32767),
//   n_fft = window length = int(sample_rate * window_size), hop = int(sample_rate * window_stride),
//   periodic Hamming window (librosa builds it by name with fftbins=True),
//   centred frames with reflect padding of n_fft / 2 at both ends, 1 + n_fft / 2 bins,
//   log1p(|STFT|), per-utterance (x - mean) / std with the unbiased std (torch.std).
struct FeatureConfig {
  int sample_rate = 16000;
  double window_size = 0.02;    // seconds
  double window_stride = 0.01;  // seconds
  WindowType window = WindowType::kHamming;
  // true: symmetric window, as scipy.signal.hamming(n) passed as a function to librosa
  // (deepspeech.pytorch's older data/data_loader.py).
  bool symmetric_window = false;
  bool center = true;
  PadMode pad_mode = PadMode::kReflect;  // kConstant: what the same code gives with librosa >= 0.9
  double sample_scale = 32768.0 / 32767.0;
  // Rounds samples down to the 16-bit grid before scaling, as deepspeech.pytorch's
  // soundfile.read(dtype='int16') does to 24- and 32-bit PCM files (libsndfile drops the low
  // bits). No effect on 16-bit audio; off by default so resampled audio keeps its precision.
  bool truncate_to_int16 = false;
  Normalization normalization = Normalization::kPerUtterance;
  // kGlobal: one value, or one per frequency bin.
  std::vector<float> mean;
  std::vector<float> stddev;

  int fftSize() const;
  int hopSize() const;
  int bins() const;  // fftSize() / 2 + 1
  int64_t frames(size_t num_samples) const;  // 0 when too short for one frame
  void validate() const;                     // throws ds2rt::Error saying what is wrong

  // deepspeech.pytorch's defaults with the model's sample rate, sizes and window.
  static FeatureConfig fromSpectrogramConfig(const SpectrogramConfig& spect);
  // Reads global statistics and sets normalization = kGlobal: a .json file {"mean": m, "std": s}
  // (numbers or per-bin lists) or a .safetensors file with tensors "mean" and "std".
  void loadGlobalStats(const std::string& path);
};

namespace detail {
class RealFft;
}

// Computes features; immutable once built, so one extractor serves many threads.
class FeatureExtractor {
 public:
  explicit FeatureExtractor(FeatureConfig config);
  const FeatureConfig& config() const { return config_; }

  // 1 x 1 x bins x T float32 (bins-major, the engine's "features" input for one utterance).
  HostTensor compute(std::span<const float> samples) const;
  HostTensor compute(const Audio& audio) const;  // checks audio.sample_rate

 private:
  FeatureConfig config_;
  std::vector<double> window_;
  std::shared_ptr<const detail::RealFft> fft_;
};

struct FeatureBatch {
  HostTensor features;  // N x 1 x bins x Tmax float32, zero past each utterance's length
  HostTensor lengths;   // N int32: frames of each utterance
};
// Pads 1 x 1 x bins x T (or bins x T) feature tensors into one batch, in the given order.
FeatureBatch batchFeatures(std::span<const HostTensor> utterances);

}  // namespace ds2rt
