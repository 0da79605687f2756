// The PaddleSpeech DeepSpeech2 importer: golden parity with Paddle's own output (fixtures made by
// tests/fixtures_src/make_paddle_fixtures.py), the .pdparams reader's arrays, and the errors for
// malformed, truncated and forbidden files.
#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

#include "ds2rt/builder.h"
#include "ds2rt/engine.h"
#include "ds2rt/importers.h"
#include "importers/paddle/pdparams.h"
#include "importers/pickle/unpickler.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::AllOf;
using testing::HasSubstr;
using namespace std::string_literals;

// The first `bins` feature bins of an N x 1 x D x T input.
HostTensor firstBins(const HostTensor& input, int64_t bins) {
  const int64_t n = input.dim(0), d = input.dim(2), t = input.dim(3);
  HostTensor out(DataType::kFloat32, {n, 1, bins, t});
  for (int64_t b = 0; b < n; ++b)
    for (int64_t f = 0; f < bins; ++f)
      for (int64_t s = 0; s < t; ++s)
        out.mutableData<float>()[(b * bins + f) * t + s] = input.data<float>()[(b * d + f) * t + s];
  return out;
}

class PaddleParity : public testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(PaddleParity, MatchesPaddleOnValidFrames) {
  const auto& [name, optimize] = GetParam();
  const ImportedNetwork imported = importNetwork(dataPath("paddle/" + name + "/model.pdparams"));
  const WeightStore io = WeightStore::load(dataPath("paddle/" + name + "/io.safetensors"));
  EXPECT_EQ(imported.format, "PaddleSpeech DeepSpeech2 (.pdparams)");
  EXPECT_FALSE(imported.spect_known);
  EXPECT_TRUE(imported.labels.empty());
  // The fixtures have 13 bins; the weights allow 11 to 14, all with the same output (the last
  // bins never reach a valid convolution output), and the importer picks 11.
  const int64_t bins = imported.network.shape(Tensor{0})[2];
  EXPECT_EQ(bins, 11);
  const Engine engine = Builder({.optimize = optimize}).build(imported.network);
  auto out = engine.createContext().run(
      {{"features", firstBins(io.get("input"), bins)}, {"lengths", io.get("input_lengths")}});
  const HostTensor& lengths = out.at("output_lengths");
  ASSERT_EQ(toVector(lengths), toVector(io.get("output_lengths")));
  ASSERT_EQ(out.at("probs").shape(), io.get("probs").shape());
  const double error = relativeL2(validFrames(out.at("probs"), lengths), validFrames(io.get("probs"), lengths));
  EXPECT_LT(error, 1e-4) << name;
  RecordProperty("relative_l2", cat(error));
  double padded = 0, valid = 0;  // frames past each output length are zeros
  for (float v : toVector(out.at("probs"))) padded += std::abs(v);
  for (float v : validFrames(out.at("probs"), lengths)) valid += std::abs(v);
  EXPECT_NEAR(padded, valid, 1e-3 * valid);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PaddleParity,
                         testing::Combine(testing::Values("offline_bigru", "online_lstm"), testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) ? "_optimized" : "_unoptimized");
                         });

