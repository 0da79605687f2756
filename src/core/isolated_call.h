// Runs a piece of work in a forked child process, so that a crash, a hang or a runaway allocation
// inside a library that is not hardened against crafted input (libhdf5) ends the child, never the
// host. Linux only: fork, memfd_create, pidfd_open.
//
// The child is a fork of a possibly multi-threaded process: only the forking thread exists in it,
// and a lock that another thread held at the fork stays locked there forever. glibc's malloc is
// reset in the child, so the work may allocate, but it must not start threads, take locks that
// other threads of the parent use, or rely on global state they may have been changing. The
// timeout turns any deadlock of that kind into an error rather than a hang of the host.
// Sanitizer runtimes that do not lock their allocator around fork (clang 14's and GCC 12's ASan;
// LLVM 17 added the lock) can leave it locked in the child when another thread was allocating:
// under them, a fork while other threads allocate may end in that timeout. Plain glibc malloc
// is reset in the child and is not affected.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

namespace ds2rt::detail {

struct IsolationLimits {
  std::chrono::milliseconds timeout{30000};
  // Address space the child may add to what it inherits (RLIMIT_AS); 0 leaves it unlimited.
  uint64_t extra_address_space = 0;
};

struct IsolatedResult {
  enum class Outcome { kDone, kCrashed, kTimedOut, kOutOfMemory, kFailed };
  Outcome outcome = Outcome::kFailed;
  int signal = 0;       // kCrashed: the signal that ended the child
  int exit_status = 0;  // kFailed: the child's exit status (-1: its status was lost)
  std::span<const uint8_t> output;         // kDone: everything the child wrote
  std::shared_ptr<const void> keep_alive;  // owns `output` (a read-only mapping)
  // "crashed (signal 11: Segmentation fault)", "did not finish within 30 s", ...
  std::string describe(const IsolationLimits& limits) const;
};

// Runs `work(fd)` in a child process; the child writes its result to `fd` (see writeAll). The
// child ends with _exit: no atexit handler or static destructor of the parent's runs there. An
// exception from `work` ends the child as kOutOfMemory (std::bad_alloc) or kFailed. Throws
// ds2rt::Error only when the child cannot be started.
IsolatedResult runIsolated(const std::function<void(int fd)>& work, const IsolationLimits& limits);

// Writes all of `bytes` to `fd`; throws std::bad_alloc when the output cannot grow (the child's
// file size limit, or no memory left for it), std::runtime_error on other write errors.
void writeAll(int fd, std::span<const uint8_t> bytes);

}  // namespace ds2rt::detail
