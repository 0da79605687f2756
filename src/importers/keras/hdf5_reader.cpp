// The reader process's side of Hdf5File: walks the file with the HDF5 C API and writes the
// snapshot (hdf5_snapshot.h). Failures of single objects are recorded, not thrown, so that the
// importer reports them only if it needs the object, with the same message as ever.
#include <hdf5.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <set>
#include <span>

#include "core/isolated_call.h"
#include "importers/keras/hdf5_snapshot.h"

namespace ds2rt::keras::snapshot {

namespace {

// Datasets with more elements than this are refused before any allocation that depends on them.
constexpr int64_t kMaxElements = int64_t{1} << 31;
constexpr size_t kMaxObjects = size_t{1} << 20;
constexpr int kMaxDepth = 64;
// Deflate, the strongest filter h5py offers, expands at most ~1032:1.
constexpr uint64_t kMaxExpansion = 1100;

// One HDF5 identifier, closed by the matching H5*close.
class Handle {
 public:
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() {
    if (id_ < 0) return;
    switch (H5Iget_type(id_)) {
      case H5I_FILE: H5Fclose(id_); break;
      case H5I_GROUP: H5Gclose(id_); break;
      case H5I_DATASET: H5Dclose(id_); break;
      case H5I_ATTR: H5Aclose(id_); break;
      case H5I_DATATYPE: H5Tclose(id_); break;
      case H5I_DATASPACE: H5Sclose(id_); break;
      case H5I_GENPROP_LST: H5Pclose(id_); break;
      default: H5Oclose(id_); break;
    }
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_;
};

class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) { bytes(kMagic, sizeof kMagic); }
  ~Writer() = default;

  void tag(Tag t) { bytes(&t, 1); }
  void u32(uint32_t v) { bytes(&v, sizeof v); }
  void i64(int64_t v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  void align() {
    static constexpr uint8_t zeros[kAlignment] = {};
    bytes(zeros, (kAlignment - offset_ % kAlignment) % kAlignment);
  }
  void bytes(const void* data, size_t size) {
    if (size == 0) return;
    const size_t old = buffer_.size();
    buffer_.resize(old + size);
    std::memcpy(buffer_.data() + old, data, size);
    offset_ += size;
    if (buffer_.size() >= (1 << 20)) flush();
  }
  // Room for `size` bytes at the end of the output, mapped so that libhdf5 can read into it
  // directly (no copy through a buffer); unmapped by the returned owner.
  std::shared_ptr<uint8_t> reserve(size_t size) {
    flush();
    const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t start = offset_ - offset_ % page;
    offset_ += size;
    if (::ftruncate(fd_, static_cast<off_t>(offset_)) != 0 || ::lseek(fd_, static_cast<off_t>(offset_), SEEK_SET) < 0)
      throw std::bad_alloc();
    const size_t length = offset_ - start;
    void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, static_cast<off_t>(start));
    if (p == MAP_FAILED) throw std::bad_alloc();
    return {static_cast<uint8_t*>(p) + (offset_ - size - start), [p, length](uint8_t*) { ::munmap(p, length); }};
  }
  void flush() {
    detail::writeAll(fd_, buffer_);
    buffer_.clear();
  }

 private:
  int fd_;
  std::vector<uint8_t> buffer_;
  uint64_t offset_ = 0;
};

bool startsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

class Walker {
 public:
  Walker(Writer& out, const std::vector<std::string>& subtrees, uint64_t file_size)
      : out_(out), subtrees_(subtrees), file_size_(file_size) {}

  bool inside(const std::string& path) const {
    for (const std::string& s : subtrees_)
      if (s.empty() || path == s || startsWith(path, s + "/")) return true;
    return false;
  }
  bool above(const std::string& path) const {
    for (const std::string& s : subtrees_)
      if (path.empty() || startsWith(s, path + "/")) return true;
    return false;
  }

