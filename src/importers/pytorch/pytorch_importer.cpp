// importPyTorch: a torch.save file -> its DeepSpeech2 state_dict -> configuration and weights.
#include <map>

#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "importers/config_evidence.h"
#include "importers/pytorch/architecture.h"
#include "importers/pytorch/torch_file.h"

namespace ds2rt {

namespace {

using pytorch::Dict;
using pytorch::TensorRef;
using pytorch::Value;

constexpr std::string_view kAnchor = "conv.seq_module.0.weight";  // the first weight of every DS2 model
constexpr const char* kNetworkPrefixes[] = {"conv.", "rnns.", "lookahead.", "fc."};

struct StateDict {
  const Dict* dict = nullptr;
  std::string where;   // "state_dict", "the top level"
  std::string prefix;  // "", "model.", "module."
};

std::optional<std::string> prefixOf(const Dict& dict) {
  for (const auto& [key, value] : dict.entries) {
    const auto name = pytorch::asString(key);
    if (name && name->ends_with(kAnchor) && pytorch::as<TensorRef>(value))
      return std::string(name->substr(0, name->size() - kAnchor.size()));
  }
  return std::nullopt;
}

// The state_dict: the object itself, or under one of the keys checkpoints commonly use.
StateDict findStateDict(const pytorch::TorchFile& file) {
  std::vector<std::pair<const Dict*, std::string>> candidates;
  const Dict* root = pytorch::as<Dict>(file.root());
  check(root != nullptr, "'", file.source(), "' holds a ", pytorch::describe(file.root()),
        ", not a state_dict or a checkpoint dict");
  candidates.emplace_back(root, "the top level");
  for (const char* key : {"state_dict", "model_state_dict", "model", "net", "state"})
    if (const Value* v = pytorch::find(*root, key); v && pytorch::as<Dict>(*v))
      candidates.emplace_back(pytorch::as<Dict>(*v), key);
  for (const auto& [dict, where] : candidates)
    if (const auto prefix = prefixOf(*dict)) return {dict, where, *prefix};
  std::string keys;
  for (size_t i = 0; i < root->entries.size() && i < 8; ++i)
    if (const auto k = pytorch::asString(root->entries[i].first)) keys += cat(keys.empty() ? "" : ", ", "'", *k, "'");
  fail("'", file.source(), "' holds no DeepSpeech2 state_dict (no tensor named '", kAnchor,
       "', with or without a prefix, at the top level or under 'state_dict'); its top-level keys: ",
       keys.empty() ? "none" : keys);
}

bool inNetwork(std::string_view name) {
  for (const char* p : kNetworkPrefixes)
    if (name.starts_with(p)) return true;
  return false;
}

std::string describeFormat(const pytorch::TorchFile& file, const StateDict& sd) {
  const Dict& root = *pytorch::as<Dict>(file.root());
  std::string kind = "PyTorch state_dict";
  if (pytorch::find(root, "pytorch-lightning_version") || pytorch::find(root, "hyper_parameters"))
    kind = "PyTorch Lightning checkpoint";
  else if (pytorch::find(root, "hidden_size") && sd.where == "state_dict")
    kind = "deepspeech.pytorch package";
  else if (sd.where != "the top level")
    kind = "PyTorch checkpoint dict";
  return cat(kind, " (", file.format(), ")");
}

}  // namespace

ImportedModel importPyTorch(const std::string& path, const ImportOptions& options) {
  const pytorch::TorchFile file = pytorch::TorchFile::open(path);
  const StateDict sd = findStateDict(file);

  std::map<std::string, const TensorRef*> tensors;
  std::vector<std::string> skipped;
  for (const auto& [key, value] : sd.dict->entries) {
    const auto name = pytorch::asString(key);
    if (!name || !name->starts_with(sd.prefix) || !inNetwork(name->substr(sd.prefix.size()))) {
      skipped.push_back(name ? std::string(*name) : pytorch::describe(key));
      continue;
    }
    const TensorRef* tensor = pytorch::as<TensorRef>(value);
    check(tensor != nullptr, "'", path, "': state_dict entry '", *name, "' is a ", pytorch::describe(value),
          ", not a tensor");
    tensors.insert_or_assign(std::string(name->substr(sd.prefix.size())), tensor);
  }

  importers::ConfigEvidence evidence;
  pytorch::readHyperParameters(file.root(), evidence);
  std::map<std::string, Shape> shapes;
  for (const auto& [name, tensor] : tensors) shapes.emplace(name, tensor->size);
  pytorch::inferFromShapes(shapes, evidence);
  importers::ResolvedConfig resolved = importers::resolveConfig(evidence, options, path);

  WeightStore weights;
  weights.setSource(path);
  for (const auto& [name, tensor] : tensors) weights.set(name, file.tensor(*tensor, sd.prefix + name));

  ImportedModel out{DeepSpeech2Model(std::move(resolved.config), std::move(weights)), describeFormat(file, sd),
                    std::move(resolved.origins), {}};
  out.notes.push_back(cat(tensors.size(), " tensors from ", sd.where == "the top level" ? "the top-level dict" : "'" + sd.where + "'",
                          sd.prefix.empty() ? std::string() : cat(", prefix '", sd.prefix, "' removed")));
  if (!skipped.empty()) {
    std::string names;
    for (size_t i = 0; i < skipped.size() && i < 4; ++i) names += cat(i ? ", " : "", skipped[i]);
    out.notes.push_back(cat("skipped ", skipped.size(), " entries outside the DeepSpeech2 network: ", names,
                            skipped.size() > 4 ? ", ..." : ""));
  }
  return out;
}

DeepSpeech2Model importPyTorchCheckpoint(const std::string& path, const ImportOptions& options) {
  return importPyTorch(path, options).model;
}

}  // namespace ds2rt
