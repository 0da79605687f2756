// Whole-file I/O with errors that name the file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
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

// Drops this process's copy of the whole pages inside [data, data + bytes) where they lie in a
// live MappedFile: resident memory shrinks by them, and they are read back from the file if
// touched again (the mapping is private and read-only, so they never differ from the file).
// Memory that is not a file mapping (heap copies, an in-memory plan) is left alone. For weights
// that a kernel has copied into its own layout and no longer reads. Returns the bytes released.
size_t releaseMappedPages(const void* data, size_t bytes);

// Bytes of the pages touching [data, data + bytes) that are resident in this process now (its own
// page table, /proc/self/pagemap; not the page cache, which keeps released file pages).
size_t residentBytes(const void* data, size_t bytes);

std::string readTextFile(const std::string& path);
// Writes to a temporary file beside `path` and renames it over, so a failed write never
// leaves a half-written file under the final name.
void writeFileAtomically(const std::string& path, std::span<const uint8_t> bytes);
// The same with the content written by `write` (it may seek within what it wrote).
void writeFileAtomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace ds2rt::detail
