// The ONNX exporter: every parity fixture model exports to a file that libonnx parses, checks and
// shape-infers in strict mode, with the documented inputs, outputs, opset and metadata, the
// state_dict names and values, and recurrent weights in ONNX's gate order. Running the file with
// ONNX Runtime against ds2rt and PyTorch is tests/python/test_onnx_export.py.
#include <gmock/gmock.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "ds2rt/exporters.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

const std::vector<std::string> kFixtures = {"gru_bi_l3_h24",  "gru_uni_l1_h24_ctx2", "lstm_bi_l2_h32",
                                            "lstm_uni_l2_h16_ctx3", "rnn_bi_l1_h16",   "rnn_uni_l3_h16_ctx4"};

onnx::ModelProto readModel(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto model;
  EXPECT_TRUE(in.good()) << path;
  EXPECT_TRUE(model.ParseFromIstream(&in)) << path << " does not parse as onnx::ModelProto";
  return model;
}

const onnx::TensorProto& initializer(const onnx::ModelProto& model, const std::string& name) {
  for (const onnx::TensorProto& t : model.graph().initializer())
    if (t.name() == name) return t;
  throw Error("no initializer '" + name + "'");
}

std::vector<float> values(const onnx::TensorProto& t) {
  EXPECT_EQ(t.data_type(), onnx::TensorProto::FLOAT) << t.name();
  const std::string& raw = t.raw_data();
  std::vector<float> v(raw.size() / sizeof(float));
  std::memcpy(v.data(), raw.data(), raw.size());
  return v;
}

std::vector<int64_t> dims(const onnx::TensorProto& t) { return {t.dims().begin(), t.dims().end()}; }

