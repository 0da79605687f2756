// DeepSpeech2: config parsing, the three ways to give a model (self-describing safetensors, JSON
// beside its weights, JSON naming its weights), and errors that name the tensor at fault.
#include <gmock/gmock.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::HasSubstr;
using Outputs = std::map<std::string, HostTensor>;

const std::string kFixture = "lstm_bi_l2_h32";  // 2-layer bidirectional LSTM, hidden 32, 16 kHz

std::string modelPath(const std::string& name = kFixture) { return dataPath("parity/" + name + "/model.safetensors"); }

const WeightStore& io(const std::string& name = kFixture) {
  static std::map<std::string, WeightStore> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, WeightStore::load(dataPath("parity/" + name + "/io.safetensors"))).first;
  return it->second;
}

Outputs runModel(const DeepSpeech2Model& model, const std::string& name = kFixture) {
  const Engine engine = Builder().build(model.createNetwork());
  return engine.createContext().run({{"features", io(name).get("input")}, {"lengths", io(name).get("input_lengths")}});
}

void expectBitIdentical(const Outputs& a, const Outputs& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    ASSERT_EQ(t.shape(), b.at(name).shape()) << name;
    EXPECT_EQ(std::memcmp(t.data(), b.at(name).data(), t.bytes()), 0) << name;
  }
}

