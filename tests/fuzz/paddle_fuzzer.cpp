// Fuzzes PaddleSpeech .pdparams files from bytes: the restricted unpickler, the numpy arrays and
// the translation into a ds2rt network. Only ds2rt::Error may come out.
#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "file_fuzzer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = writeFuzzInput(data, size, ".pdparams");
  try {
    ds2rt::importPaddleSpeech(path);
  } catch (const ds2rt::Error&) {
  }
  return 0;
}
