// ONNX import: DeepSpeech2 models exported by torch.onnx.export (tests/fixtures_src/make_onnx_fixtures.py)
// must match PyTorch's output; malformed files and unsupported graphs must give clear errors.
#include <onnx/onnx_pb.h>

#include <fstream>
#include <set>
#include <iterator>

#include "core/graph.h"
#include "ds2rt/builder.h"
#include "ds2rt/importers.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

onnx::ModelProto loadProto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromIstream(&in)) << path;
  return model;
}

std::string saveProto(const onnx::ModelProto& model, const std::string& name) {
  const std::string path = scratch(name);
  std::ofstream out(path, std::ios::binary);
  EXPECT_TRUE(model.SerializeToOstream(&out));
  return path;
}

std::string saveBytes(const std::string& bytes, const std::string& name) {
  const std::string path = scratch(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string fixture(const std::string& name) { return dataPath("onnx/" + name + "/model.onnx"); }

class OnnxParityTest : public testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(OnnxParityTest, MatchesPyTorch) {
  const auto& [name, optimize] = GetParam();
  const ImportedNetwork imported = importNetwork(fixture(name));
  EXPECT_NE(imported.format.find("ONNX"), std::string::npos) << imported.format;
  EXPECT_EQ(imported.labels.size(), 29u);
  EXPECT_TRUE(imported.spect_known);
  EXPECT_EQ(imported.spect.sample_rate, 8000);
  const WeightStore io = WeightStore::load(dataPath("onnx/" + name + "/io.safetensors"));
  const Engine engine = Builder({.optimize = optimize}).build(imported.network);
  auto ctx = engine.createContext();
  auto out = ctx.run({{"features", io.get("features")}, {"lengths", io.get("lengths")}});
  const HostTensor& lengths = out.at("output_lengths");
  ASSERT_EQ(toVector(lengths), toVector(io.get("output_lengths")));
  const HostTensor& expected = io.get("probs");
  ASSERT_EQ(out.at("probs").shape(), expected.shape());
  const double error = relativeL2(validFrames(out.at("probs"), lengths), validFrames(expected, io.get("output_lengths")));
  EXPECT_LT(error, 1e-4) << name;
  RecordProperty("relative_l2", cat(error));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, OnnxParityTest,
                         testing::Combine(testing::Values("lstm_bi_l2_h16", "gru_uni_l2_h16_ctx3"), testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) ? "_optimized" : "_unoptimized");
                         });