TEST(PaddleImport, ArchitectureAndNotesComeFromTheParameters) {
  const ImportedNetwork bigru = importPaddleSpeech(dataPath("paddle/offline_bigru/model.pdparams"));
  EXPECT_EQ(bigru.architecture,
            "gru, 2 layers of 12, bidirectional (offline), layer norm, 1 fc layers (16), 7 labels, 11 feature bins");
  const std::string notes = testing::PrintToString(bigru.notes);
  EXPECT_THAT(notes, AllOf(HasSubstr("11 to 14"), HasSubstr("encoder.conv.out.0.weight")));
  EXPECT_THAT(notes, testing::Not(HasSubstr("cell_fw")));
  EXPECT_THAT(bigru.network.describe(), AllOf(HasSubstr("LayerNorm"), HasSubstr("RNN")));

  const ImportedNetwork lstm = importNetwork(dataPath("paddle/online_lstm/model.pdparams"));
  EXPECT_EQ(lstm.architecture,
            "lstm, 2 layers of 10, forward (online), layer norm, no fc layers, 6 labels, 11 feature bins");
  const std::vector<std::string> labels{"_", "a", "b", "c", "d", " "};
  EXPECT_EQ(importNetwork(dataPath("paddle/online_lstm/model.pdparams"), {.labels = labels}).labels, labels);
  EXPECT_THAT(errorOf([&] { importNetwork(dataPath("paddle/online_lstm/model.pdparams"), {.labels = {{"_", "a"}}}); }),
              AllOf(HasSubstr("2 labels given"), HasSubstr("6 outputs")));
  EXPECT_NO_THROW(importNetwork(dataPath("paddle/online_lstm/model.pdparams"), {.rnn_type = "lstm", .hidden_size = 10}));
  EXPECT_THAT(errorOf([&] { importNetwork(dataPath("paddle/online_lstm/model.pdparams"), {.rnn_type = "gru"}); }),
              AllOf(HasSubstr("rnn type gru"), HasSubstr("lstm, 2 layers of 10")));
  EXPECT_THAT(errorOf([&] { importNetwork(dataPath("paddle/online_lstm/model.pdparams"), {.bidirectional = true}); }),
              HasSubstr("a bidirectional model"));
}

TEST(PaddleImport, ModelYamlAndVocabularyBesideTheFileAreRead) {
  const std::string dir = scratch("paddle_with_config");
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(dataPath("paddle/online_lstm/model.pdparams"), dir + "/avg_1.pdparams");
  std::ofstream(dir + "/avg_1.yaml") << "# PaddleSpeech\nfeat_dim: 13  # bins\nrnn_layer_size: 10\n";
  std::ofstream(dir + "/vocab.txt") << "<blank>\n<unk>\na\nb\n<space>\n<eos>\n";
  const ImportedNetwork imported = importNetwork(dir + "/avg_1.pdparams");
  EXPECT_EQ(imported.network.shape(Tensor{0})[2], 13);
  EXPECT_EQ(imported.labels, (std::vector<std::string>{"<blank>", "<unk>", "a", "b", " ", "<eos>"}));
  const std::string notes = testing::PrintToString(imported.notes);
  EXPECT_THAT(notes, AllOf(HasSubstr("feat_dim of"), HasSubstr("avg_1.yaml"), HasSubstr("vocab.txt")));

  std::ofstream(dir + "/avg_1.yaml") << "feat_dim: 161\n";
  EXPECT_THAT(errorOf([&] { importNetwork(dir + "/avg_1.pdparams"); }),
              AllOf(HasSubstr("feat_dim 161"), HasSubstr("11 to 14")));
  std::ofstream(dir + "/avg_1.yaml") << "feat_dim: 12\n";
  std::ofstream(dir + "/vocab.txt") << "a\nb\n";
  const ImportedNetwork short_vocab = importNetwork(dir + "/avg_1.pdparams");
  EXPECT_EQ(short_vocab.network.shape(Tensor{0})[2], 12);
  EXPECT_TRUE(short_vocab.labels.empty());
  EXPECT_THAT(testing::PrintToString(short_vocab.notes), HasSubstr("2 tokens"));
}

TEST(PaddleImport, ImportModelPointsToImportNetwork) {
  EXPECT_THAT(errorOf([] { importModel(dataPath("paddle/online_lstm/model.pdparams")); }),
              AllOf(HasSubstr("PaddleSpeech"), HasSubstr("importNetwork")));
}

