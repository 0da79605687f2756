// Read-only access to an HDF5 file (from disk or from memory): groups, string attributes and
// float datasets, with errors naming the file and the object.
//
// libhdf5 (1.10 in Debian 12) is not hardened against crafted files: a corrupt one can crash it
// (e.g. H5HG_read on a corrupt variable-length string) or make it spin. So ds2rt never calls it in
// its own process: a forked reader process (core/isolated_call.h) opens the file, reads every
// object of the requested groups and sends them back (hdf5_snapshot.h); a crash, a hang (the
// timeout) or runaway memory use there becomes a ds2rt::Error saying the HDF5 data is corrupt.
// The queries below then answer from that snapshot without touching libhdf5. As the parent never
// initialises libhdf5, the child's copy of it starts clean; another libhdf5 user in the host process
// (h5py on another thread, say) is the one case where the child could inherit it mid-call, which
// the timeout bounds.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "ds2rt/tensor.h"

namespace ds2rt::keras {

class Hdf5File {
 public:
  static bool hasSignature(std::span<const uint8_t> head);
  // `subtrees`: the groups whose contents are read (e.g. {"model_weights"}); the root's
  // attributes and members are always read, and nothing else of the file is visible.
  static Hdf5File open(const std::string& path, const std::vector<std::string>& subtrees);
  // An HDF5 image in memory (model.weights.h5 inside a .keras zip); `source` names it in errors.
  static Hdf5File openImage(const std::vector<uint8_t>& bytes, std::string source,
                            const std::vector<std::string>& subtrees);

  // For tests and fuzzers: the reader process's time limit (0 restores the default, which grows
  // with the file's size).
  static void setReaderTimeout(std::chrono::milliseconds timeout);

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
  struct Attribute {
    std::string error;  // what is wrong with it ("" if nothing)
    std::vector<std::string> values;
  };
  struct Object {
    bool group = false;
    std::vector<std::string> members;  // of a group, in name order
    std::map<std::string, Attribute> attributes;
    std::string error;  // of a dataset that could not be read
    HostTensor data;
  };

  static Hdf5File read(const std::string& path, const std::vector<uint8_t>* image, std::string source,
                       std::string quoted, const std::vector<std::string>& subtrees);
  void parse(std::span<const uint8_t> bytes, const std::shared_ptr<const void>& keep_alive, const std::string& quoted);
  const Object* find(const std::string& path) const;

  std::map<std::string, Object> objects_;  // by normalised path ("" is the root)
  std::string source_;
};

}  // namespace ds2rt::keras
