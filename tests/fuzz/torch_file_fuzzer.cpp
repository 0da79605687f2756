// Fuzzes whole checkpoint files (zip archives and the legacy format) from bytes: open, then
// rebuild every tensor of the top-level dict. Only ds2rt::Error may come out.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "ds2rt/error.h"
#include "importers/pytorch/torch_file.h"

namespace pt = ds2rt::pytorch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const pt::TorchFile file = pt::TorchFile::fromBytes({data, size}, nullptr, "fuzz");
    if (const pt::Dict* root = pt::as<pt::Dict>(file.root()))
      for (const auto& [key, value] : root->entries)
        if (const pt::TensorRef* tensor = pt::as<pt::TensorRef>(value); tensor && tensor->storage->numel < (1 << 20)) {
          try {
            file.tensor(*tensor, "t");
          } catch (const ds2rt::Error&) {
          }
        }
  } catch (const ds2rt::Error&) {
  }
  return 0;
}
