// deepspeech.pytorch's stored hyper-parameters, as far as they are readable:
//  - Lightning checkpoints (deepspeech.pytorch >= 3): 'hyper_parameters' = {labels, model_cfg,
//    precision, optim_cfg, spect_cfg} (DeepSpeech.__init__ calls save_hyperparameters()); the
//    configs are omegaconf DictConfigs of BiDirectionalConfig / UniDirectionalConfig / SpectConfig,
//    whose type says whether the model is bidirectional, and rnn_type / window are enum members.
//  - the package dict of deepspeech.pytorch <= 2: {'hidden_size', 'hidden_layers', 'rnn_type',
//    'audio_conf', 'labels', 'bidirectional', 'state_dict', ...}.
#include <algorithm>
#include <cctype>
#include <cmath>

#include "ds2rt/error.h"
#include "importers/pytorch/architecture.h"

namespace ds2rt::pytorch {

namespace {

const Dict* stateOf(const Object& object) { return as<Dict>(object.state); }

bool isOmegaConf(const Object& object, const char* name) {
  return object.type->module.rfind("omegaconf.", 0) == 0 && object.type->name == name;
}

// omegaconf values as plain ones: a value node gives its _val, a DictConfig / ListConfig its
// _content (a dict or list of nodes). Anything else is returned as it is.
Value plain(const Value& value) {
  Value v = value;
  for (int depth = 0; depth < 8; ++depth) {  // bounded: the object graph may have cycles
    const Object* object = as<Object>(v);
    if (!object || !stateOf(*object) || object->type->module.rfind("omegaconf.", 0) != 0) return v;
    const Value* inner = find(*stateOf(*object), isOmegaConf(*object, "DictConfig") || isOmegaConf(*object, "ListConfig")
                                                     ? "_content" : "_val");
    if (!inner) return None{};
    v = *inner;
  }
  return v;
}

const Value* member(const Value& mapping, std::string_view key) {
  const Dict* dict = as<Dict>(plain(mapping));
  return dict ? find(*dict, key) : nullptr;
}

// The dataclass a structured DictConfig was made from ("UniDirectionalConfig"), if recorded.
std::optional<std::string> objectType(const Value& config) {
  const Object* object = as<Object>(config);
  if (!object || !isOmegaConf(*object, "DictConfig") || !stateOf(*object)) return std::nullopt;
  const Value* metadata = find(*stateOf(*object), "_metadata");
  const Object* meta = metadata ? as<Object>(*metadata) : nullptr;
  const Value* type = meta && stateOf(*meta) ? find(*stateOf(*meta), "object_type") : nullptr;
  const Global* global = type ? as<Global>(*type) : nullptr;
  if (!global) return std::nullopt;
  return global->name;
}

std::optional<int> intValue(const Value* v) {
  if (!v) return std::nullopt;
  const auto n = asNumber(plain(*v));
  if (!n || *n != std::floor(*n) || *n < 0 || *n > 1e9) return std::nullopt;
  return static_cast<int>(*n);
}

std::optional<double> numberValue(const Value* v) { return v ? asNumber(plain(*v)) : std::nullopt; }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A str, a class (torch.nn.modules.rnn.LSTM -> "lstm"), or an enum member's name (RNNType.lstm,
// whose value is the class nn.LSTM; SpectrogramWindow.hamming).
std::optional<std::string> nameValue(const Value* v) {
  if (!v) return std::nullopt;
  Value p = plain(*v);
  if (const Object* object = as<Object>(p); object && object->type->kind == GlobalKind::kEnumClass) {
    if (!object->member.empty()) return object->member;
    if (object->args.size() != 1) return std::nullopt;
    p = object->args[0];
  }
  if (const auto s = asString(p)) return std::string(*s);
  if (const Global* g = as<Global>(p)) return lower(g->name);
  return std::nullopt;
}

std::optional<std::vector<std::string>> labelsValue(const Value* v) {
  if (!v) return std::nullopt;
  const Value p = plain(*v);
  std::vector<std::string> labels;
  if (const auto s = asString(p)) {  // a string of one-character labels
    for (char c : *s) labels.emplace_back(1, c);
    return labels;
  }
  const Sequence* seq = as<Sequence>(p);
  if (!seq) return std::nullopt;
  for (const Value& item : seq->items) {
    const auto s = asString(plain(item));
    if (!s) return std::nullopt;
    labels.emplace_back(*s);
  }
  return labels;
}

template <typename T>
void readField(importers::Evidence<T>& field, const std::optional<T>& value, const std::string& path) {
  if (value) field.setRead(*value, path);
}

void readSpect(const Value& spect, const std::string& path, importers::ConfigEvidence& e) {
  readField(e.sample_rate, intValue(member(spect, "sample_rate")), path + ".sample_rate");
  readField(e.window_size, numberValue(member(spect, "window_size")), path + ".window_size");
  readField(e.window_stride, numberValue(member(spect, "window_stride")), path + ".window_stride");
  readField(e.window, nameValue(member(spect, "window")), path + ".window");
}

void readLightning(const Value& hp, importers::ConfigEvidence& e) {
  readField(e.labels, labelsValue(member(hp, "labels")), "hyper_parameters.labels");
  if (const Value* model = member(hp, "model_cfg")) {
    const std::string path = "hyper_parameters.model_cfg";
    readField(e.rnn_type, nameValue(member(*model, "rnn_type")), path + ".rnn_type");
    readField(e.hidden_size, intValue(member(*model, "hidden_size")), path + ".hidden_size");
    readField(e.hidden_layers, intValue(member(*model, "hidden_layers")), path + ".hidden_layers");
    readField(e.lookahead_context, intValue(member(*model, "lookahead_context")), path + ".lookahead_context");
    // deepspeech.pytorch: bidirectional = OmegaConf.get_type(model_cfg) is BiDirectionalConfig.
    const auto type = objectType(*model);
    if (type == "BiDirectionalConfig" || type == "UniDirectionalConfig")
      e.bidirectional.setRead(*type == "BiDirectionalConfig", path + " is a " + *type);
    else if (const Value* bi = member(*model, "bidirectional"); bi && std::holds_alternative<bool>(plain(*bi)))
      e.bidirectional.setRead(std::get<bool>(plain(*bi)), path + ".bidirectional");
  }
  if (const Value* spect = member(hp, "spect_cfg")) readSpect(*spect, "hyper_parameters.spect_cfg", e);
}

void readPackage(const Value& package, importers::ConfigEvidence& e) {
  readField(e.labels, labelsValue(member(package, "labels")), "labels");
  readField(e.rnn_type, nameValue(member(package, "rnn_type")), "rnn_type");
  readField(e.hidden_size, intValue(member(package, "hidden_size")), "hidden_size");
  readField(e.hidden_layers, intValue(member(package, "hidden_layers")), "hidden_layers");
  if (const Value* bi = member(package, "bidirectional"); bi && std::holds_alternative<bool>(*bi))
    e.bidirectional.setRead(std::get<bool>(*bi), "bidirectional");
  if (const Value* audio = member(package, "audio_conf")) readSpect(*audio, "audio_conf", e);
}

}  // namespace

void readHyperParameters(const Value& root, importers::ConfigEvidence& evidence) {
  if (const Value* hp = member(root, "hyper_parameters"))
    readLightning(*hp, evidence);
  else if (member(root, "hidden_size") && member(root, "state_dict"))
    readPackage(root, evidence);
}

}  // namespace ds2rt::pytorch