// A fresh temporary directory for one test.
std::string tempDir(const std::string& name) {
  const std::string dir = scratch(name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// A writable copy of a store (tensors and metadata), to modify and save.
WeightStore copyOf(const WeightStore& store, bool with_metadata = true) {
  WeightStore out;
  for (const auto& [name, t] : store.tensors()) out.set(name, t);
  if (with_metadata) out.metadata() = store.metadata();
  return out;
}

// Saves `store` to a temp file and returns createNetwork()'s error message ("" if none).
std::string networkError(const WeightStore& store, const std::string& file) {
  const std::string path = scratch(file);
  store.save(path);
  try {
    DeepSpeech2Model::load(path).createNetwork();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
    return e.what();
  }
  return "";
}

std::string configError(const std::string& text) {
  try {
    DeepSpeech2Config::fromJson(text, "my_config.json");
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("my_config.json"));
    return e.what();
  }
  return "";
}

const char* kLabels = R"(["_", "'", "A", "B", "C", " "])";

// ---- DeepSpeech2Config -------------------------------------------------------------------------

TEST(DeepSpeech2Config, FromJsonUnidirectional) {
  const auto c = DeepSpeech2Config::fromJson(
      std::string(R"({"model_cfg": {"rnn_type": "gru", "hidden_size": 24, "hidden_layers": 3, "lookahead_context": 5},
                     "labels": )") + kLabels + R"(, "spect_cfg": {"sample_rate": 8000, "window_size": 0.02,
                     "window_stride": 0.01, "window": "hamming"}})");
  EXPECT_EQ(c.rnn_type, "gru");
  EXPECT_EQ(c.cell(), RNNCell::kGRU);
  EXPECT_EQ(c.hidden_size, 24);
  EXPECT_EQ(c.hidden_layers, 3);
  EXPECT_FALSE(c.bidirectional);  // implied by lookahead_context
  EXPECT_EQ(c.lookahead_context, 5);
  EXPECT_EQ(c.labels, (std::vector<std::string>{"_", "'", "A", "B", "C", " "}));
  EXPECT_EQ(c.spect.sample_rate, 8000);
  EXPECT_EQ(c.spect.fftSize(), 160);
  EXPECT_EQ(c.spect.frequencyBins(), 81);
  EXPECT_EQ(c.rnnInputSize(), 21 * 32);
}

TEST(DeepSpeech2Config, FromJsonBidirectionalWithDefaults) {
  const auto c = DeepSpeech2Config::fromJson(
      std::string(R"({"model_cfg": {"rnn_type": "LSTM", "hidden_size": 1024, "hidden_layers": 5}, "labels": )") + kLabels +
      "}");
  EXPECT_TRUE(c.bidirectional);
  EXPECT_EQ(c.cell(), RNNCell::kLSTM);  // case-insensitive
  EXPECT_EQ(c.spect.sample_rate, 16000);
  EXPECT_EQ(c.spect.window, "hamming");
  EXPECT_EQ(c.spect.frequencyBins(), 161);
  EXPECT_EQ(c.rnnInputSize(), 41 * 32);  // deepspeech.pytorch's 1312
  EXPECT_EQ(DeepSpeech2Config::fromJson(
                std::string(R"({"model_cfg": {"rnn_type": "rnn", "hidden_size": 8, "hidden_layers": 1}, "labels": )") +
                kLabels + "}")
                .cell(),
            RNNCell::kRNNTanh);
}

TEST(DeepSpeech2Config, LabelsAsString) {
  const auto c = DeepSpeech2Config::fromJson(
      R"({"model_cfg": {"rnn_type": "lstm", "hidden_size": 8, "hidden_layers": 1}, "labels": "_'AB "})");
  EXPECT_EQ(c.labels, (std::vector<std::string>{"_", "'", "A", "B", " "}));
}

TEST(DeepSpeech2Config, MissingFields) {
  const std::string labels = std::string(", \"labels\": ") + kLabels;
  EXPECT_THAT(configError("{\"labels\": " + std::string(kLabels) + "}"), HasSubstr("model_cfg"));
  EXPECT_THAT(configError(R"({"model_cfg": {"hidden_size": 8, "hidden_layers": 1})" + labels + "}"), HasSubstr("rnn_type"));
  EXPECT_THAT(configError(R"({"model_cfg": {"rnn_type": "gru", "hidden_layers": 1})" + labels + "}"),
              HasSubstr("hidden_size"));
  EXPECT_THAT(configError(R"({"model_cfg": {"rnn_type": "gru", "hidden_size": 8})" + labels + "}"),
              HasSubstr("hidden_layers"));
  EXPECT_THAT(configError(R"({"model_cfg": {"rnn_type": "gru", "hidden_size": 8, "hidden_layers": 1}})"),
              HasSubstr("labels"));
  for (const std::string& text : {R"({"model_cfg": {"rnn_type": "gru", "hidden_size": 8})" + labels + "}", std::string("{}")})
    EXPECT_THAT(configError(text), HasSubstr("not a valid DeepSpeech2 config"));
}

TEST(DeepSpeech2Config, BadValues) {
  const std::string labels = std::string(", \"labels\": ") + kLabels;
  EXPECT_THAT(configError(R"({"model_cfg": {"rnn_type": "transformer", "hidden_size": 8, "hidden_layers": 1})" + labels + "}"),
              HasSubstr("unknown rnn_type 'transformer'"));
  EXPECT_THAT(configError(R"({"model_cfg": {"rnn_type": "gru", "hidden_size": 0, "hidden_layers": 1})" + labels + "}"),
              HasSubstr("hidden_size must be positive"));
  EXPECT_THAT(configError(R"({"model_cfg": {"rnn_type": "gru", "hidden_size": 8, "hidden_layers": -1})" + labels + "}"),
              HasSubstr("hidden_layers must be positive"));
  EXPECT_THAT(configError(R"({"model_cfg": {"rnn_type": "gru", "hidden_size": "big", "hidden_layers": 1})" + labels + "}"),
              HasSubstr("not a valid DeepSpeech2 config"));
  EXPECT_THAT(configError(R"({"model_cfg": {"rnn_type": "gru", "hidden_size": 8, "hidden_layers": 1, "lookahead_context": 0})" +
                          labels + "}"),
              HasSubstr("lookahead_context"));
  EXPECT_THAT(configError(R"({"model_cfg": {"rnn_type": "gru", "hidden_size": 8, "hidden_layers": 1}, "labels": []})"),
              HasSubstr("labels are missing"));
  EXPECT_THAT(configError(R"({"model_cfg": {"rnn_type": "gru", "hidden_size": 8, "hidden_layers": 1}, "labels": 5})"),
              HasSubstr("not a valid DeepSpeech2 config"));
  EXPECT_THAT(configError(R"({"model_cfg": {"rnn_type": "gru", "hidden_size": 8, "hidden_layers": 1})" + labels +
                          R"(, "spect_cfg": {"sample_rate": 1000}})"),
              HasSubstr("too few"));
  EXPECT_THAT(configError("model_cfg: {rnn_type: gru}"), HasSubstr("not a valid DeepSpeech2 config"));
  EXPECT_THAT(configError(""), HasSubstr("not a valid DeepSpeech2 config"));
}

TEST(DeepSpeech2Config, TranscriptionMetadata) {
  NetworkDefinition network;
  EXPECT_FALSE(transcriptionConfigFromMetadata(network.metadata(), "net").has_value());
  SpectrogramConfig spect;
  spect.sample_rate = 8000;
  spect.window = "hann";
  setTranscriptionMetadata(network, {"_", "a", "b"}, &spect);
  auto config = transcriptionConfigFromMetadata(network.metadata(), "net");
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->labels, (std::vector<std::string>{"_", "a", "b"}));
  EXPECT_EQ(config->spect.sample_rate, 8000);
  EXPECT_EQ(config->spect.window, "hann");

  NetworkDefinition unknown_features;  // labels only: the default feature settings
  setTranscriptionMetadata(unknown_features, {"_", "a"}, nullptr);
  config = transcriptionConfigFromMetadata(unknown_features.metadata(), "net");
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->spect.sample_rate, SpectrogramConfig{}.sample_rate);

  const auto error = [](const std::map<std::string, std::string>& metadata) {
    return errorOf([&] { transcriptionConfigFromMetadata(metadata, "x.plan"); });
  };
  EXPECT_THAT(error({{"ds2rt.labels", "[1, 2]"}}), HasSubstr("x.plan: malformed ds2rt.labels"));
  EXPECT_THAT(error({{"ds2rt.labels", "[]"}}), HasSubstr("x.plan: the ds2rt.labels metadata lists no labels"));
  EXPECT_THAT(error({{"ds2rt.labels", "[\"_\"]"}, {"ds2rt.spect_cfg", "{\"sample_rate\": 0}"}}),
              HasSubstr("needs positive sample_rate"));
  EXPECT_THAT(errorOf([&] { network.setMetadata("", "x"); }), HasSubstr("metadata keys must not be empty"));
}

