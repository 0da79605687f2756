// Read-only access to an HDF5 file (from disk or from memory) through the HDF5 C API: groups,
// string attributes and float datasets, with errors naming the file and the object. Sizes are
// checked before allocating, but libhdf5 itself does not bounds-check everything it reads: a
// crafted file can still crash inside the library (e.g. H5HG_read on a corrupt variable-length
// string), which is why no libFuzzer target covers this reader.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ds2rt/tensor.h"

namespace ds2rt::keras {

// One HDF5 identifier (file, group, dataset, ...), closed by the matching H5*close.
class Hdf5Handle {
 public:
  Hdf5Handle() = default;
  explicit Hdf5Handle(int64_t id) : id_(id) {}
  ~Hdf5Handle();
  Hdf5Handle(Hdf5Handle&& other) noexcept : id_(other.id_) { other.id_ = -1; }
  Hdf5Handle& operator=(Hdf5Handle&& other) noexcept;
  Hdf5Handle(const Hdf5Handle&) = delete;
  Hdf5Handle& operator=(const Hdf5Handle&) = delete;
  int64_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  int64_t id_ = -1;
};

class Hdf5File {
 public:
  static bool hasSignature(std::span<const uint8_t> head);
  static Hdf5File open(const std::string& path);
  // An HDF5 image in memory (model.weights.h5 inside a .keras zip); `source` names it in errors.
  static Hdf5File openImage(const std::vector<uint8_t>& bytes, std::string source);

  // `path` is "a/b/c" from the root; every part must exist.
  bool exists(const std::string& path) const;
  bool isGroup(const std::string& path) const;
  std::vector<std::string> children(const std::string& group) const;
  bool hasAttribute(const std::string& object, const std::string& name) const;
  // A string attribute, or each element of a string array attribute (fixed or variable length).
  std::vector<std::string> stringAttribute(const std::string& object, const std::string& name) const;
  // A floating-point dataset converted to float32.
  HostTensor readFloats(const std::string& dataset) const;
  const std::string& source() const { return source_; }

 private:
  Hdf5Handle file_;
  std::string source_;
};

}  // namespace ds2rt::keras
