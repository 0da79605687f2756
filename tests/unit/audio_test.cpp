// Audio input: formats, sample formats, mixing to mono, resampling, raw PCM, and every kind of
// bad input ending in a ds2rt::Error that names the file and the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <sstream>

#include "ds2rt/audio.h"
#include "ds2rt/error.h"
#include "test_util.h"

// libsndfile 1.2.0 leaks the vorbis_info that libvorbis allocates when it fails to open a
// damaged Ogg/Vorbis file (the truncation test below); not ds2rt's memory, so LeakSanitizer
// (SANITIZE=address) is told to ignore it.
extern "C" const char* __lsan_default_suppressions() { return "leak:vorbis_info_init\n"; }

namespace ds2rt {
namespace {

using test::dataPath;
using test::errorOf;
using test::tempPath;
using testing::HasSubstr;

std::vector<uint8_t> readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string writeTemp(const std::string& name, std::span<const uint8_t> bytes) {
  const std::string path = tempPath(name);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return path;
}

// The sample bytes of a plain PCM WAV (its "data" chunk).
std::span<const uint8_t> wavData(const std::vector<uint8_t>& wav) {
  for (size_t offset = 12; offset + 8 <= wav.size();) {
    uint32_t size;
    std::memcpy(&size, wav.data() + offset + 4, 4);
    if (std::memcmp(wav.data() + offset, "data", 4) == 0) return {wav.data() + offset + 8, size};
    offset += 8 + size + (size & 1);
  }
  ADD_FAILURE() << "no data chunk";
  return {};
}


double rms(std::span<const float> x) {
  double sum = 0;
  for (float v : x) sum += double(v) * v;
  return std::sqrt(sum / double(x.size()));
}

Audio sine(double frequency, int rate, double seconds, float amplitude = 0.5f) {
  Audio audio{std::vector<float>(size_t(rate * seconds)), rate};
  for (size_t i = 0; i < audio.samples.size(); ++i)
    audio.samples[i] = amplitude * float(std::sin(2 * std::numbers::pi * frequency * double(i) / rate));
  return audio;
}

// Frequency from the rising zero crossings, ignoring the resampler's edges.
double measuredFrequency(const Audio& audio) {
  const size_t begin = audio.samples.size() / 10, end = audio.samples.size() * 9 / 10;
  double first = -1, last = -1;
  int crossings = 0;
  for (size_t i = begin; i + 1 < end; ++i) {
    const float a = audio.samples[i], b = audio.samples[i + 1];
    if (a < 0 && b >= 0) {
      const double t = double(i) + a / (a - b);  // linear interpolation of the crossing
      if (first < 0) first = t;
      else ++crossings;
      last = t;
    }
  }
  return crossings * double(audio.sample_rate) / (last - first);
}

TEST(Audio, LinkedLibsndfileReadsTheCommonFormats) {
  std::string extensions;
  for (const AudioFormat& f : audioFormats()) extensions += f.extension + " ";
  for (const char* ext : {"wav", "flac", "oga", "m1a"}) EXPECT_THAT(extensions, HasSubstr(ext));
}

TEST(Audio, Pcm16WavAtTheModelRateIsDecodedExactly) {
  const std::string path = dataPath("audio/hello_16k.wav");
  const Audio audio = loadAudio(path, 16000);
  const std::vector<uint8_t> wav = readBytes(path);
  const std::span<const uint8_t> data = wavData(wav);
  ASSERT_EQ(audio.sample_rate, 16000);
  ASSERT_EQ(audio.samples.size(), data.size() / 2);
  EXPECT_NEAR(audio.seconds(), double(data.size() / 2) / 16000, 1e-12);
  for (size_t i = 0; i < audio.samples.size(); ++i) {
    const auto value = int16_t(data[2 * i] | data[2 * i + 1] << 8);
    ASSERT_EQ(audio.samples[i], float(value) / 32768.0f) << "sample " << i;  // untouched: no resampling
  }
  // The same bytes from memory and as raw PCM from a stream.
  EXPECT_EQ(decodeAudio(wav, 16000, "hello").samples, audio.samples);
  EXPECT_EQ(decodePcm16(data, 16000, 1, 16000).samples, audio.samples);
  std::istringstream stream(std::string(data.begin(), data.end()));
  EXPECT_EQ(readPcm16(stream, 16000, 1, 16000).samples, audio.samples);
}

TEST(Audio, WiderSampleFormatsDecodeToTheSameSignal) {
  // Made from the same synthesis as the 16-bit files: they differ by 16-bit rounding only.
  const Audio s16 = loadAudio(dataPath("audio/hello_16k.wav"), 16000);
  const Audio s24 = loadAudio(dataPath("audio/hello_16k_s24.wav"), 16000);
  ASSERT_EQ(s24.samples.size(), s16.samples.size());
  for (size_t i = 0; i < s16.samples.size(); ++i) ASSERT_NEAR(s24.samples[i], s16.samples[i], 1.0 / 32768) << i;

  const Audio d16 = loadAudio(dataPath("audio/door_16k.wav"), 16000);
  const Audio f32 = loadAudio(dataPath("audio/door_16k_f32.wav"), 16000);
  ASSERT_EQ(f32.samples.size(), d16.samples.size());
  for (size_t i = 0; i < d16.samples.size(); ++i) ASSERT_NEAR(f32.samples[i], d16.samples[i], 1.0 / 32768) << i;
}

TEST(Audio, CompressedFormatsDecode) {
  const Audio reference = loadAudio(dataPath("audio/hello_16k.wav"), 16000);
  for (const char* name : {"hello_16k.ogg", "hello_16k.opus", "hello_16k.mp3"}) {
    SCOPED_TRACE(name);
    const Audio audio = loadAudio(dataPath(std::string("audio/") + name), 16000);
    EXPECT_EQ(audio.sample_rate, 16000);
    EXPECT_NEAR(audio.seconds(), reference.seconds(), 0.1);  // codecs add a little padding
    EXPECT_NEAR(rms(audio.samples), rms(reference.samples), 0.25 * rms(reference.samples));
    for (float x : audio.samples) ASSERT_TRUE(x >= -1.0f && x <= 1.0f);
  }
  const Audio flac = loadAudio(dataPath("audio/numbers_16k.flac"), 16000);
  EXPECT_GT(flac.seconds(), 1.0);
}

TEST(Audio, ChannelsAreMixedToTheirMean) {
  const std::vector<float> stereo{1.0f, 3.0f, -1.0f, 1.0f, 0.5f, 0.25f};
  EXPECT_EQ(mixToMono(stereo, 2), (std::vector<float>{2.0f, 0.0f, 0.375f}));
  EXPECT_EQ(mixToMono(stereo, 3), (std::vector<float>{1.0f, 1.75f / 3.0f}));
  EXPECT_THAT(errorOf([&] { mixToMono(stereo, 4); }), HasSubstr("not a whole number of 4-channel frames"));

  const std::string path = dataPath("audio/stereo_16k.wav");
  const std::vector<uint8_t> wav = readBytes(path);
  const std::span<const uint8_t> data = wavData(wav);
  const Audio audio = loadAudio(path, 16000);
  ASSERT_EQ(audio.samples.size(), data.size() / 4);
  for (size_t i = 0; i < audio.samples.size(); ++i) {
    const auto left = int16_t(data[4 * i] | data[4 * i + 1] << 8);
    const auto right = int16_t(data[4 * i + 2] | data[4 * i + 3] << 8);
    ASSERT_EQ(audio.samples[i], (left / 32768.0f + right / 32768.0f) / 2) << i;
  }
  EXPECT_EQ(decodePcm16(data, 16000, 2, 16000).samples, audio.samples);
}

TEST(Audio, ResamplingKeepsDurationFrequencyAndLevel) {
  for (auto [from, to] : {std::pair{44100, 16000}, {48000, 16000}, {8000, 16000}, {16000, 22050}}) {
    SCOPED_TRACE(std::to_string(from) + " -> " + std::to_string(to));
    const Audio out = resample(sine(440.0, from, 1.0), to);
    EXPECT_EQ(out.sample_rate, to);
    EXPECT_NEAR(double(out.samples.size()), double(to), 1.0);
    EXPECT_NEAR(measuredFrequency(out), 440.0, 0.05);
    const std::span<const float> middle(out.samples.data() + to / 10, size_t(to * 8 / 10));
    EXPECT_NEAR(rms(middle), 0.5 / std::sqrt(2.0), 1e-3);
  }
  const Audio same = sine(440.0, 16000, 0.1);
  EXPECT_EQ(resample(same, 16000).samples, same.samples);

  const Audio low = loadAudio(dataPath("audio/hello_8k.wav"), 16000);
  const Audio native = loadAudio(dataPath("audio/hello_8k.wav"), 8000);
  EXPECT_EQ(low.sample_rate, 16000);
  EXPECT_NEAR(double(low.samples.size()), 2.0 * double(native.samples.size()), 1.0);
}

TEST(Audio, TheFilesOwnRateSurvivesResampling) {
  EXPECT_EQ(loadAudio(dataPath("audio/hello_8k.wav"), 16000).source_rate, 8000);
  EXPECT_EQ(loadAudio(dataPath("audio/hello_8k.wav"), 8000).source_rate, 8000);
  EXPECT_EQ(loadAudio(dataPath("audio/numbers_48k.wav"), 16000).source_rate, 48000);
  const std::vector<uint8_t> pcm(2 * 2 * 441, 0);  // 10 ms of stereo silence at 44.1 kHz
  const Audio raw = decodePcm16(pcm, 44100, 2, 16000);
  EXPECT_EQ(raw.source_rate, 44100);
  EXPECT_EQ(raw.sample_rate, 16000);
  EXPECT_EQ(resample(resample(sine(440.0, 22050, 0.1), 16000), 8000).source_rate, 22050);  // the first rate
  EXPECT_EQ(resample(sine(440.0, 16000, 0.1), 16000).source_rate, 16000);
}

// What transcribe, eval and the Python Transcriber warn about: a narrower band than the model's
// (recorded below its rate, or resampled down on the way) and digital silence; nothing for speech.
TEST(Audio, WarningsNameNarrowBandsAndSilence) {
  const auto warnings = [](const Audio& a) { return audioWarnings(a, 16000); };
  EXPECT_THAT(warnings(loadAudio(dataPath("audio/hello_16k.wav"), 16000)), testing::IsEmpty());
  EXPECT_THAT(warnings(loadAudio(dataPath("audio/numbers_48k.wav"), 16000)), testing::IsEmpty());
  EXPECT_THAT(warnings(loadAudio(dataPath("audio/hello_8k.wav"), 16000)),
              testing::ElementsAre(AllOf(HasSubstr("8000 Hz audio"), HasSubstr("nothing above 4000 Hz"))));
  // Resampled down to 11025 Hz: only that band is left, whatever the file held.
  EXPECT_THAT(warnings(resample(sine(440.0, 48000, 0.1, 0.5f), 11025)),
              testing::ElementsAre(HasSubstr("11025 Hz audio")));
  const Audio silent{std::vector<float>(16000, 0.0f), 16000, 8000};
  EXPECT_THAT(warnings(silent), testing::ElementsAre(HasSubstr("8000 Hz"), HasSubstr("silent (peak 0)")));
  const Audio dither{std::vector<float>(16000, 1.0f / 32768.0f), 16000};
  EXPECT_THAT(warnings(dither), testing::ElementsAre(HasSubstr("silent (peak -90 dBFS)")));
  EXPECT_THAT(warnings(Audio{std::vector<float>(16000, 3.0f / 32768.0f), 16000}), testing::IsEmpty());
}

// Long audio is cut at pauses into spans of at most the given length that cover every sample.
TEST(Audio, SplitAtPausesCutsInTheSilences) {
  Audio speechlike{{}, 16000};  // 10 x (3 s of tone, 0.4 s of silence): 34 s
  std::vector<std::pair<size_t, size_t>> gaps;
  for (int i = 0; i < 10; ++i) {
    const Audio tone = sine(300.0 + 50 * i, 16000, 3.0);
    speechlike.samples.insert(speechlike.samples.end(), tone.samples.begin(), tone.samples.end());
    gaps.emplace_back(speechlike.samples.size(), speechlike.samples.size() + 6400);
    speechlike.samples.resize(speechlike.samples.size() + 6400, 0.0f);
  }
  const auto check_cover = [](const std::vector<AudioSpan>& spans, const Audio& audio, double max_seconds) {
    ASSERT_FALSE(spans.empty());
    EXPECT_EQ(spans.front().begin, 0u);
    EXPECT_EQ(spans.back().end, audio.samples.size());
    for (size_t i = 0; i < spans.size(); ++i) {
      EXPECT_LT(spans[i].begin, spans[i].end);
      EXPECT_LE(spans[i].end - spans[i].begin, static_cast<size_t>(max_seconds * audio.sample_rate));
      if (i > 0) EXPECT_EQ(spans[i].begin, spans[i - 1].end);
    }
  };
  const auto spans = splitAtPauses(speechlike, 10.0);
  check_cover(spans, speechlike, 10.0);
  EXPECT_GE(spans.size(), 4u);
  for (size_t i = 0; i + 1 < spans.size(); ++i) {
    const size_t cut = spans[i].end;
    EXPECT_TRUE(std::any_of(gaps.begin(), gaps.end(), [&](const auto& g) { return cut > g.first && cut < g.second; }))
        << "cut at " << cut / 16000.0 << " s is not in a pause";
  }
  // Short audio stays whole; audio without pauses is cut anyway, within the limit.
  EXPECT_EQ(splitAtPauses(sine(440.0, 16000, 5.0), 10.0).size(), 1u);
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  Audio hiss{std::vector<float>(16000 * 25), 16000};
  for (float& s : hiss.samples) s = noise(rng);
  const auto hiss_spans = splitAtPauses(hiss, 10.0);
  check_cover(hiss_spans, hiss, 10.0);
  EXPECT_GE(hiss_spans.size(), 3u);
  EXPECT_LE(hiss_spans.size(), 5u);
  EXPECT_THAT(errorOf([&] { splitAtPauses(hiss, 0.5); }), HasSubstr("at least 1 s"));
  EXPECT_THAT(errorOf([] { splitAtPauses(Audio{{0.1f, 0.2f}, 0}, 10.0); }), HasSubstr("no sample rate"));
}

// ---- Bad input --------------------------------------------------------------------------------

class BadAudio : public testing::Test {
 protected:
  std::vector<uint8_t> wav = readBytes(dataPath("audio/hello_16k.wav"));

