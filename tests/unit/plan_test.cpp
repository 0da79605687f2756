// Plan files: save/load and serialize/deserialize give engines with bit-identical outputs;
// every corruption or truncation is a clear ds2rt::Error, never a crash.
#include <gmock/gmock.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::AllOf;
using testing::HasSubstr;

constexpr size_t kHeaderBytes = 48;

using Outputs = std::map<std::string, HostTensor>;

struct PlanFixture {
  DeepSpeech2Model model;
  WeightStore io;
};

const PlanFixture& fixture(const std::string& name) {
  static std::map<std::string, std::unique_ptr<PlanFixture>> cache;
  auto& slot = cache[name];
  if (!slot)
    slot = std::make_unique<PlanFixture>(PlanFixture{DeepSpeech2Model::load(dataPath("parity/" + name + "/model.safetensors")),
                                                     WeightStore::load(dataPath("parity/" + name + "/io.safetensors"))});
  return *slot;
}

Outputs runOn(const Engine& engine, const WeightStore& io) {
  auto ctx = engine.createContext();
  return ctx.run({{"features", io.get("input")}, {"lengths", io.get("input_lengths")}});
}

void expectBitIdentical(const Outputs& a, const Outputs& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    const HostTensor& u = b.at(name);
    ASSERT_EQ(t.dtype(), u.dtype()) << name;
    ASSERT_EQ(t.shape(), u.shape()) << name;
    EXPECT_EQ(std::memcmp(t.data(), u.data(), t.bytes()), 0) << name << " differs";
  }
}

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void writeFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

uint64_t getLE(const std::vector<uint8_t>& b, size_t offset, size_t size) {
  uint64_t v = 0;
  for (size_t i = size; i-- > 0;) v = (v << 8) | b[offset + i];
  return v;
}

void putLE(std::vector<uint8_t>& b, size_t offset, size_t size, uint64_t value) {
  for (size_t i = 0; i < size; ++i) b[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}

uint32_t crc32Of(const uint8_t* data, size_t size) {
  return static_cast<uint32_t>(crc32_z(crc32_z(0L, Z_NULL, 0), data, size));
}

// Recomputes both checksums, so that only the deliberate change remains.
void resign(std::vector<uint8_t>& plan) {
  putLE(plan, 40, 4, crc32Of(plan.data() + kHeaderBytes, plan.size() - kHeaderBytes));
  putLE(plan, 44, 4, crc32Of(plan.data(), 44));
}

// Expects both Engine::deserialize and Engine::load (of the same bytes written to a file) to
// throw a ds2rt::Error whose message contains `needle` and names the source.
template <typename Matcher>
void expectRejected(const std::vector<uint8_t>& plan, const Matcher& matcher, const std::string& what) {
  SCOPED_TRACE(what);
  try {
    Engine::deserialize(plan, "memory.plan");
    ADD_FAILURE() << "deserialize accepted the plan";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), matcher);
    EXPECT_THAT(e.what(), HasSubstr("memory.plan"));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a ds2rt::Error: " << e.what();
  }
  const std::string path = scratch("rejected.plan");
  writeFile(path, plan);
  try {
    Engine::load(path);
    ADD_FAILURE() << "load accepted the plan";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), matcher);
    EXPECT_THAT(e.what(), HasSubstr(path));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a ds2rt::Error: " << e.what();
  }
}

class PlanRoundTrip : public testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(PlanRoundTrip, FileAndMemoryGiveBitIdenticalOutputs) {
  const auto& [name, optimize] = GetParam();
  const PlanFixture& f = fixture(name);
  const Engine built = Builder({.optimize = optimize}).build(f.model.createNetwork());
  const Outputs expected = runOn(built, f.io);

  const std::string path = scratch(name + ".plan");
  built.save(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  const Engine loaded = Engine::load(path);
  expectBitIdentical(runOn(loaded, f.io), expected);

  std::vector<uint8_t> bytes = built.serialize();
  EXPECT_EQ(bytes, readFile(path));
  const Engine restored = Engine::deserialize(bytes);
  bytes.assign(bytes.size(), 0xAB);  // the engine must not depend on the caller's buffer
  expectBitIdentical(runOn(restored, f.io), expected);

  // The loaded engine is the same engine: configuration, names, report, description, and a
  // re-serialisation gives the same bytes.
  for (const Engine* e : {&loaded, &restored}) {
    EXPECT_EQ(e->config().optimize, optimize);
    EXPECT_EQ(e->config().toString(), built.config().toString());
    EXPECT_EQ(e->inputNames(), built.inputNames());
    EXPECT_EQ(e->outputNames(), built.outputNames());
    EXPECT_EQ(e->buildReport(), built.buildReport());
    EXPECT_EQ(e->describe(), built.describe());
    EXPECT_EQ(e->metadata(), built.metadata());
    EXPECT_EQ(e->serialize(), readFile(path));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PlanRoundTrip,
                         testing::Combine(testing::Values("lstm_uni_l2_h16_ctx3", "gru_bi_l3_h24", "rnn_bi_l1_h16"),
                                          testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) ? "_optimized" : "_unoptimized");
                         });

