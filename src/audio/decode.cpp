// Decoding audio files (libsndfile, through its virtual I/O over the bytes of the file) and raw
// 16-bit PCM, then mixing to mono.
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <memory>
#include <optional>

#include "core/file.h"
#include "ds2rt/audio.h"
#include "ds2rt/error.h"

namespace ds2rt {
namespace {

template <typename... Parts>
[[noreturn]] void audioFail(const std::string& name, Parts&&... parts) {
  fail("cannot read audio '", name, "': ", std::forward<Parts>(parts)...);
}

struct SndfileCloser {
  void operator()(SNDFILE* file) const { sf_close(file); }
};
using Sndfile = std::unique_ptr<SNDFILE, SndfileCloser>;

// libsndfile's virtual I/O over a byte span.
struct MemoryStream {
  std::span<const uint8_t> bytes;
  sf_count_t position = 0;

  static MemoryStream& of(void* user) { return *static_cast<MemoryStream*>(user); }
  static sf_count_t length(void* user) { return static_cast<sf_count_t>(of(user).bytes.size()); }
  static sf_count_t seek(sf_count_t offset, int whence, void* user) {
    MemoryStream& s = of(user);
    const sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s.position : length(user);
    s.position = std::clamp<sf_count_t>(base + offset, 0, length(user));
    return s.position;
  }
  static sf_count_t read(void* out, sf_count_t count, void* user) {
    MemoryStream& s = of(user);
    const sf_count_t n = std::clamp<sf_count_t>(length(user) - s.position, 0, count);
    std::memcpy(out, s.bytes.data() + s.position, static_cast<size_t>(n));
    s.position += n;
    return n;
  }
  static sf_count_t write(const void*, sf_count_t, void*) { return 0; }
  static sf_count_t tell(void* user) { return of(user).position; }
};

uint32_t le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

// Checks what libsndfile lets through or words poorly in a WAV's chunk list: a data chunk that
// runs past the end of the file (libsndfile just returns fewer frames) and a format chunk with
// no channels or a zero sample rate. Data sizes 0 and 0xFFFFFFFF are what streaming writers
// leave when they cannot seek back; those files are fine.
std::optional<std::string> wavHeaderProblem(std::span<const uint8_t> bytes) {
  if (bytes.size() < 12 || std::memcmp(bytes.data(), "RIFF", 4) != 0 || std::memcmp(bytes.data() + 8, "WAVE", 4) != 0)
    return std::nullopt;
  for (uint64_t offset = 12; offset + 8 <= bytes.size();) {
    const uint8_t* chunk = bytes.data() + offset;
    const uint32_t size = le32(chunk + 4);
    const uint64_t available = bytes.size() - offset - 8;
    if (std::memcmp(chunk, "fmt ", 4) == 0 && size >= 16 && available >= 16) {
      if (le16(chunk + 10) == 0) return "the WAV header declares 0 channels";
      if (le32(chunk + 12) == 0) return "the WAV header declares a sample rate of 0 Hz";
    }
    if (std::memcmp(chunk, "data", 4) == 0) {
      if (size != 0 && size != 0xFFFFFFFFu && size > available)
        return cat("truncated WAV: its data chunk declares ", size, " bytes, the file holds ", available);
      return std::nullopt;
    }
    offset += 8 + uint64_t{size} + (size & 1);
  }
  return std::nullopt;
}

std::string majorFormatName(int format) {
  SF_FORMAT_INFO info{};
  info.format = format & SF_FORMAT_TYPEMASK;
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &info, sizeof info) != 0 || info.name == nullptr) return "audio";
  return info.name;
}

std::vector<float> readFrames(SNDFILE* file, const SF_INFO& info, const std::string& name) {
  constexpr sf_count_t kChunkFrames = 4096;
  std::vector<float> interleaved;
  // MP3 and Ogg lengths are estimates (or SF_COUNT_MAX when unknown); only reserve exact ones.
  const bool exact_length = (info.format & SF_FORMAT_TYPEMASK) != SF_FORMAT_MPEG && info.frames > 0 &&
                            info.frames < (sf_count_t{1} << 40) / info.channels;
  if (exact_length) interleaved.reserve(static_cast<size_t>(info.frames * info.channels));
  std::vector<float> chunk(static_cast<size_t>(kChunkFrames * info.channels));
  sf_count_t total = 0;
  for (sf_count_t n; (n = sf_readf_float(file, chunk.data(), kChunkFrames)) > 0; total += n)
    interleaved.insert(interleaved.end(), chunk.begin(), chunk.begin() + n * info.channels);
  if (sf_error(file) != SF_ERR_NO_ERROR)
    audioFail(name, "corrupt or truncated ", majorFormatName(info.format), " data after ", total, " frames (",
              sf_strerror(file), ")");
  if (exact_length && total < info.frames)
    audioFail(name, "truncated ", majorFormatName(info.format), ": the header declares ", info.frames,
              " frames, only ", total, " could be decoded");
  if (total == 0) audioFail(name, "the file holds no audio frames");
  // Float and lossy sources can exceed full scale; integer PCM already lies in [-1, 1).
  for (size_t i = 0; i < interleaved.size(); ++i) {
    if (!std::isfinite(interleaved[i]))
      audioFail(name, "frame ", i / static_cast<size_t>(info.channels), " holds a non-finite sample");
    interleaved[i] = std::clamp(interleaved[i], -1.0f, 1.0f);
  }
  return interleaved;
}