  std::string loadError(const std::string& name, std::span<const uint8_t> bytes) {
    const std::string path = writeTemp(name, bytes);
    const std::string message = errorOf([&] { loadAudio(path, 16000); });
    EXPECT_THAT(message, HasSubstr(path));
    std::filesystem::remove(path);
    return message;
  }
};

TEST_F(BadAudio, MissingFile) {
  const std::string path = tempPath("does_not_exist.wav");
  EXPECT_THAT(errorOf([&] { loadAudio(path, 16000); }), HasSubstr("'" + path + "': no such file"));
}

TEST_F(BadAudio, Directory) {
  const std::string path = dataPath("audio");
  EXPECT_THAT(errorOf([&] { loadAudio(path, 16000); }), HasSubstr("'" + path + "': is a directory"));
}

TEST_F(BadAudio, EmptyFile) { EXPECT_THAT(loadError("empty.wav", {}), HasSubstr("empty file (0 bytes)")); }

TEST_F(BadAudio, TruncatedWav) {
  EXPECT_THAT(loadError("truncated.wav", std::span(wav).first(20000)),
              HasSubstr("truncated WAV: its data chunk declares 33654 bytes, the file holds 19956"));
  EXPECT_THAT(loadError("header_only.wav", std::span(wav).first(30)), HasSubstr("not a readable audio file"));
}

TEST_F(BadAudio, CorruptHeader) {
  std::vector<uint8_t> bad = wav;
  bad[20] = 0x34, bad[21] = 0x12;  // unknown format tag
  EXPECT_THAT(loadError("bad_format.wav", bad), HasSubstr("libsndfile: Error in WAV/W64/RF64 file. Malformed 'fmt '"));
  bad = wav;
  bad[22] = bad[23] = 0;
  EXPECT_THAT(loadError("no_channels.wav", bad), HasSubstr("the WAV header declares 0 channels"));
  bad = wav;
  std::fill(bad.begin() + 24, bad.begin() + 28, 0);
  EXPECT_THAT(loadError("rate0.wav", bad), HasSubstr("a sample rate of 0 Hz"));
}

// A mono WAV with IEEE float samples.
std::vector<uint8_t> floatWav(const std::vector<float>& samples, int rate) {
  const auto u32 = [](std::vector<uint8_t>& v, uint32_t x) {
    for (int i = 0; i < 4; ++i) v.push_back(uint8_t(x >> 8 * i));
  };
  const auto u16 = [](std::vector<uint8_t>& v, uint16_t x) { v.push_back(uint8_t(x)), v.push_back(uint8_t(x >> 8)); };
  const auto data_bytes = uint32_t(samples.size() * 4);
  std::vector<uint8_t> wav{'R', 'I', 'F', 'F'};
  u32(wav, 36 + data_bytes);
  for (char c : std::string("WAVEfmt ")) wav.push_back(uint8_t(c));
  u32(wav, 16), u16(wav, 3), u16(wav, 1);  // fmt size, IEEE float, mono
  u32(wav, uint32_t(rate)), u32(wav, uint32_t(rate) * 4), u16(wav, 4), u16(wav, 32);
  for (char c : std::string("data")) wav.push_back(uint8_t(c));
  u32(wav, data_bytes);
  const auto* bytes = reinterpret_cast<const uint8_t*>(samples.data());
  wav.insert(wav.end(), bytes, bytes + data_bytes);
  return wav;
}

TEST_F(BadAudio, FloatSamplesAreClippedAndMustBeFinite) {
  const Audio audio = decodeAudio(floatWav({0.5f, 1.5f, -2.0f, -0.25f}, 16000), 16000, "float");
  EXPECT_EQ(audio.samples, (std::vector<float>{0.5f, 1.0f, -1.0f, -0.25f}));
  EXPECT_THAT(loadError("nan.wav", floatWav({0.5f, NAN, 0.0f}, 16000)), HasSubstr("frame 1 holds a non-finite sample"));
}

TEST_F(BadAudio, StreamedWavWithoutSizesIsNotTruncated) {
  std::vector<uint8_t> streamed = wav;
  std::fill(streamed.begin() + 4, streamed.begin() + 8, 0xFF);   // RIFF size unknown
  std::fill(streamed.begin() + 40, streamed.begin() + 44, 0xFF);  // data size unknown
  EXPECT_EQ(decodeAudio(streamed, 16000, "streamed").samples, decodeAudio(wav, 16000, "file").samples);
}

TEST_F(BadAudio, TextFileNamedWav) {
  const std::string text = "this is not audio, just text\n";
  EXPECT_THAT(loadError("text.wav", std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size())),
              HasSubstr("not a readable audio file (libsndfile: Format not recognised"));
}

TEST_F(BadAudio, TruncatedFlac) {
  const std::vector<uint8_t> flac = readBytes(dataPath("audio/numbers_16k.flac"));
  EXPECT_THAT(loadError("truncated.flac", std::span(flac).first(flac.size() / 2)), HasSubstr("FLAC"));
}

TEST_F(BadAudio, EveryTruncationIsAnErrorOrAudioNeverACrash) {
  for (const char* name : {"hello_16k.wav", "numbers_16k.flac", "hello_16k.ogg", "hello_16k.opus", "hello_16k.mp3"}) {
    const std::vector<uint8_t> bytes = readBytes(dataPath(std::string("audio/") + name));
    for (size_t length = 0; length < bytes.size(); length += 1 + length / 3) {
      try {
        const Audio audio = decodeAudio(std::span(bytes).first(length), 16000, name);
        EXPECT_FALSE(audio.samples.empty());
      } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr(name));
      }
    }
  }
}