  // Records the members of `group` (at `path`) and descends where the subtrees lie.
  void group(hid_t group, const std::string& path, int depth) {
    if (depth == 0) visited_.insert(address(group));
    if (depth > kMaxDepth) return;
    for (const std::string& name : memberNames(group)) {
      if (tooMany()) return;
      const std::string child = path.empty() ? name : path + "/" + name;
      const Handle object(H5Oopen(group, name.c_str(), H5P_DEFAULT));
      if (!object.valid()) continue;
      const H5I_type_t type = H5Iget_type(object.get());
      if (type == H5I_GROUP) {
        // Hard links may form cycles; each group is walked once.
        if (!visited_.insert(address(object.get())).second) continue;
        out_.tag(kGroup);
        out_.str(child);
        if (inside(child)) attributes(object.get(), child);
        if (inside(child) || above(child)) this->group(object.get(), child, depth + 1);
      } else if (type == H5I_DATASET) {
        dataset(object.get(), child, inside(child));
      }
    }
  }

  bool tooMany() { return ++objects_ > kMaxObjects; }
  bool overflowed() const { return objects_ > kMaxObjects; }

  void attributes(hid_t object, const std::string& path) {
    std::vector<std::string> names;
    H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, nullptr, &Walker::collect, &names);
    for (const std::string& name : names) {
      if (tooMany()) return;
      std::vector<std::string> values;
      const std::string error = stringAttribute(object, name, values);
      out_.tag(kAttribute);
      out_.str(path);
      out_.str(name);
      out_.str(error);
      out_.u32(static_cast<uint32_t>(values.size()));
      for (const std::string& v : values) out_.str(v);
    }
  }

 private:
  static herr_t collect(hid_t, const char* name, const H5A_info_t*, void* names) {
    static_cast<std::vector<std::string>*>(names)->emplace_back(name);
    return 0;
  }

  // The hard links of a group, by name (soft and external links are not followed).
  static std::vector<std::string> memberNames(hid_t group) {
    std::vector<std::string> names;
    H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr,
               [](hid_t, const char* name, const H5L_info_t* info, void* data) -> herr_t {
                 if (info->type == H5L_TYPE_HARD) static_cast<std::vector<std::string>*>(data)->emplace_back(name);
                 return 0;
               },
               &names);
    return names;
  }

  static std::string address(hid_t object) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info{};
    if (H5Oget_info3(object, &info, H5O_INFO_BASIC) < 0) return "";
    return std::string(reinterpret_cast<const char*>(&info.token), sizeof info.token);
#else
    H5O_info_t info{};
    if (H5Oget_info2(object, &info, H5O_INFO_BASIC) < 0) return "";
    return std::string(reinterpret_cast<const char*>(&info.addr), sizeof info.addr);
