// Fuzzes the restricted unpickler with arbitrary bytes, as data.pkl of a torch.save archive: every
// storage it names gets zero bytes (when small), every tensor is rebuilt from them, and the
// result is searched for deepspeech.pytorch hyper-parameters. Only ds2rt::Error may come out.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ds2rt/error.h"
#include "importers/pytorch/architecture.h"
#include "importers/pytorch/storage_id.h"
#include "importers/pytorch/tensor_rebuild.h"
#include "importers/pickle/unpickler.h"

namespace pt = ds2rt::pytorch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pt::Arena arena;
  std::vector<const pt::Node*> storages;
  try {
    const auto loader = [&](const pt::Value& pid, pt::Arena& a) -> pt::Value {
      return a.make(pt::parseStorageId(pid, "fuzz", /*legacy=*/size % 2 == 0));
    };
    const pt::Value root = pt::unpickle({data, size}, arena, "fuzz", loader).value;
    ds2rt::importers::ConfigEvidence evidence;
    pt::readHyperParameters(root, evidence);
  } catch (const ds2rt::Error&) {
  }
  // Every tensor the pickle made (even when it failed later), against a zeroed storage.
  for (size_t i = 0; i < arena.size(); ++i) {
    const pt::TensorRef* tensor = std::get_if<pt::TensorRef>(&arena.at(i).payload);
    if (!tensor || tensor->storage->numel > (1 << 16)) continue;
    auto bytes = std::make_shared<const std::vector<uint8_t>>(
        static_cast<size_t>(tensor->storage->numel) * tensor->storage->type->element_size);
    try {
      pt::rebuildTensor(*tensor, bytes, i % 2 == 1, "fuzz tensor");
    } catch (const ds2rt::Error&) {
    }
  }
  return 0;
}
