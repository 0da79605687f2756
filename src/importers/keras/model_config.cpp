#include "importers/keras/model_config.h"

#include <map>
#include <set>

#include "ds2rt/error.h"

namespace ds2rt::keras {

using nlohmann::json;

namespace {

const std::set<std::string> kSupported = {
    "InputLayer", "Reshape",          "Conv2D",           "BatchNormalization", "ReLU",        "Activation",
    "Softmax",    "Dropout",          "SpatialDropout1D", "SpatialDropout2D",   "GaussianNoise", "GaussianDropout",
    "Dense",      "TimeDistributed",  "LSTM",             "GRU",                "SimpleRNN",   "Bidirectional"};
const std::set<std::string> kRecurrent = {"LSTM", "GRU", "SimpleRNN"};
const std::set<std::string> kTimeDistributable = {"Dense", "Dropout"};

// The inner layer a wrapper (Bidirectional, TimeDistributed) holds.
std::string innerClass(const LayerConfig& layer) {
  const json& c = layer.config;
  return c.contains("layer") && c["layer"].is_object() ? c["layer"].value("class_name", "?") : "?";
}

bool supported(const LayerConfig& layer) {
  if (!kSupported.count(layer.class_name)) return false;
  if (layer.class_name == "Bidirectional") return kRecurrent.count(innerClass(layer)) != 0;
  if (layer.class_name == "TimeDistributed") return kTimeDistributable.count(innerClass(layer)) != 0;
  return true;
}

// Names of the layers feeding a layer: Keras 3 nests {"keras_history": [name, node, index]} in the
// node's arguments; Keras 2 wrote [[[name, node, index, kwargs], ...]].
void collectInbound(const json& node, std::vector<std::string>& out) {
  if (node.is_object()) {
    if (node.contains("keras_history") && node["keras_history"].is_array() && !node["keras_history"].empty() &&
        node["keras_history"][0].is_string()) {
      out.push_back(node["keras_history"][0]);
      return;
    }
    for (const auto& [key, value] : node.items()) collectInbound(value, out);
  } else if (node.is_array()) {
    if (node.size() >= 3 && node[0].is_string() && node[1].is_number_integer()) {
      out.push_back(node[0]);
      return;
    }
    for (const json& value : node) collectInbound(value, out);
  }
}

}  // namespace

// Keras's to_snake_case: drop non-word characters, then re.sub("(.)([A-Z][a-z]+)", r"\1_\2") and
// re.sub("([a-z])([A-Z])", r"\1_\2"), then lower case. Written out rather than with std::regex, whose
// compilation races inside libstdc++'s ctype cache when archives are opened on several threads.
std::string toSnakeCase(const std::string& class_name) {
  const auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  const auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  std::string s;
  for (char c : class_name)
    if (upper(c) || lower(c) || (c >= '0' && c <= '9') || c == '_') s += c;
  std::string words;  // "(.)([A-Z][a-z]+)" -> "\1_\2", matches taken left to right without overlap
  for (size_t i = 0; i < s.size();) {
    if (i + 2 < s.size() && upper(s[i + 1]) && lower(s[i + 2])) {
      size_t end = i + 3;
      while (end < s.size() && lower(s[end])) ++end;
      words += s[i];
      words += '_';
      words.append(s, i + 1, end - i - 1);
      i = end;
    } else {
      words += s[i++];
    }
  }
  std::string out;  // "([a-z])([A-Z])" -> "\1_\2"
  for (size_t i = 0; i < words.size();) {
    if (i + 1 < words.size() && lower(words[i]) && upper(words[i + 1])) {
      out += words[i];
      out += '_';
      out += words[i + 1];
      i += 2;
    } else {
      out += words[i++];
    }
  }
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string activationName(const json& value) {
  if (value.is_null()) return "linear";
  if (value.is_string()) return value;
  if (value.is_object()) {
    if (value.contains("config") && value["config"].is_string()) return value["config"];
    if (value.contains("class_name") && value["class_name"].is_string()) return value["class_name"];
  }
  return value.dump();
}

ModelConfig parseModelConfig(const json& model, const std::string& source) {
  ModelConfig out;
  try {
    out.class_name = model.at("class_name");
    const json& config = model.at("config");
    check(out.class_name == "Functional" || out.class_name == "Model" || out.class_name == "Sequential", "'", source,
          "': a Keras '", out.class_name, "' model; ds2rt reads Functional and Sequential models");
    out.name = config.value("name", "");
    std::vector<std::string> unsupported;
    std::string previous;
    for (const json& l : config.at("layers")) {
      LayerConfig layer{.class_name = l.at("class_name"), .config = l.at("config")};
      layer.name = l.contains("name") ? l["name"].get<std::string>() : layer.config.at("name").get<std::string>();
      if (!supported(layer))
        unsupported.push_back(layer.class_name + (layer.class_name == "Bidirectional" || layer.class_name == "TimeDistributed"
                                                      ? "(" + innerClass(layer) + ")"
                                                      : "") +
                              " '" + layer.name + "'");
      if (out.class_name != "Sequential" && l.contains("inbound_nodes")) {
        check(l["inbound_nodes"].size() <= 1, "'", source, "': layer '", layer.name,
              "' is called more than once (a shared layer); ds2rt imports a single chain of layers");
        std::vector<std::string> inbound;
        collectInbound(l["inbound_nodes"], inbound);
        const bool first = out.layers.empty();
        check(first ? inbound.empty() : inbound == std::vector<std::string>{previous}, "'", source, "': layer '",
              layer.name, "' does not simply follow layer '", previous,
              "'; ds2rt imports a single chain of layers (no branches, skips or multiple inputs)");
      }
      previous = layer.name;
      out.layers.push_back(std::move(layer));
    }
    if (!unsupported.empty()) {
      std::string list;
      for (const auto& u : unsupported) list += "\n  " + u;
      fail("'", source, "': the model has layers ds2rt cannot import:", list,
           "\nSupported: InputLayer, Reshape, Conv2D, BatchNormalization, ReLU, Activation, Softmax, Dropout, Dense, "
           "TimeDistributed(Dense), LSTM, GRU, SimpleRNN, Bidirectional(LSTM/GRU/SimpleRNN)");
    }
    // Sequential models built from an input shape rather than an Input layer.
    if (out.class_name == "Sequential" && (out.layers.empty() || out.layers.front().class_name != "InputLayer")) {
      json input = {{"name", "input"}};
      if (config.contains("build_input_shape")) input["batch_shape"] = config["build_input_shape"];
      else if (!out.layers.empty() && out.layers.front().config.contains("batch_input_shape"))
        input["batch_shape"] = out.layers.front().config["batch_input_shape"];
      else fail("'", source, "': a Sequential model without an input shape (build it before saving)");
      out.layers.insert(out.layers.begin(), LayerConfig{.class_name = "InputLayer", .name = "input", .config = input});
    }
    check(!out.layers.empty() && out.layers.front().class_name == "InputLayer", "'", source,
          "': the model does not start with an InputLayer");
    std::map<std::string, int> used;
    for (LayerConfig& layer : out.layers) {
      const std::string key = toSnakeCase(layer.class_name);
      const auto [it, first] = used.emplace(key, 0);
      layer.archive_key = first ? key : cat(key, "_", ++it->second);
    }
  } catch (const json::exception& e) {
    fail("'", source, "': unexpected Keras model config: ", e.what());
  }
  return out;
}

}  // namespace ds2rt::keras
