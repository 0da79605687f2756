// The importers take paths: each input is written to a file of this process's own name first.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

inline std::string writeFuzzInput(const uint8_t* data, size_t size, const std::string& extension) {
  const std::string path = "/tmp/ds2rt_fuzz_" + std::to_string(::getpid()) + extension;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}
