#include "importers/pytorch/torch_file.h"

#include <cstring>

#include "core/file.h"
#include "ds2rt/error.h"
#include "importers/pytorch/storage_id.h"
#include "importers/pickle/unpickler.h"

namespace ds2rt::pytorch {

namespace {

bool isTar(std::span<const uint8_t> bytes) {
  return bytes.size() >= 262 && std::memcmp(bytes.data() + 257, "ustar", 5) == 0;
}

bool startsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

TorchFile TorchFile::open(const std::string& path) {
  const detail::MappedFile file = detail::MappedFile::open(path);
  return fromBytes(file.bytes(), file.keepAlive(), path);
}

bool TorchFile::looksLikeTorchFile(std::span<const uint8_t> head) {
  return ZipArchive::hasZipMagic(head) || isTar(head) || (head.size() >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5);
}

TorchFile TorchFile::fromBytes(std::span<const uint8_t> bytes, std::shared_ptr<const void> keep_alive, std::string source) {
  TorchFile file;
  file.keep_alive_ = std::move(keep_alive);
  file.source_ = std::move(source);
  if (ZipArchive::hasZipMagic(bytes)) {
    file.readZip(bytes);
  } else if (isTar(bytes)) {
    fail("'", file.source_, "' is a tar archive, the checkpoint format of PyTorch < 0.4, which ds2rt does not read: "
         "re-save it with torch >= 1.6 (torch.save(torch.load(path), path))");
  } else if (bytes.size() >= 2 && bytes[0] == 0x80) {
    file.readLegacy(bytes);
  } else {
    fail("'", file.source_, "' is not a PyTorch checkpoint: it starts with neither a zip header (torch.save, "
         "PyTorch >= 1.6) nor a pickle (the legacy format)");
  }
  return file;
}

void TorchFile::readZip(std::span<const uint8_t> bytes) {
  zip_.emplace(ZipArchive::open(bytes, source_));
  // "<folder>/data.pkl"; the folder name is whatever the writer chose (the file's stem, "archive").
  const std::string* pickle = nullptr;
  for (const std::string& name : zip_->names()) {
    const size_t slash = name.find('/');
    if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      pickle = &name;
      break;
    }
  }
  check(pickle != nullptr, "'", source_, "' is a zip archive without a data.pkl entry: not a torch.save file");
  prefix_ = pickle->substr(0, pickle->size() - 8);
  for (const std::string& name : zip_->names())
    check(name != prefix_ + "constants.pkl" && !startsWith(name, prefix_ + "code/"), "'", source_,
          "' is a TorchScript archive (torch.jit.save), which ds2rt does not read: load it in Python and "
          "torch.save(model.state_dict(), ...) instead");
  if (zip_->contains(prefix_ + "byteorder")) {
    const std::vector<uint8_t> order = zip_->read(prefix_ + "byteorder");
    const std::string text(order.begin(), order.end());
    check(text == "little" || text == "big", "'", source_, "': unknown byte order '", text, "' in ", prefix_, "byteorder");
    big_endian_ = text == "big";
  }
  format_ = "torch.save zip archive";
  const std::vector<uint8_t> data = zip_->read(*pickle);
  const std::string where = source_ + ": " + *pickle;
  root_ = unpickle(data, *arena_, where, [&](const Value& pid, Arena& arena) {
            return arena.make(parseStorageId(pid, where, /*legacy=*/false));
          }).value;
}

StorageBytes TorchFile::storage(const StorageRef& ref, const std::string& what) const {
  if (const auto it = loaded_.find(ref.key); it != loaded_.end()) return it->second;
  StorageBytes bytes;
  if (zip_) {
    const std::string entry = prefix_ + "data/" + ref.key;
    check(zip_->contains(entry), what, ": its storage '", entry, "' is missing from the archive (corrupt file)");
    bytes = std::make_shared<const std::vector<uint8_t>>(zip_->read(entry));
  } else {
    const auto it = legacy_data_.find(ref.key);
    check(it != legacy_data_.end(), what, ": its storage '", ref.key, "' is missing from the file (corrupt file)");
    bytes = std::make_shared<const std::vector<uint8_t>>(it->second.begin(), it->second.end());  // aligned copy
  }
  loaded_.emplace(ref.key, bytes);
  return bytes;
}

HostTensor TorchFile::tensor(const TensorRef& tensor, const std::string& name) const {
  const std::string what = cat("'", source_, "': tensor '", name, "'");
  return rebuildTensor(tensor, storage(*tensor.storage, what), big_endian_, what);
}

}  // namespace ds2rt::pytorch