#endif
  }

  // A string attribute, or each element of a string array attribute (fixed or variable length);
  // returns what is wrong with it, or "".
  static std::string stringAttribute(hid_t object, const std::string& name, std::vector<std::string>& out) {
    const Handle attr(H5Aopen(object, name.c_str(), H5P_DEFAULT));
    const Handle type(attr.valid() ? H5Aget_type(attr.get()) : -1);
    const Handle space(attr.valid() ? H5Aget_space(attr.get()) : -1);
    if (!type.valid() || !space.valid()) return " cannot be read";
    if (H5Tget_class(type.get()) != H5T_STRING) return " is not a string";
    const hssize_t count = H5Sget_simple_extent_npoints(space.get());
    if (count < 0 || count >= (1 << 24)) return " has an invalid size";
    if (H5Tis_variable_str(type.get()) > 0) {
      const Handle memtype(H5Tcopy(H5T_C_S1));
      H5Tset_size(memtype.get(), H5T_VARIABLE);
      H5Tset_cset(memtype.get(), H5Tget_cset(type.get()));
      std::vector<char*> strings(static_cast<size_t>(count), nullptr);
      if (H5Aread(attr.get(), memtype.get(), strings.data()) < 0) return " cannot be read";
      for (char* s : strings) out.emplace_back(s ? s : "");
      H5Dvlen_reclaim(memtype.get(), space.get(), H5P_DEFAULT, strings.data());
      return "";
    }
    const size_t size = H5Tget_size(type.get());
    if (size == 0 || size * static_cast<size_t>(count) >= (size_t{1} << 30)) return " has an invalid size";
    std::vector<char> buffer(size * static_cast<size_t>(count));
    if (H5Aread(attr.get(), type.get(), buffer.data()) < 0) return " cannot be read";
    for (hssize_t i = 0; i < count; ++i) {
      const char* s = buffer.data() + static_cast<size_t>(i) * size;
      out.emplace_back(s, strnlen(s, size));
    }
    return "";
  }

  void dataset(hid_t dataset, const std::string& path, bool read) {
    std::vector<int64_t> dims;
    std::string error = read ? checkFloats(dataset, dims) : " lies outside the groups ds2rt reads";
    out_.tag(kDataset);
    out_.str(path);
    out_.u32(static_cast<uint32_t>(dims.size()));
    for (const int64_t d : dims) out_.i64(d);
    const int64_t elements = std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
    if (error.empty() && elements > 0) {
      // The error field goes before the data, so a failed read leaves its reserved room in place
      // and says so in the next record: the parent learns of the failure from that record.
      out_.str("");
      out_.align();
      const auto data = out_.reserve(static_cast<size_t>(elements) * sizeof(float));
      const bool ok = H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.get()) >= 0;
      out_.u32(ok ? 0 : 1);
      return;
    }
    out_.str(error);
    if (error.empty()) out_.u32(0);
  }

  // Whether a dataset can be read as float32: returns what is wrong with it, or "".
  std::string checkFloats(hid_t dataset, std::vector<int64_t>& dims) const {
    const Handle type(H5Dget_type(dataset));
    const Handle space(H5Dget_space(dataset));
    const Handle plist(H5Dget_create_plist(dataset));
    if (!type.valid() || !space.valid() || !plist.valid()) return " cannot be read";
    if (H5Tget_class(type.get()) != H5T_FLOAT) return " does not hold floating-point numbers";
    // Data kept in other files is not read: a crafted file could point it anywhere.
    if (H5Pget_external_count(plist.get()) != 0 || H5Pget_layout(plist.get()) == H5D_VIRTUAL)
      return " keeps its data in other files, which ds2rt does not read";
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0 || rank > 8) return " has an invalid rank";
    std::vector<hsize_t> extent(static_cast<size_t>(rank));
    H5Sget_simple_extent_dims(space.get(), extent.data(), nullptr);
    int64_t elements = 1;
    for (const hsize_t d : extent) {
      if (d >= static_cast<hsize_t>(kMaxElements) || elements * static_cast<int64_t>(d) >= kMaxElements)
        return " is too large";
      dims.push_back(static_cast<int64_t>(d));
      elements *= static_cast<int64_t>(d);
    }
    // HDF5 fills what is not stored with the fill value: a tiny file may claim gigabytes.
    const uint64_t bytes = static_cast<uint64_t>(elements) * H5Tget_size(type.get());
    const bool filtered = H5Pget_nfilters(plist.get()) > 0;
    if (bytes > file_size_ * (filtered ? kMaxExpansion : 1) || (!filtered && H5Dget_storage_size(dataset) < bytes))
      return " is larger than the data the file holds for it (truncated or corrupt file?)";
    return "";
  }

  Writer& out_;
  const std::vector<std::string>& subtrees_;
  const uint64_t file_size_;
  std::set<std::string> visited_;
  size_t objects_ = 0;
};

}  // namespace

void write(const Source& source, const std::vector<std::string>& subtrees, int fd) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become records, not prints to stderr
  Writer out(fd);
  const Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  if (source.image) {
    // The in-memory ("core") driver over a copy of the image; nothing is written back.
    if (!fapl.valid() || H5Pset_fapl_core(fapl.get(), 1 << 16, 0) < 0 ||
        H5Pset_file_image(fapl.get(), const_cast<uint8_t*>(source.image->data()), source.image->size()) < 0) {
      out.tag(kFailure);
      out.str("cannot set up HDF5 to read from memory");
      out.tag(kEnd);
      out.flush();
      return;
    }
  }
  const Handle file(H5Fopen(source.path.c_str(), H5F_ACC_RDONLY, source.image ? fapl.get() : H5P_DEFAULT));
  const Handle root(file.valid() ? H5Gopen2(file.get(), "/", H5P_DEFAULT) : -1);
  if (!root.valid()) {
    out.tag(kFailure);
    out.str("not a readable HDF5 file (truncated or corrupt?)");
  } else {
    Walker walker(out, subtrees, source.size);
    out.tag(kGroup);
    out.str("");
    walker.attributes(root.get(), "");
    walker.group(root.get(), "", 0);
    if (walker.overflowed()) {
      out.tag(kFailure);
      out.str("holds more than " + std::to_string(kMaxObjects) + " objects; not a Keras model file?");
    }
  }
  out.tag(kEnd);
  out.flush();
}

}  // namespace ds2rt::keras::snapshot
