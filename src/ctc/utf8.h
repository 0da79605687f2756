// UTF-8 helpers: lengths in code points, as Python's len() counts them.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace ds2rt::detail {

inline bool isUtf8Continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

inline size_t utf8Length(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += !isUtf8Continuation(c);
  return n;
}

// The text split into code points (each a short string view into `text`).
inline std::vector<std::string_view> utf8CodePoints(std::string_view text) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < text.size();) {
    size_t j = i + 1;
    while (j < text.size() && isUtf8Continuation(text[j])) ++j;
    out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace ds2rt::detail
