// What the HDF5 reader process sends back: every object of the parts of the file the importer
// reads, with its string attributes and its float data, as one stream of records. Only the
// process that writes it calls libhdf5 (see Hdf5File for why).
//
//   magic, then records: tag byte, then fields; strings are a uint32 length and the bytes.
//   'G' path                                          a group
//   'D' path, rank (uint32), dims (int64 each), error  a dataset; if error is empty, its float32
//       data (if any) at the next multiple of kAlignment, then a status (uint32, 0: read; 1: the
//       read failed, the data is garbage)
//   'A' object path, name, error, count (uint32), strings   an attribute (strings if no error)
//   'F' message                                       the file could not be read at all
//   'E'                                               end: the stream is complete
// Paths are relative to the root ("" is the root) with single '/' separators.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ds2rt::keras::snapshot {

constexpr char kMagic[8] = {'d', 's', '2', 'h', '5', 's', '1', '\0'};
constexpr size_t kAlignment = 64;
enum Tag : uint8_t { kGroup = 'G', kDataset = 'D', kAttribute = 'A', kFailure = 'F', kEnd = 'E' };

// The file to read: a path, or an image in memory (`image` non-null; `path` then only names it).
struct Source {
  std::string path;
  const std::vector<uint8_t>* image = nullptr;
  uint64_t size = 0;  // bytes of the file or image, the bound on what an uncompressed dataset holds
};

// Opens the file with libhdf5 and writes the snapshot of `subtrees` (paths of groups; the root's
// own attributes and members are always included) to `fd`. Runs in the reader process.
void write(const Source& source, const std::vector<std::string>& subtrees, int fd);

}  // namespace ds2rt::keras::snapshot
