// Keras importer: models saved by Keras 3 itself (.keras and legacy .h5, fixtures by
// tests/fixtures_src/make_keras_fixtures.py) run as one padded batch of mixed lengths and match,
// utterance by utterance, what Keras gives for each utterance alone; malformed files give clear errors.
#include <gmock/gmock.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>

#include "ds2rt/builder.h"
#include "ds2rt/importers.h"
#include "importers/keras/hdf5_file.h"
#include "importers/keras/model_config.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using ::testing::HasSubstr;

struct Result {
  std::vector<double> errors;  // relative L2 per utterance
  std::vector<int32_t> lengths, expected_lengths;
};

Result runAgainstKeras(const Engine& engine, const std::string& io_name) {
  const WeightStore io = WeightStore::load(dataPath("keras/" + io_name));
  ExecutionContext context = engine.createContext();
  const auto out = context.run({{"features", io.get("features")}, {"lengths", io.get("lengths")}});
  const HostTensor& probs = out.at("probs");
  const HostTensor& lengths = out.at("output_lengths");
  Result r;
  const HostTensor expected = io.get("output_lengths");
  for (int64_t b = 0; b < expected.size(); ++b) {
    r.lengths.push_back(lengths.data<int32_t>()[b]);
    r.expected_lengths.push_back(expected.data<int32_t>()[b]);
    const HostTensor ref = io.get("probs." + std::to_string(b));
    const int64_t n = std::min<int64_t>(ref.size(), lengths.data<int32_t>()[b] * probs.dim(2));
    r.errors.push_back(relativeL2(probs.data<float>() + b * probs.dim(1) * probs.dim(2), ref.data<float>(),
                                  static_cast<size_t>(n)));
  }
  return r;
}

void expectParity(const std::string& model, const std::string& io_name) {
  SCOPED_TRACE(model);
  const ImportedNetwork imported = importNetwork(dataPath("keras/" + model));
  const Engine engine = Builder().build(imported.network);
  const Result r = runAgainstKeras(engine, io_name);
  EXPECT_EQ(r.lengths, r.expected_lengths);
  for (size_t b = 0; b < r.errors.size(); ++b) EXPECT_LT(r.errors[b], 1e-4) << "utterance " << b;
}

TEST(KerasImport, BiGruConcatSameConvsKeras3) { expectParity("bigru_concat.keras", "bigru_concat.io.safetensors"); }
TEST(KerasImport, BiLstmSumValidConvLegacyH5) { expectParity("bilstm_sum_valid.h5", "bilstm_sum_valid.io.safetensors"); }
TEST(KerasImport, Keras2LegacyH5) { expectParity("keras2_bigru_concat.h5", "keras2_bigru_concat.io.safetensors"); }
TEST(KerasImport, SequentialGruNoResetAfterAndSimpleRnn) { expectParity("gru_uni.keras", "gru_uni.io.safetensors"); }

TEST(KerasImport, DescribesTheNetwork) {
  const std::vector<std::string> labels{"_", "a", "b", "c", "d", "e", "f", " "};
  const ImportedNetwork imported = importNetwork(dataPath("keras/bigru_concat.keras"), {.labels = labels});
  EXPECT_EQ(imported.format, "Keras 3 .keras archive");
  EXPECT_THAT(imported.architecture, HasSubstr("2 Bidirectional(GRU)"));
  EXPECT_THAT(imported.architecture, HasSubstr("16 bins -> 8 outputs"));
  EXPECT_EQ(imported.labels, labels);
  EXPECT_FALSE(imported.spect_known);
}

// TensorFlow pads an odd length one frame earlier through the stride-2 'same' convolution than an
// even one; the SamePaddingShift layer reproduces that, so odd lengths (here in a batch with an even
// padded length) match too.
TEST(KerasImport, OddLengthsThroughStridedSameConv) {
  const ImportedNetwork imported = importNetwork(dataPath("keras/bigru_concat.keras"));
  EXPECT_TRUE(imported.notes.empty());
  const Engine engine = Builder().build(imported.network);
  const Result r = runAgainstKeras(engine, "bigru_concat.odd.io.safetensors");
  EXPECT_EQ(r.lengths, r.expected_lengths);
  for (size_t b = 0; b < r.errors.size(); ++b) EXPECT_LT(r.errors[b], 1e-4) << "utterance " << b;
}

