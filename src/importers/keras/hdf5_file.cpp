#include "importers/keras/hdf5_file.h"

#include <sys/stat.h>

#include <atomic>
#include <cstring>

#include "core/isolated_call.h"
#include "ds2rt/error.h"
#include "importers/keras/hdf5_snapshot.h"

namespace ds2rt::keras {

namespace {

constexpr uint8_t kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

std::atomic<int64_t> reader_timeout_ms{0};

// Generous for any disk: half a minute, plus a second per 16 MiB.
detail::IsolationLimits limitsFor(uint64_t size) {
  detail::IsolationLimits limits;
  const int64_t fixed = reader_timeout_ms.load();
  limits.timeout = std::chrono::milliseconds(fixed > 0 ? fixed : 30000 + static_cast<int64_t>(size >> 24) * 1000);
  // libhdf5's own copy of an image, the data read and the snapshot, with room to spare.
  limits.extra_address_space = (uint64_t{1} << 30) + 4 * size;
  return limits;
}

// "a//b/" -> "a/b"; "/" -> "".
std::string normalise(const std::string& path) {
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start && path.compare(start, end - start, ".") != 0) {
      if (!out.empty()) out += '/';
      out.append(path, start, end - start);
    }
    start = end + 1;
  }
  return out;
}

// Bounds-checked reading of the snapshot: the reader process wrote it, but it may have ended
// half-way (its exit status lost) and a short stream must not be read past its end.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, std::string what) : bytes_(bytes), what_(std::move(what)) {}
  const uint8_t* take(size_t size) {
    check(size <= bytes_.size() - offset_, what_);
    const uint8_t* p = bytes_.data() + offset_;
    offset_ += size;
    return p;
  }
  template <typename T> T get() {
    T v;
    std::memcpy(&v, take(sizeof v), sizeof v);
    return v;
  }
  std::string str() {
    const auto size = get<uint32_t>();
    return {reinterpret_cast<const char*>(take(size)), size};
  }
  void align() { take((snapshot::kAlignment - offset_ % snapshot::kAlignment) % snapshot::kAlignment); }

 private:
  std::span<const uint8_t> bytes_;
  size_t offset_ = 0;
  std::string what_;
};

}  // namespace

void Hdf5File::setReaderTimeout(std::chrono::milliseconds timeout) { reader_timeout_ms = timeout.count(); }

bool Hdf5File::hasSignature(std::span<const uint8_t> head) {
  return head.size() >= 8 && std::memcmp(head.data(), kSignature, 8) == 0;
}

Hdf5File Hdf5File::open(const std::string& path, const std::vector<std::string>& subtrees) {
  return read(path, nullptr, path, "'" + path + "'", subtrees);
}

Hdf5File Hdf5File::openImage(const std::vector<uint8_t>& bytes, std::string source,
                             const std::vector<std::string>& subtrees) {
  check(hasSignature(bytes), source, ": not an HDF5 file (no HDF5 signature)");
  const std::string quoted = source;
  return read(quoted, &bytes, std::move(source), quoted, subtrees);
}

Hdf5File Hdf5File::read(const std::string& path, const std::vector<uint8_t>* image, std::string source,
                        std::string quoted, const std::vector<std::string>& subtrees) {
  snapshot::Source from{path, image, 0};
  if (image) {
    from.size = image->size();
  } else {
    struct stat st {};
    check(::stat(path.c_str(), &st) == 0, "cannot open '", path, "': ", std::strerror(errno));
    from.size = static_cast<uint64_t>(st.st_size);
  }
  std::vector<std::string> groups;
  for (const std::string& s : subtrees) groups.push_back(normalise(s));
  const detail::IsolationLimits limits = limitsFor(from.size);
  const detail::IsolatedResult result = detail::runIsolated([&](int fd) { snapshot::write(from, groups, fd); }, limits);
  check(result.outcome == detail::IsolatedResult::Outcome::kDone, quoted,
        ": the HDF5 data is corrupt: libhdf5 ", result.describe(limits),
        " reading it (in a separate reader process, so only that process ended)");
  Hdf5File f;
  f.source_ = std::move(source);
  f.parse(result.output, result.keep_alive, quoted);
  return f;
}

