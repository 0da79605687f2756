#include "importers/pytorch/zip_archive.h"

#include <zip.h>

#include <algorithm>
#include <cstring>

#include "ds2rt/error.h"

namespace ds2rt::pytorch {

namespace {

struct FileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};

// The deflate format cannot expand data more than about 1032 times: a larger declared size
// is a corrupt (or hostile) header, refused before anything is allocated.
constexpr uint64_t kMaxDeflateRatio = 1032;

}  // namespace

void ZipArchive::Closer::operator()(zip* archive) const { zip_discard(archive); }

bool ZipArchive::hasZipMagic(std::span<const uint8_t> bytes) {
  return bytes.size() >= 4 && std::memcmp(bytes.data(), "PK\x03\x04", 4) == 0;
}

ZipArchive ZipArchive::open(std::span<const uint8_t> bytes, std::string source) {
  check(hasZipMagic(bytes), "'", source, "' is not a zip archive");
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* data = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  zip_t* archive = data ? zip_open_from_source(data, ZIP_RDONLY | ZIP_CHECKCONS, &error) : nullptr;
  if (!archive) {
    if (data) zip_source_free(data);
    const std::string reason = zip_error_strerror(&error);
    zip_error_fini(&error);
    fail("'", source, "' is not a readable zip archive (", reason, "): truncated or corrupt file?");
  }
  zip_error_fini(&error);
  ZipArchive out;
  out.zip_.reset(archive);
  out.source_ = std::move(source);
  out.file_size_ = bytes.size();
  const zip_int64_t count = zip_get_num_entries(archive, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    const char* name = zip_get_name(archive, static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW);
    check(name != nullptr, "'", out.source_, "': zip entry ", i, " has no readable name");
    out.names_.emplace_back(name);
  }
  return out;
}

bool ZipArchive::contains(const std::string& name) const {
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

std::vector<uint8_t> ZipArchive::read(const std::string& name) const {
  const zip_int64_t index = zip_name_locate(zip_.get(), name.c_str(), ZIP_FL_ENC_RAW);
  check(index >= 0, "'", source_, "' has no entry '", name, "'");
  zip_stat_t st;
  zip_stat_init(&st);
  const auto needed = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
  check(zip_stat_index(zip_.get(), static_cast<zip_uint64_t>(index), 0, &st) == 0 && (st.valid & needed) == needed,
        "'", source_, "': cannot read the zip header of '", name, "'");
  const bool stored = st.comp_method == ZIP_CM_STORE;
  check(stored || st.comp_method == ZIP_CM_DEFLATE, "'", source_, "': entry '", name,
        "' uses zip compression method ", st.comp_method, " (torch.save stores entries uncompressed)");
  check(st.comp_size <= file_size_ && (stored ? st.size == st.comp_size : st.size / kMaxDeflateRatio <= st.comp_size),
        "'", source_, "': entry '", name, "' declares ", st.size, " bytes in ", st.comp_size,
        " (the file is truncated or corrupt)");

  std::unique_ptr<zip_file_t, FileCloser> file(zip_fopen_index(zip_.get(), static_cast<zip_uint64_t>(index), 0));
  check(file != nullptr, "'", source_, "': cannot open entry '", name, "': ", zip_strerror(zip_.get()));
  std::vector<uint8_t> out(static_cast<size_t>(st.size));
  uint64_t done = 0;
  while (done < st.size) {
    const zip_int64_t n = zip_fread(file.get(), out.data() + done, st.size - done);
    check(n > 0, "'", source_, "': cannot read entry '", name, "' (",
          n < 0 ? zip_file_strerror(file.get()) : "unexpected end of data", "): truncated or corrupt file?");
    done += static_cast<uint64_t>(n);
  }
  // Reading past the end makes libzip check the CRC.
  uint8_t extra;
  check(zip_fread(file.get(), &extra, 1) == 0, "'", source_, "': entry '", name,
        "' fails its checksum or is longer than declared: corrupt file");
  return out;
}

}  // namespace ds2rt::pytorch