// A plan carries the model's labels and feature settings, so that it transcribes on its own.
// Plans record the precision by name; each name reads back, and the CPU refuses the GPU-only ones.
TEST(Plan, PrecisionNamesReadBackAndTheCpuRefusesGpuOnlyOnes) {
  for (Precision p : {Precision::kFP32, Precision::kFP16, Precision::kBF16, Precision::kInt8, Precision::kTF32})
    EXPECT_EQ(precisionFromString(toString(p)), p) << toString(p);
  EXPECT_THAT(errorOf([] { precisionFromString("fp64"); }), AllOf(HasSubstr("fp64"), HasSubstr("tf32")));
  EXPECT_THAT(errorOf([] { BuilderConfig{.device = Device::kCPU, .precision = Precision::kTF32}.validate(); }),
              AllOf(HasSubstr("tf32"), HasSubstr("cuda")));
  const auto model = DeepSpeech2Model::load(dataPath("parity/gru_uni_l1_h24_ctx2/model.safetensors"));
  EXPECT_THAT(errorOf([&] { Builder({.precision = Precision::kTF32}).build(model.createNetwork()); }),
              HasSubstr("tf32"));
}

TEST(Plan, CarriesTheTranscriptionMetadata) {
  const PlanFixture& f = fixture("gru_bi_l3_h24");
  const Engine loaded = Engine::deserialize(Builder().build(f.model.createNetwork()).serialize());
  const auto config = transcriptionConfigFromMetadata(loaded.metadata(), "plan");
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->labels, f.model.config().labels);
  EXPECT_EQ(config->spect.sample_rate, f.model.config().spect.sample_rate);
  EXPECT_EQ(config->spect.window_stride, f.model.config().spect.window_stride);
  EXPECT_EQ(config->spect.window, f.model.config().spect.window);
  EXPECT_EQ(loaded.metadata().at("ds2rt.config"), f.model.config().toJson());
}

