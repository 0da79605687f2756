#include "importers/keras/hdf5_file.h"

#include <hdf5.h>

#include <cstring>
#include <mutex>

#include "ds2rt/error.h"

namespace ds2rt::keras {

namespace {

// The HDF5 library is not built thread-safe everywhere: one lock around every call.
std::recursive_mutex& hdf5Mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

// Errors are reported as ds2rt::Error; HDF5's own stack print to stderr is turned off once.
void quietHdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

constexpr uint8_t kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

// Files and images larger than this are refused before any allocation that depends on them.
constexpr int64_t kMaxElements = int64_t{1} << 31;

}  // namespace

Hdf5Handle::~Hdf5Handle() {
  if (id_ < 0) return;
  std::lock_guard lock(hdf5Mutex());
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
}

Hdf5Handle& Hdf5Handle::operator=(Hdf5Handle&& other) noexcept {
  if (this != &other) {
    Hdf5Handle old(id_);
    id_ = other.id_;
    other.id_ = -1;
  }
  return *this;
}

bool Hdf5File::hasSignature(std::span<const uint8_t> head) {
  return head.size() >= 8 && std::memcmp(head.data(), kSignature, 8) == 0;
}

Hdf5File Hdf5File::open(const std::string& path) {
  std::lock_guard lock(hdf5Mutex());
  quietHdf5();
  Hdf5File f;
  f.source_ = path;
  f.file_ = Hdf5Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  check(f.file_.valid(), "'", path, "': not a readable HDF5 file (truncated or corrupt?)");
  return f;
}

Hdf5File Hdf5File::openImage(const std::vector<uint8_t>& bytes, std::string source) {
  std::lock_guard lock(hdf5Mutex());
  quietHdf5();
  Hdf5File f;
  f.source_ = std::move(source);
  check(hasSignature(bytes), f.source_, ": not an HDF5 file (no HDF5 signature)");
  const Hdf5Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  // The in-memory ("core") driver over a copy of the image; nothing is written back.
  check(fapl.valid() && H5Pset_fapl_core(fapl.get(), 1 << 16, 0) >= 0 &&
            H5Pset_file_image(fapl.get(), const_cast<uint8_t*>(bytes.data()), bytes.size()) >= 0,
        f.source_, ": cannot set up HDF5 to read from memory");
  f.file_ = Hdf5Handle(H5Fopen(f.source_.c_str(), H5F_ACC_RDONLY, fapl.get()));
  check(f.file_.valid(), f.source_, ": not a readable HDF5 file (truncated or corrupt?)");
  return f;
}

bool Hdf5File::exists(const std::string& path) const {
  std::lock_guard lock(hdf5Mutex());
  if (path.empty() || path == "/") return true;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (H5Lexists(file_.get(), path.substr(0, end).c_str(), H5P_DEFAULT) <= 0) return false;
    start = end + 1;
  }
  return true;
}

bool Hdf5File::isGroup(const std::string& path) const {
  std::lock_guard lock(hdf5Mutex());
  if (!exists(path)) return false;
  const Hdf5Handle object(H5Oopen(file_.get(), path.c_str(), H5P_DEFAULT));
  return object.valid() && H5Iget_type(object.get()) == H5I_GROUP;
}

std::vector<std::string> Hdf5File::children(const std::string& group) const {
  std::lock_guard lock(hdf5Mutex());
  check(isGroup(group), source_, ": no group '", group, "'");
  const Hdf5Handle g(H5Gopen2(file_.get(), group.c_str(), H5P_DEFAULT));
  H5G_info_t info;
  check(g.valid() && H5Gget_info(g.get(), &info) >= 0, source_, ": cannot read group '", group, "'");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t size = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    check(size >= 0, source_, ": cannot read the members of group '", group, "'");
    std::string name(static_cast<size_t>(size) + 1, '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(size));
    names.push_back(std::move(name));
  }
  return names;
}

bool Hdf5File::hasAttribute(const std::string& object, const std::string& name) const {
  std::lock_guard lock(hdf5Mutex());
  return exists(object) && H5Aexists_by_name(file_.get(), object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::string> Hdf5File::stringAttribute(const std::string& object, const std::string& name) const {
  std::lock_guard lock(hdf5Mutex());
  const std::string what = cat(source_, ": attribute '", name, "' of '", object, "'");
  check(hasAttribute(object, name), what, " is missing");
  const Hdf5Handle attr(H5Aopen_by_name(file_.get(), object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  const Hdf5Handle type(attr.valid() ? H5Aget_type(attr.get()) : -1);
  const Hdf5Handle space(attr.valid() ? H5Aget_space(attr.get()) : -1);
  check(type.valid() && space.valid(), what, " cannot be read");
  check(H5Tget_class(type.get()) == H5T_STRING, what, " is not a string");
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  check(count >= 0 && count < (1 << 24), what, " has an invalid size");
  std::vector<std::string> out;
  if (H5Tis_variable_str(type.get()) > 0) {
    const Hdf5Handle memtype(H5Tcopy(H5T_C_S1));
    H5Tset_size(memtype.get(), H5T_VARIABLE);
    H5Tset_cset(memtype.get(), H5Tget_cset(type.get()));
    std::vector<char*> strings(static_cast<size_t>(count), nullptr);
    check(H5Aread(attr.get(), memtype.get(), strings.data()) >= 0, what, " cannot be read");
    for (char* s : strings) out.emplace_back(s ? s : "");
    H5Dvlen_reclaim(memtype.get(), space.get(), H5P_DEFAULT, strings.data());
    return out;
  }
  const size_t size = H5Tget_size(type.get());
  check(size > 0 && size * static_cast<size_t>(count) < (size_t{1} << 30), what, " has an invalid size");
  std::vector<char> buffer(size * static_cast<size_t>(count));
  check(H5Aread(attr.get(), type.get(), buffer.data()) >= 0, what, " cannot be read");
  for (hssize_t i = 0; i < count; ++i) {
    const char* s = buffer.data() + static_cast<size_t>(i) * size;
    out.emplace_back(s, strnlen(s, size));
  }
  return out;
}

HostTensor Hdf5File::readFloats(const std::string& path) const {
  std::lock_guard lock(hdf5Mutex());
  const std::string what = cat(source_, ": dataset '", path, "'");
  check(exists(path), what, " is missing");
  const Hdf5Handle dataset(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT));
  check(dataset.valid(), what, " is not a dataset");
  const Hdf5Handle type(H5Dget_type(dataset.get()));
  const Hdf5Handle space(H5Dget_space(dataset.get()));
  check(type.valid() && space.valid(), what, " cannot be read");
  check(H5Tget_class(type.get()) == H5T_FLOAT, what, " does not hold floating-point numbers");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  check(rank >= 0 && rank <= 8, what, " has an invalid rank");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  Shape shape;
  int64_t elements = 1;
  for (hsize_t d : dims) {
    check(d < static_cast<hsize_t>(kMaxElements) && elements * static_cast<int64_t>(d) < kMaxElements, what,
          " is too large");
    shape.push_back(static_cast<int64_t>(d));
    elements *= static_cast<int64_t>(d);
  }
  HostTensor out(DataType::kFloat32, shape);
  if (elements > 0)
    check(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.mutableData<float>()) >= 0, what,
          " cannot be read (truncated or corrupt file?)");
  return out;
}

}  // namespace ds2rt::keras
