// TensorRT .wts: both flavours read alike, write -> read is bit-exact and byte-identical to what
// gen_wts.py / dumpTFWts.py write (fixtures by tests/fixtures_src/make_wts_fixtures.py), a parity
// model written as .wts imports and matches PyTorch, malformed files give clear errors, and the
// TF1 LSTMCell kernel conversion reproduces a TF1 LSTM step.
#include <gmock/gmock.h>

#include <bit>
#include <fstream>
#include <sstream>

#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Bit-exact equality of two stores (as float32 values, names and element counts).
void expectSameBits(const WeightStore& a, const WeightStore& b) {
  ASSERT_EQ(a.names(), b.names());
  for (const std::string& name : a.names()) {
    const HostTensor x = a.get(name).toFloat32(), y = b.get(name).toFloat32();
    ASSERT_EQ(x.size(), y.size()) << name;
    for (int64_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(x.data<float>()[i]), std::bit_cast<uint32_t>(y.data<float>()[i])) << name << "[" << i << "]";
  }
}

std::string errorOf(const std::string& path) {
  try {
    readWts(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Wts, BothFlavoursReadIdentically) {
  WtsFlavor py{}, trt{};
  const WeightStore a = readWts(dataPath("wts/subset_pytorch.wts"), &py);
  const WeightStore b = readWts(dataPath("wts/subset_tensorrt.wts"), &trt);
  EXPECT_EQ(py, WtsFlavor::kPyTorch);
  EXPECT_EQ(trt, WtsFlavor::kTensorRT);
  EXPECT_EQ(a.names().size(), 28u);
  expectSameBits(a, b);
  // ... and equal the parity model they were made from.
  const WeightStore model = DeepSpeech2Model::load(dataPath("parity/rnn_uni_l3_h16_ctx4/model.safetensors")).weights();
  for (const std::string& name : a.names()) {
    const HostTensor x = a.get(name), y = model.get(name).toFloat32();
    ASSERT_EQ(x.size(), y.size()) << name;
    for (int64_t i = 0; i < x.size(); ++i) ASSERT_EQ(x.data<float>()[i], y.data<float>()[i]) << name;
  }
}

TEST(Wts, WriterMatchesGenWtsAndDumpTFWtsByteForByte) {
  const WeightStore store = readWts(dataPath("wts/subset_pytorch.wts"));
  const std::string py = scratch("subset_pytorch.wts"), trt = scratch("subset_tensorrt.wts");
  writeWts(store, py, WtsFlavor::kPyTorch);
  writeWts(store, trt, WtsFlavor::kTensorRT);
  EXPECT_EQ(slurp(py), slurp(dataPath("wts/subset_pytorch.wts")));
  EXPECT_EQ(slurp(trt), slurp(dataPath("wts/subset_tensorrt.wts")));
}

TEST(Wts, WriteReadRoundTripIsBitExact) {
  WeightStore store;
  store.set("x", HostTensor::fromFloats({6}, {1.0f, -0.0f, 1e-45f, std::numeric_limits<float>::max(),
                                              std::numeric_limits<float>::infinity(), 0.1f}));
  store.set("empty", HostTensor(DataType::kFloat32, {0}));
  store.set("rnns.0.rnn.weight_hh_l0", HostTensor::fromFloats({2, 2}, {0.25f, -3.5f, 7e-20f, 123456.789f}));
  for (const WtsFlavor flavor : {WtsFlavor::kPyTorch, WtsFlavor::kTensorRT}) {
    const std::string path = scratch(flavor == WtsFlavor::kPyTorch ? "rt_py.wts" : "rt_trt.wts");
    writeWts(store, path, flavor);
    WtsFlavor read{};
    const WeightStore back = readWts(path, &read);
    EXPECT_EQ(read, flavor);
    expectSameBits(store, back);
  }
}

TEST(Wts, ReadsFloat16) {
  const WeightStore s = readWts(dataPath("wts/half_tensorrt.wts"));
  EXPECT_EQ(s.get("a").dtype(), DataType::kFloat16);
  EXPECT_EQ(toVector(s.get("a").toFloat32()), (std::vector<float>{1.0f, -2.0f, 0.5f, 0.0f}));
  EXPECT_EQ(toVector(s.get("b")), toVector(s.get("a").toFloat32()));
}

TEST(Wts, MalformedFilesNameFileLineAndTensor) {
  using testing::AllOf;
  using testing::HasSubstr;
  EXPECT_THAT(errorOf(dataPath("wts/bad_count.wts")), AllOf(HasSubstr("bad_count.wts' line 1"), HasSubstr("tensor count")));
  EXPECT_THAT(errorOf(dataPath("wts/too_few.wts")), AllOf(HasSubstr("too_few.wts"), HasSubstr("declares 3 tensors but the file holds 2")));
  EXPECT_THAT(errorOf(dataPath("wts/too_many.wts")),
              AllOf(HasSubstr("too_many.wts' line 3"), HasSubstr("tensor 'b'"), HasSubstr("beyond the declared count of 1")));
  EXPECT_THAT(errorOf(dataPath("wts/value_count.wts")),
              AllOf(HasSubstr("value_count.wts' line 3, tensor 'b'"), HasSubstr("declares 3 values but holds 2")));
  EXPECT_THAT(errorOf(dataPath("wts/non_hex.wts")),
              AllOf(HasSubstr("non_hex.wts' line 3, tensor 'b'"), HasSubstr("value 1 'zz000000' is not a float32 hex word")));
  EXPECT_THAT(errorOf(dataPath("wts/unknown_type.wts")),
              AllOf(HasSubstr("unknown_type.wts' line 3, tensor 'b'"), HasSubstr("unknown type 7")));
  EXPECT_THAT(errorOf(dataPath("wts/missing.wts")), HasSubstr("cannot open"));
}

// The parity fixtures, written as .wts by the writer proven identical to gen_wts.py above, import
// through importModel and match PyTorch's outputs (the approach of parity_test.cpp).
class WtsParity : public testing::TestWithParam<std::tuple<std::string, WtsFlavor>> {};

TEST_P(WtsParity, ImportMatchesPyTorch) {
  const auto& [name, flavor] = GetParam();
  const DeepSpeech2Model original = DeepSpeech2Model::load(dataPath("parity/" + name + "/model.safetensors"));
  const WeightStore io = WeightStore::load(dataPath("parity/" + name + "/io.safetensors"));
  const std::string path = scratch(name + (flavor == WtsFlavor::kPyTorch ? "_py" : "_trt") + ".model");  // no .wts extension: content detection
  writeWts(original.weights(), path, flavor);
  ImportOptions options;
  options.labels = original.config().labels;  // not in a .wts (29 classes would give these anyway)
  const ImportedModel imported = importModel(path, options);
  EXPECT_THAT(imported.format, testing::HasSubstr(".wts"));
  const DeepSpeech2Config& got = imported.model.config();
  const DeepSpeech2Config& want = original.config();
  EXPECT_EQ(got.rnn_type, want.rnn_type);
  EXPECT_EQ(got.hidden_size, want.hidden_size);
  EXPECT_EQ(got.hidden_layers, want.hidden_layers);
  EXPECT_EQ(got.bidirectional, want.bidirectional);
  if (!want.bidirectional) EXPECT_EQ(got.lookahead_context, want.lookahead_context);
  EXPECT_EQ(got.spect.sample_rate, want.spect.sample_rate);

  const Engine engine = Builder().build(imported.model.createNetwork());
  auto ctx = engine.createContext();
  auto out = ctx.run({{"features", io.get("input")}, {"lengths", io.get("input_lengths")}});
  const HostTensor& lengths = out.at("output_lengths");
  ASSERT_EQ(toVector(lengths), toVector(io.get("output_lengths")));
  const HostTensor& probs = out.at("probs");
  const HostTensor& expected = io.get("probs");
  ASSERT_EQ(probs.shape(), expected.shape());
  std::vector<float> a, b;
  const int64_t n = probs.dim(0), frames = probs.dim(1), classes = probs.dim(2);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t f = 0; f < lengths.data<int32_t>()[i]; ++f)
      for (int64_t c = 0; c < classes; ++c) {
        a.push_back(probs.data<float>()[(i * frames + f) * classes + c]);
        b.push_back(expected.data<float>()[(i * frames + f) * classes + c]);
      }
  EXPECT_LT(relativeL2(a, b), 1e-4) << name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, WtsParity,
                         testing::Combine(testing::Values("lstm_bi_l2_h32", "gru_bi_l3_h24", "rnn_uni_l3_h16_ctx4",
                                                          "lstm_uni_l2_h16_ctx3"),
                                          testing::Values(WtsFlavor::kPyTorch, WtsFlavor::kTensorRT)),
                         [](const auto& info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) == WtsFlavor::kPyTorch ? "_pytorch" : "_tensorrt");
                         });

