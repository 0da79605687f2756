#include "importers/keras/keras_file.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/file.h"
#include "ds2rt/error.h"
#include "importers/pytorch/zip_archive.h"

namespace ds2rt::keras {

using nlohmann::json;

namespace {

constexpr const char* kConfigEntry = "config.json";
constexpr const char* kWeightsEntry = "model.weights.h5";

std::string lowerExtension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// The name of a zip's first entry, from its local file header (name length at byte 26, name at 30).
std::string firstZipEntry(std::span<const uint8_t> head) {
  if (head.size() < 30) return "";
  const size_t length = head[26] | (head[27] << 8);
  if (30 + length > head.size()) return "";
  return std::string(reinterpret_cast<const char*>(head.data()) + 30, length);
}

json parseConfig(const std::string& text, const std::string& what) {
  try {
    json j = json::parse(text);
    check(j.is_object() && j.contains("config") && j.contains("class_name"), what,
          ": not a Keras model config (no class_name/config)");
    return j;
  } catch (const json::exception& e) {
    fail(what, ": not valid JSON: ", e.what());
  }
}

bool startsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Whether a weight path within a Bidirectional layer belongs to `part` ("forward"/"backward").
bool inPart(const std::string& path, const std::string& part) {
  return part.empty() || path.find(part + "_") != std::string::npos || path.find("/" + part) != std::string::npos;
}

}  // namespace

bool KerasFile::looksLikeKerasArchive(const std::string& path, std::span<const uint8_t> head) {
  if (!pytorch::ZipArchive::hasZipMagic(head)) return false;
  if (lowerExtension(path) == ".keras") return true;  // even a corrupt one: its errors should speak Keras
  const std::string first = firstZipEntry(head);
  if (first != "metadata.json" && first != kConfigEntry && first != kWeightsEntry) return false;
  try {
    const detail::MappedFile file = detail::MappedFile::open(path);
    const auto archive = pytorch::ZipArchive::open(file.bytes(), path);
    return archive.contains(kConfigEntry) && archive.contains(kWeightsEntry);
  } catch (const Error&) {
    return false;
  }
}

bool KerasFile::looksLikeLegacyH5(const std::string&, std::span<const uint8_t> head) {
  // Every HDF5 file: no other format ds2rt reads is one, and a weights-only .h5 deserves an error
  // that says so rather than "unknown format".
  return Hdf5File::hasSignature(head);
}

KerasFile KerasFile::open(const std::string& path) {
  KerasFile f;
  f.source_ = path;
  const detail::MappedFile file = detail::MappedFile::open(path);
  if (pytorch::ZipArchive::hasZipMagic(file.bytes())) {
    f.format_ = "Keras 3 .keras archive";
    const auto archive = pytorch::ZipArchive::open(file.bytes(), path);
    check(archive.contains(kConfigEntry) && archive.contains(kWeightsEntry), "'", path,
          "': a zip archive without config.json and model.weights.h5, so not a Keras 3 .keras file");
    const std::vector<uint8_t> config = archive.read(kConfigEntry);
    f.config_ = parseConfig(std::string(config.begin(), config.end()), cat("'", path, "': config.json"));
    f.h5_ = std::make_shared<Hdf5File>(
        Hdf5File::openImage(archive.read(kWeightsEntry), path + ":" + kWeightsEntry, {"layers"}));
    check(f.h5_->isGroup("layers") || f.h5_->children("/").empty(), "'", path,
          "': model.weights.h5 has no 'layers' group; not written by Keras 3?");
    return f;
  }
  check(Hdf5File::hasSignature(file.bytes()), "'", path, "' is neither a .keras archive nor an HDF5 (.h5) file");
  f.format_ = "Keras legacy HDF5 (.h5)";
  f.legacy_ = true;
  f.h5_ = std::make_shared<Hdf5File>(Hdf5File::open(path, {"model_weights"}));
  check(f.h5_->hasAttribute("/", "model_config"), "'", path,
        "': an HDF5 file without a model_config attribute: weights only (model.save_weights)? ds2rt needs the whole "
        "model (model.save(\"model.h5\") or \"model.keras\")");
  const auto config = f.h5_->stringAttribute("/", "model_config");
  check(config.size() == 1, "'", path, "': model_config is not one string");
  f.config_ = parseConfig(config[0], cat("'", path, "': model_config"));
  check(f.h5_->isGroup("model_weights"), "'", path,
        "' has a model_config but no model_weights group: the model was saved without its weights");
  return f;
}

std::vector<HostTensor> KerasFile::weights(const std::string& name, const std::string& archive_key,
                                           const std::string& part) const {
  return legacy_ ? legacyWeights(name, part) : archiveWeights(archive_key, part);
}

std::vector<HostTensor> KerasFile::archiveWeights(const std::string& key, const std::string& part) const {
  const std::string root = "layers/" + key;
  if (!h5_->isGroup(root)) return {};
  // Every vars group under the layer's group (the layer's own, its cell's, a wrapped layer's).
  std::vector<std::string> groups, pending{root};
  while (!pending.empty()) {
    const std::string g = pending.back();
    pending.pop_back();
    for (const std::string& child : h5_->children(g)) {
      const std::string p = g + "/" + child;
      if (!h5_->isGroup(p)) continue;
      if (child == "vars") {
        if (inPart(p.substr(root.size()), part)) groups.push_back(p);
      } else {
        pending.push_back(p);
      }
    }
  }
  std::sort(groups.begin(), groups.end());
  std::vector<HostTensor> out;
  for (const std::string& g : groups)
    for (int i = 0; h5_->exists(g + "/" + std::to_string(i)); ++i) out.push_back(h5_->readFloats(g + "/" + std::to_string(i)));
  return out;
}

std::vector<HostTensor> KerasFile::legacyWeights(const std::string& layer, const std::string& part) const {
  const std::string group = "model_weights/" + layer;
  if (!h5_->isGroup(group)) return {};
  std::vector<std::string> names;
  if (h5_->hasAttribute(group, "weight_names")) {
    names = h5_->stringAttribute(group, "weight_names");
  } else {
    // h5py attributes over 64 KB are split into weight_names0, weight_names1, ...
    for (int i = 0; h5_->hasAttribute(group, "weight_names" + std::to_string(i)); ++i)
      for (auto& n : h5_->stringAttribute(group, "weight_names" + std::to_string(i))) names.push_back(std::move(n));
  }
  std::vector<HostTensor> out;
  for (const std::string& name : names) {
    if (!inPart(startsWith(name, layer + "/") ? name.substr(layer.size()) : "/" + name, part)) continue;
    // Keras 2 wrote "layer/sub/kernel:0" (group per name part); Keras 3 writes the same without ":0".
    std::string path = group + "/" + name;
    if (!h5_->exists(path) && startsWith(name, layer + "/")) path = group + "/" + name.substr(layer.size() + 1);
    check(h5_->exists(path), "'", source_, "': layer '", layer, "' lists weight '", name, "' but the file lacks it");
    out.push_back(h5_->readFloats(path));
  }
  return out;
}

}  // namespace ds2rt::keras