TEST(PaddleImport, ReaderRebuildsNumpyArraysExactly) {
  const WeightStore w = paddle::readPdparams(dataPath("paddle/arrays.pdparams"));
  EXPECT_EQ(w.get("f64_fortran").dtype(), DataType::kFloat64);
  EXPECT_EQ(w.get("f64_fortran").shape(), (Shape{2, 3}));
  EXPECT_EQ(toVector(w.get("f64_fortran")), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(toVector(w.get("f32_big_endian")), (std::vector<float>{1.5f, -2.0f, 3.25f}));
  EXPECT_EQ(w.get("i64").dtype(), DataType::kInt64);
  EXPECT_EQ(w.get("i64").data<int64_t>()[3], int64_t{1} << 40);
  EXPECT_EQ(toVector(w.get("f16")), (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(w.get("bool").dtype(), DataType::kBool);
  EXPECT_EQ(w.get("scalar").shape(), Shape{});
  EXPECT_EQ(w.get("scalar").data<int32_t>()[0], 7);
}

TEST(PaddleImport, ForbiddenGlobalsAreRefused) {
  EXPECT_THAT(errorOf([] { importNetwork(dataPath("paddle/forbidden.pdparams")); }),
              AllOf(HasSubstr("refusing to load"), HasSubstr("forbidden.pdparams"), HasSubstr("system")));
  // A PyTorch tensor-rebuilding global is not allowed in a .pdparams either (nor numpy's in a torch checkpoint).
  const std::string path = scratch("torch_global.pdparams");
  std::ofstream(path, std::ios::binary) << "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n."s;
  EXPECT_THAT(errorOf([&] { paddle::readPdparams(path); }),
              AllOf(HasSubstr("refusing to load"), HasSubstr("torch._utils._rebuild_tensor_v2")));
  const std::string numpy = "\x80\x02" "cnumpy\ndtype\n."s;
  pickle::Arena arena;
  EXPECT_THAT(errorOf([&] {
                pickle::unpickle({reinterpret_cast<const uint8_t*>(numpy.data()), numpy.size()}, arena, "model.pth");
              }),
              AllOf(HasSubstr("refusing to load 'model.pth'"), HasSubstr("numpy.dtype")));
}

TEST(PaddleImport, MalformedFilesGiveClearErrors) {
  EXPECT_THAT(errorOf([] { importNetwork(dataPath("paddle/malformed.pdparams")); }),
              AllOf(HasSubstr("malformed.pdparams"), HasSubstr("encoder.layernorm_list.0.weight"), HasSubstr("[9]"),
                    HasSubstr("[10]")));
  EXPECT_THAT(errorOf([] { importNetwork(dataPath("paddle/missing.pdparams")); }),
              AllOf(HasSubstr("missing.pdparams"), HasSubstr("missing parameter 'decoder.ctc_lo.weight'")));

  const std::string source = dataPath("paddle/online_lstm/model.pdparams");
  std::ifstream in(source, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string truncated = scratch("truncated.pdparams");
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_THAT(errorOf([&] { importNetwork(truncated); }), AllOf(HasSubstr("truncated.pdparams"), HasSubstr("truncated")));

  const std::string text = scratch("text.pdparams");
  std::ofstream(text) << "not a pickle\n";
  EXPECT_THAT(errorOf([&] { importNetwork(text); }),
              AllOf(HasSubstr("text.pdparams"), HasSubstr("not a Paddle parameter file")));

  const std::string list = scratch("list.pdparams");
  std::ofstream(list, std::ios::binary) << "\x80\x02]q\x00."s;
  EXPECT_THAT(errorOf([&] { importNetwork(list); }), AllOf(HasSubstr("list.pdparams"), HasSubstr("not the dict")));

  const std::string other = scratch("other.pdparams");
  std::filesystem::copy_file(dataPath("paddle/arrays.pdparams"), other);
  EXPECT_THAT(errorOf([&] { importNetwork(other); }), AllOf(HasSubstr("other.pdparams"), HasSubstr("not a PaddleSpeech")));
}

}  // namespace
}  // namespace ds2rt::test
