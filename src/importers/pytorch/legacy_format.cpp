// The legacy torch.save format (PyTorch < 1.6, or _use_new_zipfile_serialization=False): one
// stream of pickles -- magic number, protocol version 1001, sys_info, the object (storages as
// persistent ids), the list of storage keys -- followed by each storage in that order as an
// int64 element count and the raw elements.
#include <cstring>

#include "ds2rt/error.h"
#include "importers/pytorch/storage_id.h"
#include "importers/pytorch/torch_file.h"
#include "importers/pickle/unpickler.h"

namespace ds2rt::pytorch {

namespace {

// 0x1950a86a20f9469cfc6c, little-endian, as pickle's LONG1 writes it.
constexpr uint8_t kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr int64_t kProtocolVersion = 1001;

}  // namespace

void TorchFile::readLegacy(std::span<const uint8_t> bytes) {
  format_ = "legacy torch.save format";
  size_t pos = 0;
  const auto next = [&](const char* what, const PersistentLoader& loader = {}) {
    const Unpickled u = unpickle(bytes.subspan(pos), *arena_, cat(source_, ": ", what), loader);
    pos += u.consumed;
    return u.value;
  };
  const Text* magic = as<Text>(next("magic number"));
  check(magic && magic->kind == Text::Kind::kBigInt && magic->data.size() == sizeof(kMagic) &&
            std::memcmp(magic->data.data(), kMagic, sizeof(kMagic)) == 0,
        "'", source_, "' starts with a pickle but not with PyTorch's magic number: not a torch.save file");
  const auto version = asInt(next("protocol version"));
  check(version == kProtocolVersion, "'", source_, "': legacy format version ",
        version ? cat(*version) : std::string("?"), " is not ", kProtocolVersion,
        "; re-save the checkpoint with torch >= 1.6");
  const Dict* sys_info = as<Dict>(next("sys_info"));
  check(sys_info, "'", source_, "': corrupt legacy header (sys_info is not a dict)");
  if (const Value* little = find(*sys_info, "little_endian")) big_endian_ = std::get_if<bool>(little) && !std::get<bool>(*little);

  std::map<std::string, const StorageRef*> storages;
  const std::string where = source_ + ": object pickle";
  root_ = next("object pickle", [&](const Value& pid, Arena& arena) -> Value {
    Node* node = arena.make(parseStorageId(pid, where, /*legacy=*/true));
    const StorageRef& ref = std::get<StorageRef>(node->payload);
    const auto [it, inserted] = storages.emplace(ref.key, &ref);
    check(inserted || (it->second->numel == ref.numel && it->second->type->element_size == ref.type->element_size),
          "'", where, "': storage '", ref.key, "' is declared twice with different sizes (corrupt file)");
    return node;
  });
  const Sequence* keys = as<Sequence>(next("storage keys"));
  check(keys && keys->kind == Sequence::Kind::kList, "'", source_, "': corrupt legacy file (no list of storage keys)");

  for (const Value& k : keys->items) {
    const auto key = asString(k);
    check(key.has_value(), "'", source_, "': corrupt legacy file (a storage key is a ", describe(k), ")");
    const auto it = storages.find(std::string(*key));
    check(it != storages.end(), "'", source_, "': storage '", *key, "' is listed but used by no tensor (corrupt file)");
    check(bytes.size() - pos >= 8, "'", source_, "': storage '", *key, "' is cut off (truncated file)");
    uint64_t count = 0;
    for (int i = 0; i < 8; ++i) {
      const uint64_t b = bytes[pos + static_cast<size_t>(big_endian_ ? 7 - i : i)];
      count |= b << (8 * i);
    }
    pos += 8;
    const StorageRef& ref = *it->second;
    check(count == static_cast<uint64_t>(ref.numel), "'", source_, "': storage '", *key, "' holds ", count,
          " elements where its tensors expect ", ref.numel, " (corrupt file)");
    const uint64_t size = count * ref.type->element_size;  // numel < 2^63 and element size <= 16: checked below
    check(count <= (bytes.size() - pos) / ref.type->element_size, "'", source_, "': storage '", *key,
          "' is cut off (truncated file)");
    legacy_data_.emplace(*key, bytes.subspan(pos, static_cast<size_t>(size)));
    pos += static_cast<size_t>(size);
  }
}

}  // namespace ds2rt::pytorch