void checkTargetRate(int target_rate, const std::string& name) {
  if (target_rate <= 0) audioFail(name, "the target sample rate must be positive, got ", target_rate);
}

}  // namespace

double Audio::seconds() const { return sample_rate > 0 ? static_cast<double>(samples.size()) / sample_rate : 0.0; }

std::vector<float> mixToMono(std::span<const float> interleaved, int channels) {
  check(channels > 0, "mixToMono: channel count must be positive, got ", channels);
  check(interleaved.size() % static_cast<size_t>(channels) == 0, "mixToMono: ", interleaved.size(),
        " samples are not a whole number of ", channels, "-channel frames");
  if (channels == 1) return {interleaved.begin(), interleaved.end()};
  std::vector<float> mono(interleaved.size() / static_cast<size_t>(channels));
  for (size_t i = 0; i < mono.size(); ++i) {
    float sum = 0.0f;
    for (int c = 0; c < channels; ++c) sum += interleaved[i * channels + c];
    mono[i] = sum / static_cast<float>(channels);
  }
  return mono;
}

Audio decodeAudio(std::span<const uint8_t> encoded, int target_rate, const std::string& name) {
  checkTargetRate(target_rate, name);
  if (encoded.empty()) audioFail(name, "empty file (0 bytes)");
  if (auto problem = wavHeaderProblem(encoded)) audioFail(name, *problem);

  MemoryStream stream{encoded};
  SF_VIRTUAL_IO io{&MemoryStream::length, &MemoryStream::seek, &MemoryStream::read, &MemoryStream::write,
                   &MemoryStream::tell};
  SF_INFO info{};
  Sndfile file(sf_open_virtual(&io, SFM_READ, &info, &stream));
  // sf_strerror(nullptr) is libsndfile's last global error: the best it offers for a failed open.
  if (!file) audioFail(name, "not a readable audio file (libsndfile: ", sf_strerror(nullptr), ")");
  if (info.channels <= 0) audioFail(name, "the header declares ", info.channels, " channels");
  if (info.samplerate <= 0) audioFail(name, "the header declares a sample rate of ", info.samplerate, " Hz");

  const std::vector<float> interleaved = readFrames(file.get(), info, name);
  return resample({mixToMono(interleaved, info.channels), info.samplerate}, target_rate);
}

Audio loadAudio(const std::string& path, int target_rate) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) audioFail(path, "no such file");
  if (std::filesystem::is_directory(status)) audioFail(path, "is a directory, not an audio file");
  const detail::MappedFile file = detail::MappedFile::open(path);
  return decodeAudio(file.bytes(), target_rate, path);
}

Audio decodePcm16(std::span<const uint8_t> pcm, int rate, int channels, int target_rate, const std::string& name) {
  checkTargetRate(target_rate, name);
  if (rate <= 0) audioFail(name, "the sample rate of raw PCM must be positive, got ", rate);
  if (channels <= 0) audioFail(name, "the channel count of raw PCM must be positive, got ", channels);
  const size_t frame_bytes = 2 * static_cast<size_t>(channels);
  if (pcm.empty()) audioFail(name, "no PCM data (0 bytes)");
  if (pcm.size() % frame_bytes != 0)
    audioFail(name, "raw PCM of ", pcm.size(), " bytes is not a whole number of 16-bit ", channels, "-channel frames (",
              frame_bytes, " bytes each)");
  std::vector<float> interleaved(pcm.size() / 2);
  for (size_t i = 0; i < interleaved.size(); ++i) {
    const auto value = static_cast<int16_t>(pcm[2 * i] | pcm[2 * i + 1] << 8);
    interleaved[i] = static_cast<float>(value) / 32768.0f;
  }
  return resample({mixToMono(interleaved, channels), rate}, target_rate);
}

Audio readPcm16(std::istream& in, int rate, int channels, int target_rate, const std::string& name) {
  std::vector<uint8_t> bytes;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0)
    bytes.insert(bytes.end(), buffer, buffer + in.gcount());
  if (in.bad()) audioFail(name, "reading the stream failed");
  return decodePcm16(bytes, rate, channels, target_rate, name);
}

std::vector<AudioFormat> audioFormats() {
  int count = 0;
  sf_command(nullptr, SFC_GET_FORMAT_MAJOR_COUNT, &count, sizeof count);
  std::vector<AudioFormat> formats;
  for (int i = 0; i < count; ++i) {
    SF_FORMAT_INFO info{};
    info.format = i;
    if (sf_command(nullptr, SFC_GET_FORMAT_MAJOR, &info, sizeof info) == 0 && info.name != nullptr)
      formats.push_back({info.name, info.extension != nullptr ? info.extension : ""});
  }
  return formats;
}

}  // namespace ds2rt
