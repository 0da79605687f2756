// Fuzzes ONNX files from bytes: parse and check the container, then translate the graph into a
// ds2rt network. Only ds2rt::Error may come out.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <unistd.h>

#include "ds2rt/error.h"
#include "ds2rt/importers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/ds2rt_onnx_fuzz_" + std::to_string(::getpid()) + ".onnx";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    ds2rt::importOnnx(path);
  } catch (const ds2rt::Error&) {
  }
  return 0;
}