// "N" for a named dynamic dimension, the number otherwise.
std::vector<std::string> shapeOf(const onnx::ValueInfoProto& value) {
  std::vector<std::string> out;
  for (const auto& d : value.type().tensor_type().shape().dim())
    out.push_back(d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
  return out;
}

const onnx::AttributeProto* attribute(const onnx::NodeProto& node, const std::string& name) {
  for (const onnx::AttributeProto& a : node.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

class OnnxExportFixture : public testing::TestWithParam<std::string> {};

TEST_P(OnnxExportFixture, WritesAValidStandardModel) {
  const DeepSpeech2Model model = DeepSpeech2Model::load(dataPath("parity/" + GetParam() + "/model.safetensors"));
  const DeepSpeech2Config& c = model.config();
  const std::string path = scratch(GetParam() + ".onnx");
  exportOnnx(model, path);
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  onnx::ModelProto proto = readModel(path);

  EXPECT_NO_THROW(onnx::checker::check_model(proto));
  onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(),
                                     onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1));
  EXPECT_EQ(proto.ir_version(), onnx::IR_VERSION);
  ASSERT_EQ(proto.opset_import_size(), 1);
  EXPECT_EQ(proto.opset_import(0).domain(), "");
  EXPECT_EQ(proto.opset_import(0).version(), 17);
  ASSERT_EQ(proto.metadata_props_size(), 1);
  EXPECT_EQ(proto.metadata_props(0).key(), "ds2rt.config");
  EXPECT_EQ(DeepSpeech2Config::fromJson(proto.metadata_props(0).value()).toJson(), c.toJson());

  const onnx::GraphProto& g = proto.graph();
  ASSERT_EQ(g.input_size(), 2);
  EXPECT_EQ(g.input(0).name(), "features");
  EXPECT_EQ(g.input(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  EXPECT_EQ(shapeOf(g.input(0)), (std::vector<std::string>{"N", "1", std::to_string(c.spect.frequencyBins()), "T"}));
  EXPECT_EQ(g.input(1).name(), "lengths");
  EXPECT_EQ(g.input(1).type().tensor_type().elem_type(), onnx::TensorProto::INT32);
  EXPECT_EQ(shapeOf(g.input(1)), std::vector<std::string>{"N"});
  ASSERT_EQ(g.output_size(), 2);
  EXPECT_EQ(g.output(0).name(), "probs");
  EXPECT_EQ(shapeOf(g.output(0)), (std::vector<std::string>{"N", "T_out", std::to_string(c.labels.size())}));
  EXPECT_EQ(g.output(1).name(), "output_lengths");
  EXPECT_EQ(g.output(1).type().tensor_type().elem_type(), onnx::TensorProto::INT32);

  // One-to-one tensors keep their state_dict names and values.
  for (const std::string name : {"conv.seq_module.0.weight", "conv.seq_module.4.running_var", "fc.0.module.1.weight"})
    EXPECT_EQ(values(initializer(proto, name)), toVector(model.weights().get(name))) << name;
  EXPECT_EQ(dims(initializer(proto, "conv.seq_module.3.weight")), (std::vector<int64_t>{32, 32, 21, 11}));
  if (!c.bidirectional)
    EXPECT_EQ(values(initializer(proto, "lookahead.0.conv.weight")), toVector(model.weights().get("lookahead.0.conv.weight")));

  // Recurrent weights: directions stacked, gates in ONNX order, B = [Wb, Rb].
  const int64_t dirs = c.bidirectional ? 2 : 1, h = c.hidden_size, gh = gateCount(c.cell()) * h;
  const std::string last = "rnns." + std::to_string(c.hidden_layers - 1) + ".rnn";
  EXPECT_EQ(dims(initializer(proto, "rnns.0.rnn.W")), (std::vector<int64_t>{dirs, gh, c.rnnInputSize()}));
  EXPECT_EQ(dims(initializer(proto, last + ".R")), (std::vector<int64_t>{dirs, gh, h}));
  EXPECT_EQ(dims(initializer(proto, last + ".B")), (std::vector<int64_t>{dirs, 2 * gh}));
  const std::string s = c.bidirectional ? "_l0_reverse" : "_l0";
  const std::vector<float> r = values(initializer(proto, last + ".R"));
  const std::vector<float> expected_r =
      toVector(fromCanonicalGates(model.weights().get(last + ".weight_hh" + s), c.cell(), GateLayout::kONNX));
  EXPECT_EQ(std::vector<float>(r.end() - gh * h, r.end()), expected_r);

  // The operators: standard ones only, the recurrent op of the model's cell once per layer.
  const std::string rnn_op = c.rnn_type == "lstm" ? "LSTM" : c.rnn_type == "gru" ? "GRU" : "RNN";
  int rnn_nodes = 0;
  std::set<std::string> ops;
  for (const onnx::NodeProto& node : g.node()) {
    ops.insert(node.op_type());
    if (node.op_type() != rnn_op) continue;
    ++rnn_nodes;
    EXPECT_EQ(node.input_size(), 5) << "X, W, R, B, sequence_lens";
    EXPECT_EQ(attribute(node, "direction")->s(), c.bidirectional ? "bidirectional" : "forward");
    EXPECT_EQ(attribute(node, "hidden_size")->i(), h);
    if (rnn_op == "GRU") EXPECT_EQ(attribute(node, "linear_before_reset")->i(), 1);
  }
  EXPECT_EQ(rnn_nodes, c.hidden_layers);
  EXPECT_TRUE(ops.count("Softmax"));
  EXPECT_EQ(ops.count("Conv"), 1u);
  EXPECT_EQ(ops.count("ReduceSum"), c.bidirectional ? 1u : 0u);
}

INSTANTIATE_TEST_SUITE_P(Parity, OnnxExportFixture, testing::ValuesIn(kFixtures),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(OnnxExport, Options) {
  const DeepSpeech2Model model = DeepSpeech2Model::load(dataPath("parity/gru_uni_l1_h24_ctx2/model.safetensors"));
  const std::string path = scratch("options.onnx");
  exportOnnx(model, path, {.opset = 13, .int64_lengths = true, .log_softmax = true});
  onnx::ModelProto proto = readModel(path);
  EXPECT_NO_THROW(onnx::checker::check_model(proto));
  onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(), onnx::ShapeInferenceOptions(true, 1));
  EXPECT_EQ(proto.opset_import(0).version(), 13);
  const onnx::GraphProto& g = proto.graph();
  EXPECT_EQ(g.input(1).type().tensor_type().elem_type(), onnx::TensorProto::INT64);
  EXPECT_EQ(g.output(0).name(), "log_probs");
  EXPECT_EQ(g.output(1).type().tensor_type().elem_type(), onnx::TensorProto::INT64);
  bool log_softmax = false;
  for (const onnx::NodeProto& node : g.node()) log_softmax |= node.op_type() == "LogSoftmax";
  EXPECT_TRUE(log_softmax);
}

TEST(OnnxExport, Errors) {
  const DeepSpeech2Model model = DeepSpeech2Model::load(dataPath("parity/rnn_bi_l1_h16/model.safetensors"));
  const std::string path = scratch("errors.onnx");
  for (int opset : {12, 18}) {
    const std::string message = errorOf([&] { exportOnnx(model, path, {.opset = opset}); });
    EXPECT_THAT(message, HasSubstr("opset " + std::to_string(opset) + " is not supported"));
    EXPECT_THAT(message, HasSubstr("13 to 17"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));

  const std::string unwritable = scratch("no-such-folder") + "/model.onnx";
  EXPECT_THAT(errorOf([&] { exportOnnx(model, unwritable); }),
              testing::AllOf(HasSubstr("ONNX export to '" + unwritable + "'"), HasSubstr("cannot create")));
  EXPECT_FALSE(std::filesystem::exists(unwritable + ".partial"));

  // Weights that disagree with the configuration are refused before anything is written.
  WeightStore weights = model.weights();
  weights.set("rnns.0.rnn.weight_hh_l0", HostTensor::fromFloats({16, 15}, std::vector<float>(16 * 15)));
  const DeepSpeech2Model broken(model.config(), weights);
  EXPECT_THAT(errorOf([&] { exportOnnx(broken, path); }), HasSubstr("rnns.0.rnn.weight_hh_l0"));
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace ds2rt::test
