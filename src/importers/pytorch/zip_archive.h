// Read-only access to the entries of a zip archive in memory (libzip), with errors naming the
// file and the entry. torch.save archives hold STORED entries; compressed ones are read too.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

struct zip;

namespace ds2rt::pytorch {

class ZipArchive {
 public:
  // `bytes` must outlive the archive. `source` names the file in errors.
  static ZipArchive open(std::span<const uint8_t> bytes, std::string source);
  static bool hasZipMagic(std::span<const uint8_t> bytes);

  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const;
  // The whole entry; throws naming the entry when it is missing or corrupt.
  std::vector<uint8_t> read(const std::string& name) const;
  const std::string& source() const { return source_; }

 private:
  struct Closer {
    void operator()(zip* archive) const;
  };
  std::unique_ptr<zip, Closer> zip_;
  std::string source_;
  std::vector<std::string> names_;
  uint64_t file_size_ = 0;
};

}  // namespace ds2rt::pytorch