TEST(Wts, ShapeInferenceErrorsNameTheTensor) {
  WeightStore s;
  s.set("conv.seq_module.0.weight", HostTensor(DataType::kFloat32, {100}));
  const std::string path = scratch("bad_conv.wts");
  writeWts(s, path);
  try {
    importModel(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("'conv.seq_module.0.weight' holds 100 values"));
  }
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// One TF1 LSTMCell step from the kernel as TF1 applies it: [x, h] * kernel + bias, split i, j, f, o.
void tf1Step(const std::vector<float>& kernel, const std::vector<float>& bias, float forget_bias, int64_t in, int64_t hid,
             const std::vector<float>& x, std::vector<float>& h, std::vector<float>& c) {
  std::vector<float> xh(x);
  xh.insert(xh.end(), h.begin(), h.end());
  std::vector<float> z(bias);
  for (int64_t col = 0; col < 4 * hid; ++col)
    for (int64_t row = 0; row < in + hid; ++row) z[col] += xh[row] * kernel[row * 4 * hid + col];
  for (int64_t k = 0; k < hid; ++k) {
    const float i = z[k], j = z[hid + k], f = z[2 * hid + k], o = z[3 * hid + k];
    c[k] = sigmoid(f + forget_bias) * c[k] + sigmoid(i) * std::tanh(j);
    h[k] = sigmoid(o) * std::tanh(c[k]);
  }
}

// One step in the canonical layout (PyTorch LSTM: gates i, f, g, o = W x + Wb + R h + Rb).
void canonicalStep(const CanonicalLSTMWeights& w, int64_t in, int64_t hid, const std::vector<float>& x,
                   std::vector<float>& h, std::vector<float>& c) {
  std::vector<float> z(4 * hid);
  for (int64_t r = 0; r < 4 * hid; ++r) {
    z[r] = w.Wb.data<float>()[r] + w.Rb.data<float>()[r];
    for (int64_t k = 0; k < in; ++k) z[r] += w.W.data<float>()[r * in + k] * x[k];
    for (int64_t k = 0; k < hid; ++k) z[r] += w.R.data<float>()[r * hid + k] * h[k];
  }
  for (int64_t k = 0; k < hid; ++k) {
    const float i = z[k], f = z[hid + k], g = z[2 * hid + k], o = z[3 * hid + k];
    c[k] = sigmoid(f) * c[k] + sigmoid(i) * std::tanh(g);
    h[k] = sigmoid(o) * std::tanh(c[k]);
  }
}

TEST(Wts, Tf1LstmCellConversionHandComputed) {
  // I = 1, H = 1: kernel rows [x; h], columns i, j, f, o.
  const HostTensor kernel = HostTensor::fromFloats({2, 4}, {0.1f, 0.2f, 0.3f, 0.4f,  //
                                                            0.5f, 0.6f, 0.7f, 0.8f});
  const HostTensor bias = HostTensor::fromFloats({4}, {0.01f, 0.02f, 0.03f, 0.04f});
  const CanonicalLSTMWeights w = tf1LstmCellToCanonical(kernel, bias, 1, 1.0f);
  EXPECT_EQ(toVector(w.W), (std::vector<float>{0.1f, 0.3f, 0.2f, 0.4f}));  // i, f, g(=j), o
  EXPECT_EQ(toVector(w.R), (std::vector<float>{0.5f, 0.7f, 0.6f, 0.8f}));
  EXPECT_EQ(toVector(w.Wb), (std::vector<float>{0.01f, 0.03f + 1.0f, 0.02f, 0.04f}));
  EXPECT_EQ(toVector(w.Rb), (std::vector<float>(4, 0.0f)));
  // x = 2, h = -1, c = 0.5, by hand: i = 0.2-0.5+0.01 = -0.29, j = 0.4-0.6+0.02 = -0.18,
  // f = 0.6-0.7+0.03 = -0.07 (+1 forget_bias), o = 0.8-0.8+0.04 = 0.04.
  const float c_expected = sigmoid(0.93f) * 0.5f + sigmoid(-0.29f) * std::tanh(-0.18f);
  const float h_expected = sigmoid(0.04f) * std::tanh(c_expected);
  std::vector<float> h{-1.0f}, c{0.5f};
  canonicalStep(w, 1, 1, {2.0f}, h, c);
  EXPECT_NEAR(c[0], c_expected, 1e-6);
  EXPECT_NEAR(h[0], h_expected, 1e-6);
}

TEST(Wts, Tf1LstmCellConversionMatchesTf1Steps) {
  const int64_t in = 5, hid = 3;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> kernel((in + hid) * 4 * hid), bias(4 * hid);
  for (float& v : kernel) v = u(rng);
  for (float& v : bias) v = u(rng);
  const CanonicalLSTMWeights w =
      tf1LstmCellToCanonical(HostTensor::fromFloats({in + hid, 4 * hid}, kernel), HostTensor::fromFloats({4 * hid}, bias), in, 1.0f);
  std::vector<float> h1(hid, 0.1f), c1(hid, -0.2f), h2 = h1, c2 = c1;
  for (int step = 0; step < 4; ++step) {
    std::vector<float> x(in);
    for (float& v : x) v = u(rng);
    tf1Step(kernel, bias, 1.0f, in, hid, x, h1, c1);
    canonicalStep(w, in, hid, x, h2, c2);
    for (int64_t k = 0; k < hid; ++k) {
      EXPECT_NEAR(h1[k], h2[k], 1e-5);
      EXPECT_NEAR(c1[k], c2[k], 1e-5);
    }
  }
  EXPECT_THROW(tf1LstmCellToCanonical(HostTensor::fromFloats({in + hid, 4 * hid}, kernel), HostTensor::fromFloats({4 * hid}, bias), 4, 1.0f),
               Error);
}

// A .wts with state_dict names but the recurrent gates in another order (a declared source
// layout) imports to the same weights as the canonical one.
TEST(Wts, DeclaredGateLayoutReordersRecurrentTensors) {
  const DeepSpeech2Model original = DeepSpeech2Model::load(dataPath("parity/lstm_uni_l2_h16_ctx3/model.safetensors"));
  WeightStore onnx;
  for (const auto& [name, t] : original.weights().tensors())
    onnx.set(name, name.find(".rnn.") != std::string::npos ? fromCanonicalGates(t.toFloat32(), RNNCell::kLSTM, GateLayout::kONNX) : t);
  const std::string path = scratch("onnx_gates.wts");
  writeWts(onnx, path);
  ImportOptions options;
  options.gate_layout = GateLayout::kONNX;
  const ImportedModel imported = importModel(path, options);
  for (const std::string name : {"rnns.0.rnn.weight_ih_l0", "rnns.1.rnn.bias_hh_l0"})
    EXPECT_EQ(toVector(imported.model.weights().get(name).toFloat32()), toVector(original.weights().get(name).toFloat32())) << name;
}

}  // namespace
}  // namespace ds2rt::test