TEST(OnnxImport, RecognisedByContentWhateverTheName) {
  std::ifstream in(fixture("lstm_bi_l2_h16"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const ImportedNetwork imported = importNetwork(saveBytes(bytes, "model.bin"));
  EXPECT_NE(imported.format.find("ONNX"), std::string::npos);
  EXPECT_NE(errorOf([&] { importModel(fixture("lstm_bi_l2_h16")); }).find("importNetwork"), std::string::npos);
}

TEST(OnnxImport, MalformedFilesGiveClearErrors) {
  std::ifstream in(fixture("gru_uni_l2_h16_ctx3"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(errorOf([&] { importOnnx(saveBytes("", "empty.onnx")); }).find("is empty"), std::string::npos);
  EXPECT_NE(errorOf([&] { importOnnx(saveBytes(bytes.substr(0, bytes.size() / 2), "truncated.onnx")); })
                .find("do not parse as an ONNX ModelProto"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { importOnnx(saveBytes("hello, this is not protobuf at all", "text.onnx")); })
                .find("is not an ONNX model"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { importOnnx(scratch("absent.onnx")); }).find("cannot open"), std::string::npos);

  onnx::ModelProto no_graph = loadProto(fixture("gru_uni_l2_h16_ctx3"));
  no_graph.clear_graph();
  EXPECT_NE(errorOf([&] { importOnnx(saveProto(no_graph, "no_graph.onnx")); }).find("has no graph"), std::string::npos);

  onnx::ModelProto empty_graph = loadProto(fixture("gru_uni_l2_h16_ctx3"));
  empty_graph.mutable_graph()->clear_node();
  EXPECT_NE(errorOf([&] { importOnnx(saveProto(empty_graph, "empty_graph.onnx")); }).find("has no nodes"),
            std::string::npos);

  onnx::ModelProto missing = loadProto(fixture("gru_uni_l2_h16_ctx3"));
  const std::string dropped = missing.graph().initializer(0).name();
  missing.mutable_graph()->mutable_initializer()->erase(missing.mutable_graph()->mutable_initializer()->begin());
  const std::string missing_error = errorOf([&] { importOnnx(saveProto(missing, "missing.onnx")); });
  EXPECT_NE(missing_error.find("'" + dropped + "' is neither a graph input, an initializer nor the output"),
            std::string::npos)
      << missing_error;

  onnx::ModelProto external = loadProto(fixture("gru_uni_l2_h16_ctx3"));
  auto* init = external.mutable_graph()->mutable_initializer(0);
  init->clear_raw_data();
  init->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* entry = init->add_external_data();
  entry->set_key("location");
  entry->set_value("weights.bin");
  EXPECT_NE(errorOf([&] { importOnnx(saveProto(external, "external.onnx")); }).find("external"), std::string::npos);

  onnx::ModelProto short_data = loadProto(fixture("gru_uni_l2_h16_ctx3"));
  short_data.mutable_graph()->mutable_initializer(0)->mutable_raw_data()->resize(3);
  const std::string short_error = errorOf([&] { importOnnx(saveProto(short_data, "short.onnx")); });
  EXPECT_NE(short_error.find("holds 0 values, its shape [4, 1, 41, 11] needs 1804"), std::string::npos) << short_error;

  // A forged shape of 2^40 elements is refused before anything is allocated for it.
  onnx::ModelProto forged = loadProto(fixture("gru_uni_l2_h16_ctx3"));
  auto* dims = forged.mutable_graph()->mutable_initializer(0)->mutable_dims();
  dims->Clear();
  dims->Add(1 << 20);
  dims->Add(1 << 20);
  const std::string forged_error = errorOf([&] { importOnnx(saveProto(forged, "forged.onnx")); });
  EXPECT_NE(forged_error.find("needs 1099511627776"), std::string::npos) << forged_error;
}

TEST(OnnxImport, EveryUnsupportedOperatorInOneError) {
  onnx::ModelProto model = loadProto(fixture("lstm_bi_l2_h16"));
  auto* g = model.mutable_graph();
  int changed = 0;
  for (auto& node : *g->mutable_node()) {
    if (node.op_type() == "Softmax") node.set_op_type("Hardmax"), ++changed;
    if (node.op_type() == "LSTM") node.set_op_type("Scan"), ++changed;
  }
  ASSERT_EQ(changed, 3);
  const std::string error = errorOf([&] { importOnnx(saveProto(model, "unknown_ops.onnx")); });
  EXPECT_NE(error.find("3 nodes use operators ds2rt does not import"), std::string::npos) << error;
  EXPECT_NE(error.find("Hardmax (node '/Softmax')"), std::string::npos) << error;
  EXPECT_NE(error.find("Scan (node '/rnns.0/rnn/LSTM')"), std::string::npos) << error;
  EXPECT_NE(error.find("Scan (node '/rnns.1/rnn/LSTM')"), std::string::npos) << error;
}

TEST(OnnxImport, NonZeroInitialStateAndFinalCellState) {
  // A non-zero initial state (ConstantOfShape 0.5) becomes a constant of the recurrent layer.
  onnx::ModelProto model = loadProto(fixture("gru_uni_l2_h16_ctx3"));
  std::set<std::string> states;
  for (const auto& node : model.graph().node())
    if (node.op_type() == "GRU" && node.input_size() > 5) states.insert(node.input(5));
  ASSERT_FALSE(states.empty());
  for (auto& node : *model.mutable_graph()->mutable_node())
    if (node.op_type() == "ConstantOfShape" && states.count(node.output(0))) {
      auto* value = node.mutable_attribute(0)->mutable_t();
      value->clear_raw_data();
      value->add_float_data(0.5f);
    }
  const ImportedNetwork imported = importOnnx(saveProto(model, "initial_state.onnx"));
  bool constant_state = false;
  for (const auto& layer : imported.network.graph().layers)
    if (const auto* r = std::get_if<RNNDesc>(&layer.desc); r && !r->initial_h.empty())
      constant_state = r->initial_h.dim(1) == 1 && r->initial_h.data<float>()[0] == 0.5f;
  EXPECT_TRUE(constant_state);
  EXPECT_NO_THROW(Builder().build(imported.network));

  // Y_c of an LSTM: D x N x H from a second layer giving the cell states.
  onnx::ModelProto yc = loadProto(fixture("lstm_bi_l2_h16"));
  std::string yc_name;
  for (const auto& node : yc.graph().node())
    if (node.op_type() == "LSTM") {
      yc_name = node.output(2);
      yc.mutable_graph()->add_output()->set_name(yc_name);
      break;
    }
  const ImportedNetwork with_yc = importOnnx(saveProto(yc, "final_cell_state.onnx"));
  bool cell_layer = false;
  for (const auto& layer : with_yc.network.graph().layers)
    if (const auto* r = std::get_if<RNNDesc>(&layer.desc)) cell_layer |= r->output == RNNOutput::kCellState;
  EXPECT_TRUE(cell_layer);
  const Engine engine = Builder().build(with_yc.network);
  EXPECT_EQ(engine.tensorShape(yc_name), (Shape{2, kDynamic, 16}));
}

TEST(OnnxImport, UnknownActivationNamesItAndTheNode) {
  onnx::ModelProto model = loadProto(fixture("lstm_bi_l2_h16"));
  for (auto& node : *model.mutable_graph()->mutable_node())
    if (node.op_type() == "LSTM") {
      auto* a = node.add_attribute();
      a->set_name("activations");
      a->set_type(onnx::AttributeProto::STRINGS);
      for (const char* f : {"Sigmoid", "Swish", "Tanh", "Sigmoid", "Tanh", "Tanh"}) a->add_strings(f);
      break;
    }
  const std::string error = errorOf([&] { importOnnx(saveProto(model, "unknown_activation.onnx")); });
  EXPECT_NE(error.find("node '/rnns.0/rnn/LSTM' (LSTM): unknown activation 'Swish' (position 1)"), std::string::npos)
      << error;
}

TEST(OnnxImport, FinalHiddenStateIsTheLastValidFrame) {
  // Y_h of the second (unidirectional) GRU as an extra output: each utterance's frame length - 1 of Y.
  onnx::ModelProto model = loadProto(fixture("gru_uni_l2_h16_ctx3"));
  std::string y, yh;
  for (const auto& node : model.graph().node())
    if (node.op_type() == "GRU") y = node.output(0), yh = node.output(1);
  model.mutable_graph()->add_output()->set_name(yh);
  model.mutable_graph()->add_output()->set_name(y);
  const ImportedNetwork imported = importOnnx(saveProto(model, "final_state.onnx"));
  const WeightStore io = WeightStore::load(dataPath("onnx/gru_uni_l2_h16_ctx3/io.safetensors"));
  auto ctx = Builder().build(imported.network).createContext();
  auto out = ctx.run({{"features", io.get("features")}, {"lengths", io.get("lengths")}});
  const HostTensor& states = out.at(yh);
  const HostTensor& frames = out.at(y);  // T x N x H (the single direction squeezed by ds2rt's layout)
  ASSERT_EQ(states.shape(), (Shape{1, 3, 16}));
  const auto lengths = toVector(out.at("output_lengths"));
  for (int64_t b = 0; b < 3; ++b) {
    const int64_t last = static_cast<int64_t>(lengths[b]) - 1;
    for (int64_t h = 0; h < 16; ++h)
      EXPECT_EQ(states.data<float>()[b * 16 + h], frames.data<float>()[(last * 3 + b) * 16 + h]) << b << " " << h;
  }
}

}  // namespace
}  // namespace ds2rt::test
