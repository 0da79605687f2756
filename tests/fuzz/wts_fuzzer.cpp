// Fuzzes TensorRT .wts text weights from bytes: both flavours of the format, the shapes rebuilt
// from element counts and the DeepSpeech2 import. Only ds2rt::Error may come out.
#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "file_fuzzer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = writeFuzzInput(data, size, ".wts");
  try {
    ds2rt::importWts(path);
  } catch (const ds2rt::Error&) {
  }
  return 0;
}