TEST(KerasImport, UnevenPaddingAndTheShiftSurviveThePlanFile) {
  const Engine built = Builder().build(importNetwork(dataPath("keras/bigru_concat.keras")).network);
  const Engine loaded = Engine::deserialize(built.serialize());
  for (const char* io : {"bigru_concat.io.safetensors", "bigru_concat.odd.io.safetensors"}) {
    const Result r = runAgainstKeras(loaded, io);
    EXPECT_EQ(r.lengths, r.expected_lengths) << io;
    for (double e : r.errors) EXPECT_LT(e, 1e-4) << io;
  }
}

// The shift each length needs: TensorFlow's begin padding minus the convolution's, (k - s) / 2.
TEST(SamePaddingShift, ShiftPerLength) {
  const SamePaddingShiftDesc k11s2{.kernel = 11, .stride = 2};  // keras.io's DeepSpeech2 convolution
  EXPECT_EQ(k11s2.beginPadding(), 4);
  EXPECT_EQ(k11s2.shift(40), 0);
  EXPECT_EQ(k11s2.shift(39), 1);
  EXPECT_EQ(k11s2.maxShift(), 1);
  const SamePaddingShiftDesc k5s3{.kernel = 5, .stride = 3};
  for (int64_t length = 1; length < 30; ++length) {  // against TensorFlow's formula
    const int64_t total = std::max<int64_t>(((length + 2) / 3 - 1) * 3 + 5 - length, 0);
    EXPECT_EQ(k5s3.beginPadding() + k5s3.shift(length), total / 2) << length;
    EXPECT_LE(k5s3.shift(length), k5s3.maxShift());
  }
  EXPECT_EQ((SamePaddingShiftDesc{.kernel = 7, .stride = 1}.maxShift()), 0);
}

TEST(SamePaddingShift, RefusesKernelOrStrideBelowOne) {
  for (const auto& [kernel, stride] : {std::pair{0, 2}, std::pair{11, 0}, std::pair{-1, 1}}) {
    NetworkDefinition network;
    const Tensor image = network.addImageInput("image", 1, 4);
    const Tensor lengths = network.addLengthsInput("lengths");
    EXPECT_THAT(errorOf([&] { network.addSamePaddingShift("shift", image, lengths, {.kernel = kernel, .stride = stride}); }),
                HasSubstr("layer 'shift': kernel and stride must be at least 1, got " + std::to_string(kernel) +
                          " and " + std::to_string(stride)))
        << kernel << " " << stride;
  }
}

TEST(KerasImport, LabelsMustMatchTheClasses) {
  EXPECT_THAT(errorOf([] { importNetwork(dataPath("keras/bigru_concat.keras"), {.labels = std::vector<std::string>{"_", "a"}}); }),
              HasSubstr("2 labels given, but the model outputs 8 classes"));
}

// The final softmax becomes a log-softmax on request, as for DeepSpeech2 models (ds2rt run --log-probs).
TEST(KerasImport, LogSoftmaxOnRequest) {
  const ImportedNetwork imported = importNetwork(dataPath("keras/gru_uni.keras"), {}, {.log_softmax = true});
  const WeightStore io = WeightStore::load(dataPath("keras/gru_uni.io.safetensors"));
  ExecutionContext context = Builder().build(imported.network).createContext();
  const auto out = context.run({{"features", io.get("features")}, {"lengths", io.get("lengths")}});
  ASSERT_TRUE(out.count("log_probs"));
  const HostTensor& log_probs = out.at("log_probs");
  const HostTensor ref = io.get("probs.1");  // the full-length utterance
  std::vector<float> probs(static_cast<size_t>(ref.size()));
  for (size_t i = 0; i < probs.size(); ++i) probs[i] = std::exp(log_probs.data<float>()[log_probs.dim(1) * log_probs.dim(2) + i]);
  EXPECT_LT(relativeL2(probs.data(), ref.data<float>(), probs.size()), 1e-4);
}

