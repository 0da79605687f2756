#include "importers/paddle/pdparams.h"

#include <algorithm>
#include <string_view>

#include "core/file.h"
#include "ds2rt/error.h"
#include "importers/pickle/numpy_array.h"
#include "importers/pickle/unpickler.h"

namespace ds2rt::paddle {

namespace {

bool isPickle(const std::vector<uint8_t>& head) { return head.size() >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5; }

// torch.save's legacy format starts with a pickled magic number (LONG1 of 10 bytes).
bool isTorchLegacy(const std::vector<uint8_t>& head) { return head.size() >= 4 && head[2] == 0x8a && head[3] == 0x0a; }

bool contains(const std::vector<uint8_t>& head, std::string_view text) {
  return std::search(head.begin(), head.end(), text.begin(), text.end()) != head.end();
}

// Keys paddle.save adds beside the parameters.
constexpr std::string_view kNameTable = "StructuredToParameterName@@";
constexpr std::string_view kBigParams = "UnpackBigParamInfor@@";

}  // namespace

bool looksLikePdparams(const std::vector<uint8_t>& head, const std::string& extension) {
  return extension == ".pdparams" || (isPickle(head) && !isTorchLegacy(head) && contains(head, "multiarray"));
}

WeightStore readPdparams(const std::string& path, std::vector<std::string>* notes) {
  const detail::MappedFile file = detail::MappedFile::open(path);
  const auto bytes = file.bytes();
  check(bytes.size() >= 2 && bytes[0] == 0x80, "'", path,
        "' is not a Paddle parameter file: a .pdparams is a pickle (paddle.save), this file does not start with one");
  pickle::Arena arena;
  const pickle::Value root = pickle::unpickle(bytes, arena, path, {}, pickle::GlobalFamily::kNumpy).value;
  const pickle::Dict* dict = pickle::as<pickle::Dict>(root);
  check(dict != nullptr, "'", path, "' holds a pickled ", pickle::describe(root),
        ", not the dict of parameters paddle.save(layer.state_dict()) writes");
  WeightStore store;
  store.setSource(path);
  for (const auto& [key, value] : dict->entries) {
    const auto name = pickle::asString(key);
    check(name.has_value(), "'", path, "': a parameter keyed by a ", pickle::describe(key), ", not by a name");
    if (*name == kNameTable) continue;
    check(*name != kBigParams, "'", path, "' splits parameters over 4 GB into slices (", kBigParams,
          "), which ds2rt does not read: save it with protocol 4");
    const pickle::NumpyArray* array = pickle::as<pickle::NumpyArray>(value);
    if (!array) {
      if (notes) notes->push_back(cat("skipped '", *name, "': a ", pickle::describe(value), ", not an array"));
      continue;
    }
    store.set(std::string(*name), pickle::toHostTensor(*array, cat("'", path, "': parameter '", *name, "'")));
  }
  check(!store.tensors().empty(), "'", path, "' holds no parameter arrays");
  return store;
}

}  // namespace ds2rt::paddle