void Hdf5File::parse(std::span<const uint8_t> bytes, const std::shared_ptr<const void>& keep_alive,
                     const std::string& quoted) {
  Cursor in(bytes, cat(quoted, ": the HDF5 reader process ended before it finished (corrupt HDF5 data?)"));
  check(std::memcmp(in.take(sizeof snapshot::kMagic), snapshot::kMagic, sizeof snapshot::kMagic) == 0, quoted,
        ": the HDF5 reader process sent no data");
  for (;;) {
    const auto tag = in.get<uint8_t>();
    if (tag == snapshot::kEnd) return;
    if (tag == snapshot::kFailure) fail(quoted, ": ", in.str());
    const std::string path = in.str();
    if (tag == snapshot::kAttribute) {
      Attribute& a = objects_[path].attributes[in.str()];
      a.error = in.str();
      const auto count = in.get<uint32_t>();
      for (uint32_t i = 0; i < count; ++i) a.values.push_back(in.str());
      continue;
    }
    check(tag == snapshot::kGroup || tag == snapshot::kDataset, quoted, ": the HDF5 reader process sent a bad record");
    if (!path.empty()) {
      const size_t slash = path.rfind('/');
      objects_[slash == std::string::npos ? "" : path.substr(0, slash)].members.push_back(
          slash == std::string::npos ? path : path.substr(slash + 1));
    }
    Object& object = objects_[path];
    object.group = tag == snapshot::kGroup;
    if (object.group) continue;
    Shape shape(in.get<uint32_t>());
    for (int64_t& d : shape) d = in.get<int64_t>();
    object.error = in.str();
    if (!object.error.empty()) continue;
    const int64_t elements = numElements(shape);
    const uint8_t* data = nullptr;
    if (elements > 0) {
      in.align();
      data = in.take(static_cast<size_t>(elements) * sizeof(float));
    }
    if (in.get<uint32_t>() != 0) {
      object.error = " cannot be read (truncated or corrupt file?)";
      continue;
    }
    object.data = elements == 0 ? HostTensor(DataType::kFloat32, shape)
                                : HostTensor::view(DataType::kFloat32, shape, data, keep_alive);
  }
}

const Hdf5File::Object* Hdf5File::find(const std::string& path) const {
  const auto it = objects_.find(normalise(path));
  return it == objects_.end() ? nullptr : &it->second;
}

bool Hdf5File::exists(const std::string& path) const { return find(path) != nullptr; }

bool Hdf5File::isGroup(const std::string& path) const {
  const Object* object = find(path);
  return object && object->group;
}

std::vector<std::string> Hdf5File::children(const std::string& group) const {
  check(isGroup(group), source_, ": no group '", group, "'");
  return find(group)->members;
}

bool Hdf5File::hasAttribute(const std::string& object, const std::string& name) const {
  const Object* o = find(object);
  return o && o->attributes.count(name) > 0;
}

std::vector<std::string> Hdf5File::stringAttribute(const std::string& object, const std::string& name) const {
  const std::string what = cat(source_, ": attribute '", name, "' of '", object, "'");
  check(hasAttribute(object, name), what, " is missing");
  const Attribute& a = find(object)->attributes.at(name);
  check(a.error.empty(), what, a.error);
  return a.values;
}

HostTensor Hdf5File::readFloats(const std::string& path) const {
  const std::string what = cat(source_, ": dataset '", path, "'");
  const Object* object = find(path);
  check(object != nullptr, what, " is missing");
  check(!object->group, what, " is not a dataset");
  check(object->error.empty(), what, object->error);
  return object->data;
}

}  // namespace ds2rt::keras