TEST(DeepSpeech2Config, ToJsonRoundTrip) {
  for (const bool bidirectional : {true, false}) {
    DeepSpeech2Config c;
    c.rnn_type = "gru";
    c.hidden_size = 12;
    c.hidden_layers = 4;
    c.bidirectional = bidirectional;
    c.lookahead_context = 7;
    c.labels = {"_", "a", "b", " "};
    c.spect.sample_rate = 8000;
    c.spect.window = "hann";
    const auto r = DeepSpeech2Config::fromJson(c.toJson());
    EXPECT_EQ(r.rnn_type, "gru");
    EXPECT_EQ(r.hidden_size, 12);
    EXPECT_EQ(r.hidden_layers, 4);
    EXPECT_EQ(r.bidirectional, bidirectional);
    if (!bidirectional) EXPECT_EQ(r.lookahead_context, 7);
    EXPECT_EQ(r.labels, c.labels);
    EXPECT_EQ(r.spect.sample_rate, 8000);
    EXPECT_EQ(r.spect.window, "hann");
    EXPECT_EQ(json::parse(c.toJson())["model_cfg"].contains("lookahead_context"), !bidirectional);
    EXPECT_EQ(r.toJson(), c.toJson());
  }
}

// ---- Loading models --------------------------------------------------------------------------

TEST(DeepSpeech2Model, LoadsSelfDescribingSafetensors) {
  const auto model = DeepSpeech2Model::load(modelPath());
  const auto& c = model.config();
  EXPECT_EQ(c.cell(), RNNCell::kLSTM);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.hidden_layers, 2);
  EXPECT_TRUE(c.bidirectional);
  EXPECT_EQ(c.labels.size(), 29u);
  EXPECT_EQ(c.spect.sample_rate, 16000);
  EXPECT_EQ(model.weights().get("conv.seq_module.0.weight").dtype(), DataType::kFloat16);
  const Engine engine = Builder().build(model.createNetwork());
  EXPECT_EQ(engine.inputNames(), (std::vector<std::string>{"features", "lengths"}));
  EXPECT_EQ(engine.outputNames(), (std::vector<std::string>{"probs", "output_lengths"}));
  EXPECT_EQ(Builder().build(model.createNetwork({.log_softmax = true})).outputNames(),
            (std::vector<std::string>{"log_probs", "output_lengths"}));
}

TEST(DeepSpeech2Model, JsonBesideItsWeights) {
  const auto reference = DeepSpeech2Model::load(modelPath());
  const Outputs expected = runModel(reference);
  const std::string dir = tempDir("json_beside");
  copyOf(reference.weights(), false).save(dir + "/model.safetensors");
  writeText(dir + "/model.json", reference.weights().metadata().at("ds2rt.config"));
  const auto model = DeepSpeech2Model::load(dir + "/model.json");
  EXPECT_EQ(model.config().toJson(), reference.config().toJson());
  EXPECT_EQ(model.weights().source(), dir + "/model.safetensors");
  expectBitIdentical(runModel(model), expected);
}