TEST_F(BadAudio, RatesAndRawPcm) {
  const std::string path = dataPath("audio/hello_16k.wav");
  EXPECT_THAT(errorOf([&] { loadAudio(path, 0); }), HasSubstr("the target sample rate must be positive, got 0"));
  const std::vector<uint8_t> pcm(100, 0);
  EXPECT_THAT(errorOf([&] { decodePcm16(pcm, 0, 1, 16000, "mic"); }),
              HasSubstr("'mic': the sample rate of raw PCM must be positive, got 0"));
  EXPECT_THAT(errorOf([&] { decodePcm16(pcm, 16000, 0, 16000, "mic"); }), HasSubstr("channel count"));
  EXPECT_THAT(errorOf([&] { decodePcm16(std::span(pcm).first(99), 16000, 1, 16000, "mic"); }),
              HasSubstr("'mic': raw PCM of 99 bytes is not a whole number of 16-bit 1-channel frames"));
  EXPECT_THAT(errorOf([&] { decodePcm16(std::span(pcm).first(98), 16000, 4, 16000, "mic"); }),
              HasSubstr("98 bytes is not a whole number of 16-bit 4-channel frames"));
  EXPECT_THAT(errorOf([&] { decodePcm16({}, 16000, 1, 16000, "mic"); }), HasSubstr("no PCM data"));
  std::istringstream odd("abc");
  EXPECT_THAT(errorOf([&] { readPcm16(odd, 16000, 1, 16000); }), HasSubstr("'<stdin>': raw PCM of 3 bytes"));
}

}  // namespace
}  // namespace ds2rt