TEST(KerasImport, ImportModelSendsKerasToImportNetwork) {
  EXPECT_THAT(errorOf([] { importModel(dataPath("keras/gru_uni.keras")); }), HasSubstr("importNetwork"));
}

TEST(KerasImport, UnsupportedLayersAreAllListed) {
  const std::string e = errorOf([] { importNetwork(dataPath("keras/unknown_layer.keras")); });
  EXPECT_THAT(e, HasSubstr("unknown_layer.keras"));
  EXPECT_THAT(e, HasSubstr("LayerNormalization 'norm'"));
  EXPECT_THAT(e, HasSubstr("Conv1D 'conv1d'"));
}

TEST(KerasImport, SettingsWithoutAnExactMappingAreRefused) {
  std::string e = errorOf([] { importNetwork(dataPath("keras/go_backwards.keras")); });
  EXPECT_THAT(e, HasSubstr("GRU layer 'gru"));
  EXPECT_THAT(e, HasSubstr("go_backwards outside Bidirectional returns the sequence reversed in time"));
  e = errorOf([] { importNetwork(dataPath("keras/elu_dense.keras")); });
  EXPECT_THAT(e, HasSubstr("Dense layer 'dense"));
  EXPECT_THAT(e, HasSubstr("activation 'elu' is not supported"));
}

// Each import forks its own HDF5 reader process, from whichever thread imports.
TEST(KerasImport, ImportsFromSeveralThreadsAtOnce) {
#if defined(__SANITIZE_ADDRESS__)
  // Not a ds2rt fault: GCC 12's and clang 14's ASan allocators do not lock around fork, so a fork
  // while another thread allocates can leave the child deadlocked (src/core/isolated_call.h).
  GTEST_SKIP() << "ASan's allocator is not fork-safe; this test runs in the plain build";
#elif defined(__SANITIZE_THREAD__)
  // The same with GCC 12's TSan: a hung reader child (2 of 3 runs, 2026-12-06) waited in
  // SizeClassAllocator64::GetFromAllocator for a mutex of TSan's allocator that another thread of
  // the parent held at the fork (gdb, from H5MM_realloc). glibc's malloc is fork-safe.
  GTEST_SKIP() << "TSan's allocator is not fork-safe; this test runs in the plain build";
#endif
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      const ImportedNetwork n = importNetwork(dataPath(i % 2 ? "keras/bilstm_sum_valid.h5" : "keras/bigru_concat.keras"));
      if (n.network.layerCount() > 0) ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 4);
}

TEST(KerasImport, H5WithoutWeights) {
  EXPECT_THAT(errorOf([] { importNetwork(dataPath("keras/no_weights.h5")); }), HasSubstr("no model_weights group"));
}

TEST(KerasImport, KerasArchiveWithoutWeights) {
  EXPECT_THAT(errorOf([] { importNetwork(dataPath("keras/no_weights_entry.keras")); }),
              HasSubstr("without config.json and model.weights.h5"));
}

TEST(KerasImport, WeightsOnlyH5) {
  EXPECT_THAT(errorOf([] { importNetwork(dataPath("keras/weights_only.h5")); }), HasSubstr("weights only"));
}

TEST(KerasImport, WeightWithTheWrongShape) {
  const std::string e = errorOf([] { importNetwork(dataPath("keras/wrong_shape.h5")); });
  EXPECT_THAT(e, HasSubstr("wrong_shape.h5"));
  EXPECT_THAT(e, HasSubstr("time_distributed"));
  EXPECT_THAT(e, HasSubstr("kernel has shape [13, 8], expected [12, 8]"));
}

