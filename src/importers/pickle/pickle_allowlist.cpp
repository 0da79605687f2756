// The allowlist: every global a checkpoint may name, and the refusal of all others.
#include "importers/pickle/pickle_globals.h"

#include "ds2rt/error.h"

namespace ds2rt::pickle {

namespace {

using K = GlobalKind;
constexpr uint8_t kTorch = static_cast<uint8_t>(GlobalFamily::kTorch), kNumpy = static_cast<uint8_t>(GlobalFamily::kNumpy);
constexpr uint8_t kAny = kTorch | kNumpy;

struct Allowed {
  const char* module;
  const char* name;
  GlobalKind kind;
  uint8_t families = kTorch;  // the families that may name it
};

// Module names are matched after "__builtin__" (what protocol 2 writes) becomes "builtins".
constexpr Allowed kAllowed[] = {
    // Plain containers and bytes, in any model file.
    {"collections", "OrderedDict", K::kOrderedDict, kAny},
    {"collections", "defaultdict", K::kOrderedDict, kAny},
    {"builtins", "set", K::kSet, kAny},
    {"builtins", "frozenset", K::kSet, kAny},
    {"_codecs", "encode", K::kCodecsEncode, kAny},
    // numpy arrays (paddle.save writes a dict of them): rebuilt from raw bytes, nothing else of numpy.
    {"numpy.core.multiarray", "_reconstruct", K::kNumpyReconstruct, kNumpy},
    {"numpy._core.multiarray", "_reconstruct", K::kNumpyReconstruct, kNumpy},
    {"numpy", "ndarray", K::kInert, kNumpy},
    {"numpy", "dtype", K::kNumpyDtype, kNumpy},
    // Tensors and the containers state_dicts are made of.
    {"torch._utils", "_rebuild_tensor", K::kRebuildTensor},
    {"torch._utils", "_rebuild_tensor_v2", K::kRebuildTensor},
    {"torch._utils", "_rebuild_tensor_v3", K::kRebuildTensor},
    {"torch._utils", "_rebuild_parameter", K::kRebuildParameter},
    {"torch._utils", "_rebuild_parameter_with_state", K::kRebuildParameter},
    {"torch._tensor", "_rebuild_from_type_v2", K::kRebuildFromType},
    {"torch", "Tensor", K::kInert},
    {"torch.nn.parameter", "Parameter", K::kInert},
    {"torch", "Size", K::kTorchSize},
    {"builtins", "getattr", K::kGetattr},
    // deepspeech.pytorch's hyper-parameters: omegaconf containers of its config dataclasses.
    {"omegaconf.dictconfig", "DictConfig", K::kContainerClass},
    {"omegaconf.listconfig", "ListConfig", K::kContainerClass},
    {"omegaconf.base", "ContainerMetadata", K::kContainerClass},
    {"omegaconf.base", "Metadata", K::kContainerClass},
    {"omegaconf.nodes", "AnyNode", K::kContainerClass},
    {"omegaconf.nodes", "StringNode", K::kContainerClass},
    {"omegaconf.nodes", "IntegerNode", K::kContainerClass},
    {"omegaconf.nodes", "FloatNode", K::kContainerClass},
    {"omegaconf.nodes", "BooleanNode", K::kContainerClass},
    {"omegaconf.nodes", "EnumNode", K::kContainerClass},
    {"omegaconf.nodes", "BytesNode", K::kContainerClass},
    {"deepspeech_pytorch.enums", "RNNType", K::kEnumClass},
    {"deepspeech_pytorch.enums", "SpectrogramWindow", K::kEnumClass},
    {"deepspeech_pytorch.enums", "DecoderType", K::kEnumClass},
    {"torch.nn.modules.rnn", "LSTM", K::kInert},  // the values of RNNType
    {"torch.nn.modules.rnn", "GRU", K::kInert},
    {"torch.nn.modules.rnn", "RNN", K::kInert},
    {"deepspeech_pytorch.configs.train_config", "SpectConfig", K::kInert},
    {"deepspeech_pytorch.configs.train_config", "AugmentationConfig", K::kInert},
    {"deepspeech_pytorch.configs.train_config", "DataConfig", K::kInert},
    {"deepspeech_pytorch.configs.train_config", "BiDirectionalConfig", K::kInert},
    {"deepspeech_pytorch.configs.train_config", "UniDirectionalConfig", K::kInert},
    {"deepspeech_pytorch.configs.train_config", "OptimConfig", K::kInert},
    {"deepspeech_pytorch.configs.train_config", "SGDConfig", K::kInert},
    {"deepspeech_pytorch.configs.train_config", "AdamConfig", K::kInert},
    {"deepspeech_pytorch.configs.train_config", "DeepSpeechTrainerConf", K::kInert},
    {"deepspeech_pytorch.configs.train_config", "DeepSpeechConfig", K::kInert},
    {"deepspeech_pytorch.configs.lightning_config", "TrainerConf", K::kInert},
    {"deepspeech_pytorch.configs.lightning_config", "ModelCheckpointConf", K::kInert},
    // Type annotations omegaconf records (typing.Tuple[float, ...] is pickled as a getitem call).
    {"typing", "Any", K::kInert},
    {"typing", "Tuple", K::kInert},
    {"typing", "List", K::kInert},
    {"typing", "Dict", K::kInert},
    {"typing", "Optional", K::kInert},
    {"typing", "Union", K::kInert},
    {"_operator", "getitem", K::kInert},
    {"builtins", "Ellipsis", K::kInert},
    {"builtins", "dict", K::kInert},
    {"builtins", "list", K::kInert},
    {"builtins", "tuple", K::kInert},
    {"builtins", "float", K::kInert},
    {"builtins", "int", K::kInert},
    {"builtins", "long", K::kInert},
    {"builtins", "bool", K::kInert},
    {"builtins", "str", K::kInert},
    {"builtins", "unicode", K::kInert},
    {"builtins", "bytes", K::kInert},
    {"builtins", "object", K::kInert},
};

struct ElementType {
  const char* name;
  std::optional<DataType> dtype;  // nullopt: a type ds2rt has no tensors of
  size_t size;
};

constexpr ElementType kStorageTypes[] = {
    {"FloatStorage", DataType::kFloat32, 4}, {"DoubleStorage", DataType::kFloat64, 8},
    {"HalfStorage", DataType::kFloat16, 2},  {"BFloat16Storage", DataType::kBFloat16, 2},
    {"LongStorage", DataType::kInt64, 8},    {"IntStorage", DataType::kInt32, 4},
    {"ShortStorage", std::nullopt, 2},       {"CharStorage", DataType::kInt8, 1},
    {"ByteStorage", DataType::kUInt8, 1},    {"BoolStorage", DataType::kBool, 1},
    {"ComplexFloatStorage", std::nullopt, 8}, {"ComplexDoubleStorage", std::nullopt, 16},
    {"UntypedStorage", DataType::kUInt8, 1},
};

constexpr ElementType kDtypes[] = {
    {"float32", DataType::kFloat32, 4}, {"float", DataType::kFloat32, 4},    {"float16", DataType::kFloat16, 2},
    {"half", DataType::kFloat16, 2},    {"bfloat16", DataType::kBFloat16, 2}, {"float64", DataType::kFloat64, 8},
    {"double", DataType::kFloat64, 8},  {"int64", DataType::kInt64, 8},      {"long", DataType::kInt64, 8},
    {"int32", DataType::kInt32, 4},     {"int", DataType::kInt32, 4},        {"int16", std::nullopt, 2},
    {"short", std::nullopt, 2},         {"int8", DataType::kInt8, 1},        {"uint8", DataType::kUInt8, 1},
    {"bool", DataType::kBool, 1},       {"complex64", std::nullopt, 8},      {"complex128", std::nullopt, 16},
};

std::string canonicalModule(const std::string& module) { return module == "__builtin__" ? "builtins" : module; }

}  // namespace

[[noreturn]] void refuse(const std::string& source, const std::string& what, const std::string& module) {
  // A module class: most likely a whole pickled model (torch.save(model)) rather than an attack.
  const bool model_class = module.starts_with("torch.nn.") || module.starts_with("deepspeech_pytorch.") ||
                           module == "__main__";
  fail("refusing to load '", source, "': the checkpoint ", what,
       "; ds2rt only loads tensors and plain containers and never runs code from a checkpoint",
       model_class ? " (a whole pickled model? save its state_dict() instead, or a Lightning checkpoint)" : "");
}

std::optional<Global> lookupGlobal(const std::string& module, const std::string& name, GlobalFamily family) {
  const std::string m = canonicalModule(module);
  const auto bit = static_cast<uint8_t>(family);
  for (const Allowed& a : kAllowed)
    if (m == a.module && name == a.name && (a.families & bit) != 0) return Global{module, name, a.kind};
  if (m == "torch" && family == GlobalFamily::kTorch) {
    for (const ElementType& t : kStorageTypes)
      if (name == t.name) return Global{module, name, K::kStorageType, t.dtype, t.size};
    for (const ElementType& t : kDtypes)
      if (name == t.name) return Global{module, name, K::kDtype, t.dtype, t.size};
  }
  return std::nullopt;
}

Value resolveGlobal(const std::string& module, const std::string& name, GlobalFamily family, Arena& arena,
                    const std::string& source) {
  if (auto g = lookupGlobal(module, name, family)) return arena.make(std::move(*g));
  // Protocol 4 names an enum member by its qualified name: deepspeech_pytorch.enums RNNType.lstm.
  if (const size_t dot = name.find('.'); dot != std::string::npos && name.find('.', dot + 1) == std::string::npos) {
    auto g = lookupGlobal(module, name.substr(0, dot), family);
    if (g && g->kind == K::kEnumClass) {
      const Global* type = std::get_if<Global>(&arena.make(std::move(*g))->payload);
      return arena.make(Object{type, {}, None{}, name.substr(dot + 1)});
    }
  }
  refuse(source, "references " + module + "." + name, module);
}

}  // namespace ds2rt::pickle
