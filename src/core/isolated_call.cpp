#include "core/isolated_call.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <new>
#include <stdexcept>
#include <thread>

#include "ds2rt/error.h"

// Sanitizer runtimes define it; elsewhere it stays null.
extern "C" __attribute__((weak)) void __sanitizer_set_death_callback(void (*callback)());

namespace ds2rt::detail {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kExitOutOfMemory = 3;
constexpr int kExitFailed = 4;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { if (fd_ >= 0) ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The parent's address space now (what the child inherits), from /proc/self/statm.
uint64_t currentAddressSpace() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages = 0;
  statm >> pages;
  return pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

[[noreturn]] void childMain(const std::function<void(int)>& work, int fd, const IsolationLimits& limits,
                            uint64_t address_space, pid_t parent) {
  // A crash must end the child by its signal: handlers inherited from the parent (a sanitizer's,
  // libFuzzer's, the host's) would report it, or write a crash file, as if the parent had crashed.
  for (const int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS}) std::signal(s, SIG_DFL);
  // A sanitizer's report ends the child with an exit status; libFuzzer's death callback would
  // first save the input as a crash of the fuzzer.
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(nullptr);
  std::signal(SIGXFSZ, SIG_IGN);  // output past RLIMIT_FSIZE fails with EFBIG instead
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(kExitFailed);  // the parent already went
  const rlimit no_core{0, 0};  // a crafted file is no reason for a core dump
  ::setrlimit(RLIMIT_CORE, &no_core);
  if (limits.extra_address_space > 0) {
    const rlimit as{address_space + limits.extra_address_space, address_space + limits.extra_address_space};
    const rlimit fsize{limits.extra_address_space, limits.extra_address_space};
    ::setrlimit(RLIMIT_AS, &as);
    ::setrlimit(RLIMIT_FSIZE, &fsize);
  }
  int status = 0;
  try {
    work(fd);
  } catch (const std::bad_alloc&) {
    status = kExitOutOfMemory;
  } catch (...) {
    status = kExitFailed;
  }
  ::_exit(status);  // no atexit handlers, static destructors or leak checks of the parent's state
}

int waitForExit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;  // ECHILD: SIGCHLD ignored, or reaped by another waitpid
  }
  return status;
}

// Waits until the child ends or the deadline passes; true if it ended.
bool waitUntil(pid_t pid, int pidfd, Clock::time_point deadline, int& status, bool& reaped) {
  if (pidfd >= 0) {
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{pidfd, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) break;  // fall back to polling waitpid
    }
  }
  // Kernels before 5.3 have no pidfd.
  for (auto sleep = std::chrono::microseconds(100);; sleep = std::min(sleep * 2, std::chrono::microseconds(10000))) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      reaped = true;
      return true;
    }
    if (r < 0 && errno != EINTR) {
      reaped = true;
      status = -1;
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(sleep);
  }
}

}  // namespace

std::string IsolatedResult::describe(const IsolationLimits& limits) const {
  switch (outcome) {
    case Outcome::kDone: return "finished";
    case Outcome::kCrashed: return cat("crashed (signal ", signal, ": ", ::sigdescr_np(signal), ")");
    case Outcome::kTimedOut: return cat("did not finish within ", limits.timeout.count() / 1000.0, " s");
    case Outcome::kOutOfMemory: return cat("ran out of memory (limit ", limits.extra_address_space >> 20, " MiB)");
    case Outcome::kFailed: break;
  }
  return exit_status < 0 ? std::string("ended, and its exit status was lost") : cat("failed (exit status ", exit_status, ")");
}

IsolatedResult runIsolated(const std::function<void(int fd)>& work, const IsolationLimits& limits) {
  const Fd out(::memfd_create("ds2rt-isolated", MFD_CLOEXEC));
  check(out.get() >= 0, "cannot create the output of a reader process: ", std::strerror(errno));
  const uint64_t address_space = limits.extra_address_space > 0 ? currentAddressSpace() : 0;
  const pid_t parent = ::getpid();
  const auto deadline = Clock::now() + limits.timeout;
  const pid_t pid = ::fork();
  check(pid >= 0, "cannot start a reader process: ", std::strerror(errno));
  if (pid == 0) childMain(work, out.get(), limits, address_space, parent);

  const Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  IsolatedResult result;
  int status = 0;
  bool reaped = false;
  if (!waitUntil(pid, pidfd.get(), deadline, status, reaped)) {
    // pidfd_send_signal cannot hit a recycled pid; kill is the fallback for older kernels.
    if (pidfd.get() < 0 || ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0) ::kill(pid, SIGKILL);
    waitForExit(pid);
    result.outcome = IsolatedResult::Outcome::kTimedOut;
    return result;
  }
  if (!reaped) status = waitForExit(pid);
  if (status >= 0 && WIFSIGNALED(status)) {
    result.outcome = IsolatedResult::Outcome::kCrashed;
    result.signal = WTERMSIG(status);
    return result;
  }
  const int code = status >= 0 ? WEXITSTATUS(status) : -1;
  if (code == kExitOutOfMemory) {
    result.outcome = IsolatedResult::Outcome::kOutOfMemory;
    return result;
  }
  // With the status lost (-1) the output is returned as it stands: callers check it is complete.
  if (code > 0) {
    result.exit_status = code;
    return result;
  }
  result.outcome = IsolatedResult::Outcome::kDone;
  result.exit_status = code;
  struct stat st {};
  check(::fstat(out.get(), &st) == 0, "cannot read the output of a reader process: ", std::strerror(errno));
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) return result;
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, out.get(), 0);
  check(data != MAP_FAILED, "cannot map the output of a reader process: ", std::strerror(errno));
  result.keep_alive = std::shared_ptr<const void>(data, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  result.output = {static_cast<const uint8_t*>(data), size};
  return result;
}

void writeAll(int fd, std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EFBIG || errno == ENOSPC || errno == ENOMEM)) throw std::bad_alloc();
    if (n <= 0) throw std::runtime_error(std::strerror(errno));
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
}

}  // namespace ds2rt::detail