TEST(KerasImport, TruncatedFiles) {
  for (const std::string name : {"bigru_concat.keras", "bilstm_sum_valid.h5"}) {
    std::ifstream in(dataPath("keras/" + name), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const size_t size : {bytes.size() / 2, bytes.size() - 100, size_t{600}}) {
      const std::string path = scratch(std::to_string(size) + "_" + name);
      std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(size));
      const std::string e = errorOf([&] { importNetwork(path); });
      EXPECT_THAT(e, HasSubstr(path)) << e;
      EXPECT_THAT(e, ::testing::AnyOf(HasSubstr("truncated"), HasSubstr("corrupt"))) << e;
    }
  }
}

// libhdf5 1.10 crashed on these: a byte-flipped bilstm_sum_valid.h5 in H5HG_read (a corrupt
// global-heap reference of a variable-length string), another that spent minutes and gigabytes in
// H5T__conv_vlen, and what libFuzzer found (tests/fuzz/keras_fuzzer.cpp): a segfault, an overflow of
// an attribute table that only ASan sees, and a file libhdf5 never finishes reading. The reader
// process takes the fall; the importer reports corrupt data and carries on.
TEST(KerasImport, CrashingHdf5FilesGiveClearErrors) {
  for (const std::string name : {"crash_global_heap.h5", "huge_vlen_string.h5", "crash_fuzzed.h5"}) {
    const std::string e = errorOf([&] { importNetwork(dataPath("keras/" + name)); });
    EXPECT_THAT(e, HasSubstr(name)) << e;
    EXPECT_THAT(e, ::testing::AnyOf(HasSubstr("HDF5 data is corrupt"), HasSubstr("cannot be read"))) << e;
  }
  // Without ASan, libhdf5's overflow of this attribute table goes unnoticed in the reader process and
  // what it then reads depends on the allocator (TSan's gives another object tree than glibc's): any
  // clear error naming the file is right.
  EXPECT_THAT(errorOf([] { importNetwork(dataPath("keras/overflow_attribute_table.h5")); }),
              HasSubstr("overflow_attribute_table.h5"));
  EXPECT_THAT(errorOf([] { importNetwork(dataPath("keras/crash_global_heap.h5")); }),
              HasSubstr("libhdf5 crashed (signal"));
}

TEST(KerasImport, AnHdf5FileThatHangsLibhdf5TimesOut) {
  keras::Hdf5File::setReaderTimeout(std::chrono::seconds(1));
  const std::string e = errorOf([] { importNetwork(dataPath("keras/hang_fuzzed.h5")); });
  keras::Hdf5File::setReaderTimeout(std::chrono::milliseconds(0));
  EXPECT_THAT(e, HasSubstr("hang_fuzzed.h5"));
  EXPECT_THAT(e, HasSubstr("HDF5 data is corrupt: libhdf5 did not finish within 1 s"));
}

// .keras weight groups are named after the class, as Keras's naming.to_snake_case spells it.
TEST(KerasImport, SnakeCaseMatchesKeras) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Conv2D", "conv2d"}, {"BatchNormalization", "batch_normalization"}, {"ReLU", "re_lu"},
      {"SimpleRNN", "simple_rnn"}, {"GRU", "gru"}, {"LSTM", "lstm"}, {"TimeDistributed", "time_distributed"},
      {"InputLayer", "input_layer"}, {"SpatialDropout1D", "spatial_dropout1d"},
      // Keras's regular expressions on harder names (values from Python's re with the same patterns)
      {"HTTPServerX", "http_server_x"}, {"aBcD", "a_bc_d"}, {"ABCdefGhi", "ab_cdef_ghi"},
      {"Conv1DTranspose", "conv1d_transpose"}, {"My-Layer.2", "my_layer2"}};
  for (const auto& [name, snake] : cases) EXPECT_EQ(keras::toSnakeCase(name), snake);
}

}  // namespace
}  // namespace ds2rt::test
