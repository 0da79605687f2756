// Fuzzes Keras files from bytes: a zip goes in as a .keras archive, anything else as a legacy .h5,
// through the whole importer (libhdf5 in its reader process). HDF5 bytes are also opened as the
// in-memory image a .keras archive holds (an archive's CRCs keep mutations away from its own), and
// every object of the snapshot is read. Only ds2rt::Error may come out.
//
// The reader process is a fork of the fuzzer: its coverage does not reach libFuzzer, and a
// sanitizer report in it (printed to stderr) ends only it, like the crashes it is there to absorb.
// Under ASan, libhdf5's own overflows on crafted files are such reports (its memcpy calls go through
// ASan's interceptor), so they are not findings; reports whose frames are in ds2rt's reader code
// (hdf5_reader.cpp) are, and the README says how the logs were checked for them.
#include <functional>

#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "file_fuzzer.h"
#include "importers/keras/hdf5_file.h"

namespace {

namespace keras = ds2rt::keras;

bool isZip(const uint8_t* data, size_t size) { return size >= 4 && data[0] == 'P' && data[1] == 'K'; }

void guarded(const std::function<void()>& body) {
  try {
    body();
  } catch (const ds2rt::Error&) {
  }
}

void walk(const keras::Hdf5File& file, const std::string& group, int depth) {
  if (depth > 16) return;
  for (const std::string& name : file.children(group)) {
    const std::string path = group.empty() ? name : group + "/" + name;
    for (const char* attribute : {"weight_names", "model_config", "keras_version"})
      if (file.hasAttribute(path, attribute)) guarded([&] { file.stringAttribute(path, attribute); });
    if (file.isGroup(path)) walk(file, path, depth + 1);
    else guarded([&] { file.readFloats(path); });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool once = [] {
    keras::Hdf5File::setReaderTimeout(std::chrono::seconds(5));  // a hang shows up as an error
    return true;
  }();
  (void)once;
  const std::string path = writeFuzzInput(data, size, isZip(data, size) ? ".keras" : ".h5");
  guarded([&] { ds2rt::importKeras(path); });
  if (keras::Hdf5File::hasSignature({data, size})) {
    const std::vector<uint8_t> image(data, data + size);
    guarded([&] { walk(keras::Hdf5File::openImage(image, "fuzz.keras:model.weights.h5", {""}), "", 0); });
  }
  return 0;
}