TEST(DeepSpeech2Model, JsonNamingItsWeights) {
  const auto reference = DeepSpeech2Model::load(modelPath());
  const std::string dir = tempDir("json_weights_key");
  fs::create_directories(dir + "/weights");
  copyOf(reference.weights(), false).save(dir + "/weights/params.safetensors");
  json config = json::parse(reference.weights().metadata().at("ds2rt.config"));
  config["weights"] = "weights/params.safetensors";  // relative to the JSON
  writeText(dir + "/deepspeech.json", config.dump());
  const auto model = DeepSpeech2Model::load(dir + "/deepspeech.json");
  EXPECT_EQ(model.weights().source(), dir + "/weights/params.safetensors");
  expectBitIdentical(runModel(model), runModel(reference));

  // A weights file that is not there: the error names it.
  config["weights"] = "weights/missing.safetensors";
  writeText(dir + "/broken.json", config.dump());
  try {
    DeepSpeech2Model::load(dir + "/broken.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing.safetensors"));
  }
  // A JSON that is not a config: the error names the JSON.
  writeText(dir + "/bad.json", R"({"model_cfg": {"rnn_type": "gru"}})");
  try {
    DeepSpeech2Model::load(dir + "/bad.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir + "/bad.json"));
  }
}

TEST(DeepSpeech2Model, SafetensorsWithoutConfigExplains) {
  const std::string path = scratch("weights_only.safetensors");
  copyOf(DeepSpeech2Model::load(modelPath()).weights(), false).save(path);
  try {
    DeepSpeech2Model::load(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
    EXPECT_THAT(e.what(), HasSubstr("no 'ds2rt.config' metadata"));
    EXPECT_THAT(e.what(), HasSubstr("JSON config"));
  }
}

TEST(DeepSpeech2Model, MissingFile) {
  const std::string path = scratch("no_such_model.safetensors");
  try {
    DeepSpeech2Model::load(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
  }
  try {
    DeepSpeech2Model::load(scratch("no_such_model.json"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no_such_model.json"));
  }
}

// ---- Weight errors name the tensor -----------------------------------------------------------

class DeepSpeech2Weights : public testing::Test {
 protected:
  const DeepSpeech2Model model_ = DeepSpeech2Model::load(modelPath());
  WeightStore store_ = copyOf(model_.weights());
};

TEST_F(DeepSpeech2Weights, UnmodifiedCopyBuilds) { EXPECT_EQ(networkError(store_, "unmodified.safetensors"), ""); }

TEST_F(DeepSpeech2Weights, MissingTensor) {
  WeightStore s;
  for (const auto& [name, t] : store_.tensors())
    if (name != "rnns.0.rnn.weight_hh_l0") s.set(name, t);
  s.metadata() = store_.metadata();
  EXPECT_THAT(networkError(s, "missing.safetensors"), HasSubstr("missing tensor 'rnns.0.rnn.weight_hh_l0'"));
}

TEST_F(DeepSpeech2Weights, WrongShape) {
  store_.set("fc.0.module.1.weight", HostTensor(DataType::kFloat16, {29, 31}));
  EXPECT_THAT(networkError(store_, "shape.safetensors"),
              HasSubstr("tensor 'fc.0.module.1.weight' has shape [29, 31], expected [29, 32]"));
}

TEST_F(DeepSpeech2Weights, WrongDtype) {
  store_.set("conv.seq_module.0.bias", HostTensor(DataType::kInt64, {32}));
  const std::string error = networkError(store_, "dtype.safetensors");
  EXPECT_THAT(error, HasSubstr("'conv.seq_module.0.bias'"));
  EXPECT_THAT(error, HasSubstr("I64"));
}

TEST_F(DeepSpeech2Weights, StrayTensor) {
  store_.set("rnns.7.rnn.weight_ih_l0", HostTensor(DataType::kFloat16, {128, 32}));
  const std::string error = networkError(store_, "stray.safetensors");
  EXPECT_THAT(error, HasSubstr("'rnns.7.rnn.weight_ih_l0'"));
  EXPECT_THAT(error, HasSubstr("not part of"));
  // A lookahead in a bidirectional model is stray too.
  WeightStore s = copyOf(model_.weights());
  s.set("lookahead.0.conv.weight", HostTensor(DataType::kFloat16, {32, 1, 20}));
  EXPECT_THAT(networkError(s, "stray_lookahead.safetensors"), HasSubstr("'lookahead.0.conv.weight'"));
}

TEST_F(DeepSpeech2Weights, BatchCountersAreOptionalAndIgnored) {
  WeightStore s;
  for (const auto& [name, t] : store_.tensors())
    if (!name.ends_with("num_batches_tracked")) s.set(name, t);
  s.metadata() = store_.metadata();
  s.set("rnns.9.batch_norm.module.num_batches_tracked", HostTensor(DataType::kInt64, {}));
  const std::string path = scratch("no_counters.safetensors");
  s.save(path);
  expectBitIdentical(runModel(DeepSpeech2Model::load(path)), runModel(model_));
}

TEST_F(DeepSpeech2Weights, ConfigDisagreeingWithWeights) {
  json config = json::parse(store_.metadata().at("ds2rt.config"));
  config["model_cfg"]["hidden_layers"] = 3;
  store_.metadata()["ds2rt.config"] = config.dump();
  EXPECT_THAT(networkError(store_, "three_layers.safetensors"), HasSubstr("'rnns.2."));
  config["model_cfg"]["hidden_layers"] = 1;
  store_.metadata()["ds2rt.config"] = config.dump();
  EXPECT_THAT(networkError(store_, "one_layer.safetensors"), HasSubstr("'rnns.1."));
  config["model_cfg"]["hidden_layers"] = 2;
  config["model_cfg"]["hidden_size"] = 16;
  store_.metadata()["ds2rt.config"] = config.dump();
  EXPECT_THAT(networkError(store_, "hidden16.safetensors"), HasSubstr("expected"));
  config["model_cfg"]["hidden_size"] = 32;
  config["model_cfg"]["rnn_type"] = "gru";
  store_.metadata()["ds2rt.config"] = config.dump();
  EXPECT_THAT(networkError(store_, "gru.safetensors"), testing::AllOf(HasSubstr("'rnns.0.rnn."), HasSubstr("has shape [128"), HasSubstr("expected [96")));
}

// ---- Save / load -----------------------------------------------------------------------------

TEST(DeepSpeech2Model, SaveLoadRoundTrip) {
  for (const std::string name : {"lstm_bi_l2_h32", "gru_uni_l1_h24_ctx2"}) {
    const auto model = DeepSpeech2Model::load(modelPath(name));
    const std::string path = scratch(name + "_saved.safetensors");
    model.save(path);
    const auto loaded = DeepSpeech2Model::load(path);
    EXPECT_EQ(loaded.config().toJson(), model.config().toJson());
    EXPECT_EQ(loaded.weights().names(), model.weights().names());
    for (const auto& [tensor, t] : model.weights().tensors()) {
      const HostTensor& u = loaded.weights().get(tensor);
      EXPECT_EQ(u.dtype(), t.dtype()) << tensor;  // fp16 stays fp16
      ASSERT_EQ(u.bytes(), t.bytes()) << tensor;
      EXPECT_EQ(std::memcmp(u.data(), t.data(), t.bytes()), 0) << tensor;
    }
    expectBitIdentical(runModel(loaded, name), runModel(model, name));
  }
}

TEST(DeepSpeech2Model, Float32WeightsGiveTheSameOutputs) {
  const auto model = DeepSpeech2Model::load(modelPath());
  WeightStore f32;
  for (const auto& [name, t] : model.weights().tensors())
    f32.set(name, t.dtype() == DataType::kFloat16 ? t.toFloat32() : t);
  const DeepSpeech2Model converted(model.config(), f32);
  const std::string path = scratch("f32_model.safetensors");
  converted.save(path);
  const auto loaded = DeepSpeech2Model::load(path);
  EXPECT_EQ(loaded.weights().get("fc.0.module.1.weight").dtype(), DataType::kFloat32);
  expectBitIdentical(runModel(loaded), runModel(model));
}

TEST(DeepSpeech2Model, ConstructorValidatesTheConfig) {
  DeepSpeech2Config c;
  c.labels = {"_", "a"};
  c.hidden_size = 0;
  try {
    (void)DeepSpeech2Model(c, WeightStore{});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("hidden_size"));
  }
}

}  // namespace
}  // namespace ds2rt::test
