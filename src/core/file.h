// Whole-file I/O with errors that name the file.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ds2rt::detail {

// A read-only memory mapping of a whole file; copies share it, the last one unmaps.
class MappedFile {
 public:
  static MappedFile open(const std::string& path);
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::shared_ptr<const void>& keepAlive() const { return holder_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<const void> holder_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

std::string readTextFile(const std::string& path);
// Writes to a temporary file beside `path` and renames it over, so a failed write never
// leaves a half-written file under the final name.
void writeFileAtomically(const std::string& path, std::span<const uint8_t> bytes);

}  // namespace ds2rt::detail
