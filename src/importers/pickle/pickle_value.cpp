#include "importers/pickle/pickle_value.h"

namespace ds2rt::pickle {

std::optional<std::string_view> asString(const Value& value) {
  const Text* text = as<Text>(value);
  if (!text || text->kind != Text::Kind::kString) return std::nullopt;
  return std::string_view(text->data);
}

std::optional<int64_t> asInt(const Value& value) {
  if (const int64_t* i = std::get_if<int64_t>(&value)) return *i;
  return std::nullopt;
}

std::optional<double> asNumber(const Value& value) {
  if (const int64_t* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  if (const double* d = std::get_if<double>(&value)) return *d;
  return std::nullopt;
}

bool isNone(const Value& value) { return std::holds_alternative<None>(value); }

std::string describe(const Value& value) {
  if (std::holds_alternative<None>(value)) return "None";
  if (std::holds_alternative<bool>(value)) return "bool";
  if (std::holds_alternative<int64_t>(value)) return "int";
  if (std::holds_alternative<double>(value)) return "float";
  const Node& node = *std::get<Node*>(value);
  struct Describe {
    std::string operator()(const Text& t) const {
      return t.kind == Text::Kind::kString ? "str" : t.kind == Text::Kind::kBytes ? "bytes" : "int";
    }
    std::string operator()(const Sequence& s) const {
      return s.kind == Sequence::Kind::kList ? "list" : s.kind == Sequence::Kind::kTuple ? "tuple" : "set";
    }
    std::string operator()(const Dict&) const { return "dict"; }
    std::string operator()(const Global& g) const { return g.qualifiedName(); }
    std::string operator()(const Object& o) const { return "object of " + o.type->qualifiedName(); }
    std::string operator()(const StorageRef&) const { return "storage"; }
    std::string operator()(const TensorRef&) const { return "tensor"; }
    std::string operator()(const NumpyDtype&) const { return "numpy.dtype"; }
    std::string operator()(const NumpyArray&) const { return "numpy.ndarray"; }
  };
  return std::visit(Describe{}, node.payload);
}

const Value* find(const Dict& dict, std::string_view key) {
  for (auto it = dict.entries.rbegin(); it != dict.entries.rend(); ++it)
    if (asString(it->first) == key) return &it->second;
  return nullptr;
}

}  // namespace ds2rt::pickle
