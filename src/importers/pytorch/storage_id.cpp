#include "importers/pytorch/storage_id.h"

#include "ds2rt/error.h"

namespace ds2rt::pytorch {

StorageRef parseStorageId(const Value& pid, const std::string& source, bool legacy) {
  const Sequence* id = as<Sequence>(pid);
  const size_t arity = legacy ? 6 : 5;
  check(id && id->kind == Sequence::Kind::kTuple && id->items.size() == arity && asString(id->items[0]) == "storage",
        "'", source, "': corrupt pickle: a persistent id that is not a ('storage', type, key, location, size",
        legacy ? ", view)" : ")", " tuple");
  const Global* type = as<Global>(id->items[1]);
  const auto key = asString(id->items[2]);
  const auto location = asString(id->items[3]);
  const auto numel = asInt(id->items[4]);
  check(type && type->kind == GlobalKind::kStorageType, "'", source, "': a storage of type ", describe(id->items[1]),
        ", not a torch storage type");
  check(key && location && numel && *numel >= 0, "'", source, "': corrupt storage id (key, location or size)");
  check(!legacy || isNone(id->items[5]), "'", source, "': storage '", *key,
        "' is a storage view, which only PyTorch < 1.0 wrote; re-save the checkpoint with torch >= 1.6");
  return StorageRef{type, std::string(*key), std::string(*location), *numel};
}

}  // namespace ds2rt::pytorch
