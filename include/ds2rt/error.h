// The one error type of ds2rt. Every failure reaches the caller as ds2rt::Error with a
// message that names the file, tensor or layer at fault; the library never aborts the host.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ds2rt {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates anything streamable into one message: fail("layer '", name, "': bad rank ", r).
template <typename... Parts>
std::string cat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(cat(std::forward<Parts>(parts)...));
}

template <typename... Parts>
void check(bool condition, Parts&&... parts) {
  if (!condition) fail(std::forward<Parts>(parts)...);
}

}  // namespace ds2rt
