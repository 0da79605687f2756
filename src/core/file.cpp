#include "core/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "ds2rt/error.h"

namespace ds2rt::detail {

namespace {

// The live mappings (start -> size), so that releaseMappedPages() can tell file pages from memory
// that must keep its contents.
struct Mappings {
  std::mutex mutex;
  std::map<uintptr_t, size_t> live;
};
Mappings& mappings() {
  static Mappings* m = new Mappings;  // never destroyed: mappings may outlive static destruction
  return *m;
}

size_t pageSize() {
  static const size_t size = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace

MappedFile MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, "cannot open '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("'", path, "' is not a regular file");
  }
  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ == 0) {
    ::close(fd);
    file.holder_ = std::make_shared<int>(0);
    return file;
  }
  void* data = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  check(data != MAP_FAILED, "cannot map '", path, "': ", std::strerror(errno));
  const size_t size = file.size_;
  {
    std::lock_guard lock(mappings().mutex);
    mappings().live[reinterpret_cast<uintptr_t>(data)] = size;
  }
  file.holder_ = std::shared_ptr<const void>(data, [size](const void* p) {
    {
      std::lock_guard lock(mappings().mutex);
      mappings().live.erase(reinterpret_cast<uintptr_t>(p));
    }
    ::munmap(const_cast<void*>(p), size);
  });
  file.data_ = static_cast<const uint8_t*>(data);
  return file;
}

size_t residentBytes(const void* data, size_t bytes) {
  if (bytes == 0) return 0;
  const size_t page = pageSize();
  const auto first = reinterpret_cast<uintptr_t>(data) / page;
  const size_t pages = (reinterpret_cast<uintptr_t>(data) + bytes + page - 1) / page - first;
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  check(fd >= 0, "cannot open /proc/self/pagemap: ", std::strerror(errno));
  std::vector<uint64_t> entries(pages);  // bit 63: the page is present
  const ssize_t got = ::pread(fd, entries.data(), pages * sizeof(uint64_t), static_cast<off_t>(first * sizeof(uint64_t)));
  ::close(fd);
  check(got == static_cast<ssize_t>(pages * sizeof(uint64_t)), "cannot read /proc/self/pagemap");
  size_t resident = 0;
  for (uint64_t e : entries) resident += (e >> 63) & 1;
  return resident * page;
}

size_t releaseMappedPages(const void* data, size_t bytes) {
  const auto begin = reinterpret_cast<uintptr_t>(data), end = begin + bytes;
  const size_t page = pageSize();
  std::lock_guard lock(mappings().mutex);
  auto it = mappings().live.upper_bound(begin);
  if (it == mappings().live.begin()) return 0;
  --it;
  if (end > it->first + it->second) return 0;  // not (wholly) inside this mapping
  // Only whole pages: the neighbours' bytes on a shared page stay.
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last <= first) return 0;
  void* range = reinterpret_cast<void*>(first);
  // The kernel may map large page-cache folios of a file with 2 MiB entries. Such an entry over the
  // range would drag the released pages back in when a neighbour is touched; a range of its own
  // without huge pages cannot be covered by one. (Fails harmlessly where the kernel has no THP.)
  ::madvise(range, last - first, MADV_NOHUGEPAGE);
  check(::madvise(range, last - first, MADV_DONTNEED) == 0, "madvise(MADV_DONTNEED) failed: ", std::strerror(errno));
  return last - first;
}

std::string readTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void writeFileAtomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string temporary = path + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    check(out.good(), "cannot create '", temporary, "': ", std::strerror(errno));
    try {
      write(out);
    } catch (...) {
      out.close();
      std::remove(temporary.c_str());
      throw;
    }
    out.flush();
    if (!out.good()) {
      out.close();
      std::remove(temporary.c_str());
      fail("cannot write '", path, "' (disk full?)");
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    fail("cannot rename '", temporary, "' to '", path, "': ", std::strerror(errno));
  }
}

void writeFileAtomically(const std::string& path, std::span<const uint8_t> bytes) {
  writeFileAtomically(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  });
}

}  // namespace ds2rt::detail
