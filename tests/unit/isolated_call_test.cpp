// The reader-process guard (core/isolated_call.h): a crash, a hang or an allocation failure in the
// child is reported, the parent carries on, and what the child writes comes back.
#include <gmock/gmock.h>

#include <csignal>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "core/isolated_call.h"

namespace ds2rt::test {
namespace {

using detail::IsolatedResult;
using detail::IsolationLimits;
using detail::runIsolated;
using Outcome = IsolatedResult::Outcome;

TEST(IsolatedCall, ReturnsWhatTheChildWrote) {
  const IsolatedResult r = runIsolated([](int fd) {
    const std::string text = "hello from the child";
    detail::writeAll(fd, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  }, {});
  ASSERT_EQ(r.outcome, Outcome::kDone);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r.output.data()), r.output.size()), "hello from the child");
}

TEST(IsolatedCall, ACrashEndsOnlyTheChild) {
  const IsolatedResult r = runIsolated([](int) { std::raise(SIGSEGV); }, {});
  ASSERT_EQ(r.outcome, Outcome::kCrashed);
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_THAT(r.describe({}), ::testing::HasSubstr("crashed (signal 11"));
}

TEST(IsolatedCall, AHangIsCutShort) {
  IsolationLimits limits;
  limits.timeout = std::chrono::milliseconds(200);
  const auto start = std::chrono::steady_clock::now();
  const IsolatedResult r = runIsolated([](int) { std::this_thread::sleep_for(std::chrono::seconds(60)); }, limits);
  EXPECT_EQ(r.outcome, Outcome::kTimedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_THAT(r.describe(limits), ::testing::HasSubstr("did not finish within 0.2 s"));
}

TEST(IsolatedCall, TheMemoryLimitHolds) {
  IsolationLimits limits;
  limits.extra_address_space = uint64_t{64} << 20;
  const IsolatedResult r = runIsolated([](int) {
    std::vector<char> big(size_t{1} << 30);  // 1 GiB > 64 MiB
    big[12345] = 1;
  }, limits);
  // Under ASan the failed allocation ends the child with ASan's report (exit status 1), not bad_alloc.
  EXPECT_THAT(r.outcome, ::testing::AnyOf(Outcome::kOutOfMemory, Outcome::kFailed));
}

TEST(IsolatedCall, AnExceptionIsAFailure) {
  const IsolatedResult r = runIsolated([](int) { throw std::runtime_error("no"); }, {});
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_GT(r.exit_status, 0);
}

}  // namespace
}  // namespace ds2rt::test
