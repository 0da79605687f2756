// A file written by torch.save: the zip archive (PyTorch >= 1.6; .pth, .pt, Lightning .ckpt) or
// the legacy stream of pickles. Gives the unpickled object and each tensor's data on demand, so
// optimizer state a checkpoint also holds is never read.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "ds2rt/tensor.h"
#include "importers/pickle/pickle_value.h"
#include "importers/pytorch/tensor_rebuild.h"
#include "importers/pytorch/zip_archive.h"

namespace ds2rt::pytorch {

// The reader works on the values of the restricted unpickler (importers/pickle).
using namespace ds2rt::pickle;

class TorchFile {
 public:
  static TorchFile open(const std::string& path);
  // `bytes` stay alive through `keep_alive`; `source` names the file in errors.
  static TorchFile fromBytes(std::span<const uint8_t> bytes, std::shared_ptr<const void> keep_alive, std::string source);
  // Whether the bytes start like a torch.save file (zip archive or legacy pickle stream).
  static bool looksLikeTorchFile(std::span<const uint8_t> head);

  const Value& root() const { return root_; }
  const std::string& source() const { return source_; }
  const std::string& format() const { return format_; }  // "torch.save zip archive", ...
  // The tensor's data, contiguous. `name` (e.g. its state_dict key) is used in errors.
  HostTensor tensor(const TensorRef& tensor, const std::string& name) const;

 private:
  TorchFile() = default;
  void readZip(std::span<const uint8_t> bytes);
  void readLegacy(std::span<const uint8_t> bytes);
  StorageBytes storage(const StorageRef& ref, const std::string& what) const;

  std::shared_ptr<const void> keep_alive_;
  std::string source_, format_;
  std::unique_ptr<Arena> arena_ = std::make_unique<Arena>();
  Value root_;
  bool big_endian_ = false;
  std::optional<ZipArchive> zip_;
  std::string prefix_;                                          // zip: "archive/"
  std::map<std::string, std::span<const uint8_t>> legacy_data_;  // legacy: storage bytes by key
  mutable std::map<std::string, StorageBytes> loaded_;           // storages read so far (shared views)
};

}  // namespace ds2rt::pytorch