// Plans are written piece by piece through a temporary file: a folder that does not exist gives a
// clear error naming the file, and leaves nothing behind.
TEST(Plan, SavingWhereNoFileCanBeMadeFailsClearly) {
  const Engine engine = Builder().build(fixture("rnn_bi_l1_h16").model.createNetwork());
  const std::string path = scratch("no_such_folder") + "/model.plan";
  try {
    engine.save(path);
    FAIL() << "saved into a folder that does not exist";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot create '" + path + ".partial'"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
}

TEST(Plan, LoadedEngineOutlivesTheFile) {
  const PlanFixture& f = fixture("gru_uni_l1_h24_ctx2");
  const Engine built = Builder().build(f.model.createNetwork());
  const std::string path = scratch("deleted.plan");
  built.save(path);
  const Engine loaded = Engine::load(path);
  ASSERT_TRUE(std::filesystem::remove(path));
  expectBitIdentical(runOn(loaded, f.io), runOn(built, f.io));
}

TEST(Plan, DescribeAndReportNameTheFoldsAndFusions) {
  const PlanFixture& f = fixture("lstm_uni_l2_h16_ctx3");
  const Engine engine = Builder().build(f.model.createNetwork());
  std::string report;
  for (const auto& line : engine.buildReport()) report += line + "\n";
  EXPECT_THAT(report, HasSubstr("folded batch norm conv.seq_module.1 into convolution conv.seq_module.0"));
  EXPECT_THAT(report, HasSubstr("folded batch norm conv.seq_module.4 into convolution conv.seq_module.3"));
  EXPECT_THAT(report, HasSubstr("folded batch norm rnns.1.batch_norm into the input projection of rnns.1.rnn"));
  EXPECT_THAT(report, HasSubstr("folded batch norm fc.0.module.0 into the input projection of fc.0.module.1"));
  EXPECT_THAT(report, HasSubstr("fused activation conv.seq_module.2 into conv.seq_module.0"));
  EXPECT_THAT(report, HasSubstr("fused activation lookahead.1 into lookahead.0"));
  EXPECT_THAT(report, HasSubstr("removed mask conv.seq_module.0.mask"));
  EXPECT_THAT(report, HasSubstr("activation buffers"));

  const std::string text = Engine::deserialize(engine.serialize()).describe();
  EXPECT_THAT(text, HasSubstr("optimize=on"));
  EXPECT_THAT(text, HasSubstr("batch norm conv.seq_module.1"));
  EXPECT_THAT(text, HasSubstr("clip activation conv.seq_module.2"));
  EXPECT_THAT(text, HasSubstr("clip activation lookahead.1"));
  EXPECT_THAT(text, HasSubstr("batch norm rnns.1.batch_norm (folded into the input projection)"));
  EXPECT_THAT(text, HasSubstr("oneDNN convolution with clip post-op"));
  EXPECT_THAT(text, HasSubstr("output probs"));

  // Without optimisation nothing is folded and the batch norms are layers of their own.
  const Engine plain = Builder({.optimize = false}).build(f.model.createNetwork());
  for (const auto& line : plain.buildReport()) {
    EXPECT_THAT(line, testing::Not(HasSubstr("folded")));
    EXPECT_THAT(line, testing::Not(HasSubstr("fused")));
  }
  EXPECT_THAT(plain.describe(), HasSubstr("optimize=off"));
  EXPECT_THAT(plain.describe(), testing::Not(HasSubstr("; + ")));
  EXPECT_THAT(plain.describe(), HasSubstr("conv.seq_module.1 "));
}

// ---- Corruption --------------------------------------------------------------------------------

class PlanCorruption : public testing::Test {
 protected:
  // Built once for the suite, on first use.
  static const std::vector<uint8_t>& plan() {
    static const std::vector<uint8_t> bytes = Builder().build(fixture("rnn_bi_l1_h16").model.createNetwork()).serialize();
    return bytes;
  }
  static size_t jsonSize() { return getLE(plan(), 16, 8); }
  static size_t blobOffset() { return getLE(plan(), 24, 8); }
};

TEST_F(PlanCorruption, HeaderIsConsistent) {
  ASSERT_GT(plan().size(), kHeaderBytes);
  EXPECT_EQ(std::memcmp(plan().data(), "DS2RTPLN", 8), 0);
  EXPECT_EQ(getLE(plan(), 8, 4), 3u);
  EXPECT_EQ(blobOffset() % 64, 0u);
  EXPECT_GE(blobOffset(), kHeaderBytes + jsonSize());
  EXPECT_EQ(getLE(plan(), 32, 8), plan().size() - blobOffset());
  EXPECT_EQ(plan()[kHeaderBytes], '{');
  EXPECT_NO_THROW(Engine::deserialize(plan()));
}

TEST_F(PlanCorruption, FlippedByteInWeights) {
  ASSERT_GT(plan().size(), blobOffset() + 100);
  for (const size_t offset : {blobOffset(), blobOffset() + 99, plan().size() - 1}) {
    std::vector<uint8_t> bad = plan();
    bad[offset] ^= 0x10;
    expectRejected(bad, AllOf(HasSubstr("corrupt"), HasSubstr("checksum")), cat("weights byte ", offset));
  }
}

TEST_F(PlanCorruption, FlippedByteInJson) {
  for (const size_t offset : {kHeaderBytes, kHeaderBytes + jsonSize() / 2, kHeaderBytes + jsonSize() - 1}) {
    std::vector<uint8_t> bad = plan();
    bad[offset] ^= 0x01;
    expectRejected(bad, AllOf(HasSubstr("corrupt"), HasSubstr("checksum")), cat("JSON byte ", offset));
  }
}

TEST_F(PlanCorruption, FlippedByteInHeader) {
  for (size_t offset = 0; offset < kHeaderBytes; ++offset) {
    std::vector<uint8_t> bad = plan();
    bad[offset] ^= 0x04;
    if (offset < 8)
      expectRejected(bad, HasSubstr("not a ds2rt plan"), cat("magic byte ", offset));
    else
      expectRejected(bad, AllOf(HasSubstr("header is corrupt"), HasSubstr("checksum")), cat("header byte ", offset));
  }
}

TEST_F(PlanCorruption, Truncated) {
  const size_t cuts[] = {0, 1, 8, 47, 48, 49, kHeaderBytes + jsonSize() / 2, blobOffset(), plan().size() / 2,
                         plan().size() - 1};
  for (const size_t keep : cuts) {
    const std::vector<uint8_t> bad(plan().begin(), plan().begin() + static_cast<std::ptrdiff_t>(keep));
    if (keep < kHeaderBytes)
      expectRejected(bad, AllOf(HasSubstr("not a ds2rt plan"), HasSubstr("truncated")), cat("cut to ", keep));
    else
      expectRejected(bad, HasSubstr("truncated"), cat("cut to ", keep));
  }
}

TEST_F(PlanCorruption, BadMagic) {
  std::vector<uint8_t> bad = plan();
  std::memcpy(bad.data(), "NOTAPLAN", 8);
  expectRejected(bad, HasSubstr("not a ds2rt plan"), "magic NOTAPLAN");
  resign(bad);  // even with valid checksums
  expectRejected(bad, HasSubstr("not a ds2rt plan"), "magic NOTAPLAN, resigned");
  // A safetensors file is not a plan.
  const std::vector<uint8_t> weights = readFile(dataPath("parity/rnn_bi_l1_h16/model.safetensors"));
  expectRejected(weights, HasSubstr("not a ds2rt plan"), "safetensors file");
}

TEST_F(PlanCorruption, VersionOneAndTwoPlansStillLoad) {
  // Versions 2 and 3 only added layer kinds and fields; a plan without them reads the same under any number.
  for (uint32_t version : {1u, 2u}) {
    std::vector<uint8_t> old = plan();
    putLE(old, 8, 4, version);
    putLE(old, 44, 4, crc32Of(old.data(), 44));
    EXPECT_NO_THROW(Engine::deserialize(old)) << "version " << version;
  }
}

TEST_F(PlanCorruption, NewerVersion) {
  std::vector<uint8_t> bad = plan();
  putLE(bad, 8, 4, 4);
  putLE(bad, 44, 4, crc32Of(bad.data(), 44));  // header CRC recomputed: only the version differs
  expectRejected(bad, AllOf(HasSubstr("newer"), HasSubstr("version 4")), "version 4");
  putLE(bad, 8, 4, 0);
  putLE(bad, 44, 4, crc32Of(bad.data(), 44));
  expectRejected(bad, HasSubstr("version 0"), "version 0");
}

TEST_F(PlanCorruption, HeaderFieldsOutOfRangeWithValidChecksums) {
  const std::pair<size_t, uint64_t> changes[] = {
      {16, ~uint64_t{0}},                      // JSON size 2^64 - 1
      {16, plan().size()},                     // JSON overlapping the weights
      {24, ~uint64_t{0}},                      // weights offset past the end
      {24, 8},                                 // weights offset inside the header
      {32, 1},                                 // weights size too small
      {32, ~uint64_t{0} - 100},                // weights size huge
  };
  for (const auto& [offset, value] : changes) {
    std::vector<uint8_t> bad = plan();
    putLE(bad, offset, 8, value);
    putLE(bad, 44, 4, crc32Of(bad.data(), 44));
    expectRejected(bad, HasSubstr("truncated"), cat("header field ", offset, " = ", value));
  }
}

TEST_F(PlanCorruption, MalformedDescriptionWithValidChecksums) {
  const std::string json(plan().begin() + kHeaderBytes, plan().begin() + static_cast<std::ptrdiff_t>(kHeaderBytes + jsonSize()));
  const auto replaced = [&](const std::string& from, const std::string& to) {
    EXPECT_EQ(from.size(), to.size());
    const size_t at = json.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    std::vector<uint8_t> bad = plan();
    if (at != std::string::npos) std::memcpy(bad.data() + kHeaderBytes + at, to.data(), to.size());
    resign(bad);
    return bad;
  };
  expectRejected(replaced("\"kind\":\"RNN\"", "\"kind\":\"XYZ\""), HasSubstr("unknown layer kind 'XYZ'"), "unknown kind");
  expectRejected(replaced("{\"config\"", "[\"config\""), HasSubstr("malformed plan description"), "not JSON");
  expectRejected(replaced("\"cell\":\"rnn_tanh\"", "\"cell\":\"rnn_xxxx\""), HasSubstr("rnn_xxxx"), "unknown cell");
  expectRejected(replaced("\"hidden_size\":16", "\"hidden_size\":17"), HasSubstr("shape"), "wrong hidden size");
  expectRejected(replaced("\"device\":\"cpu\"", "\"device\":\"tpu\""), HasSubstr("tpu"), "unknown device");
  expectRejected(replaced("\"metadata\":{\"", "\"metadata\":[\""), HasSubstr("malformed plan description"), "metadata");
}

// Plans written before metadata existed have no "metadata" key: they load, with none.
TEST_F(PlanCorruption, PlanWithoutMetadataLoads) {
  std::string json(plan().begin() + kHeaderBytes, plan().begin() + static_cast<std::ptrdiff_t>(kHeaderBytes + jsonSize()));
  const size_t at = json.find("\"metadata\"");
  ASSERT_NE(at, std::string::npos);
  std::vector<uint8_t> old = plan();
  std::memcpy(old.data() + kHeaderBytes + at, "\"metadatx\"", 10);  // an unknown key, ignored
  resign(old);
  const Engine engine = Engine::deserialize(old);
  EXPECT_TRUE(engine.metadata().empty());
  EXPECT_FALSE(transcriptionConfigFromMetadata(engine.metadata(), "old plan").has_value());
}

}  // namespace
}  // namespace ds2rt::test
