// WeightStore: safetensors round trips, interoperability, and an Error naming the file (and the
// tensor) for every way a file can be malformed.
#include <gmock/gmock.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ds2rt/error.h"
#include "ds2rt/weights.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

std::string readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void writeBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good());
}

// A safetensors file made by hand: u64 LE header size, header text, data.
std::string safetensors(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i));
  return out + header + data;
}

// Expects WeightStore::load(path) to throw a ds2rt::Error containing every one of `parts`.
void expectLoadError(const std::string& path, std::initializer_list<std::string> parts) {
  try {
    WeightStore::load(path);
    ADD_FAILURE() << "loading '" << path << "' succeeded";
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_THAT(e.what(), HasSubstr(p));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a ds2rt::Error: " << e.what();
  }
}

// A store holding one tensor of every kind the round trip covers.
WeightStore sampleStore() {
  WeightStore s;
  s.set("f32", HostTensor::fromFloats({2, 3}, {1.5f, -2, 3, 4e-8f, 5e30f, -0.0f}));
  HostTensor f16(DataType::kFloat16, {4});
  const uint16_t halves[] = {0x3c00, 0xc100, 0x0001, 0x7c00};
  std::memcpy(f16.mutableData(), halves, sizeof halves);
  s.set("layer.f16", f16);
  HostTensor bf16(DataType::kBFloat16, {2, 2});
  const uint16_t bfloats[] = {0x3f80, 0xc0a0, 0x4049, 0x0001};
  std::memcpy(bf16.mutableData(), bfloats, sizeof bfloats);
  s.set("layer.bf16", bf16);
  HostTensor i64(DataType::kInt64, {3});
  i64.mutableData<int64_t>()[0] = -1;
  i64.mutableData<int64_t>()[1] = int64_t{1} << 50;
  i64.mutableData<int64_t>()[2] = 7;
  s.set("counts.i64", i64);
  HostTensor scalar(DataType::kInt64, {});  // as num_batches_tracked
  scalar.mutableData<int64_t>()[0] = 12345;
  s.set("num_batches_tracked", scalar);
  HostTensor f64(DataType::kFloat64, {2});
  f64.mutableData<double>()[0] = 0.1;
  f64.mutableData<double>()[1] = -1e200;
  s.set("f64", f64);
  s.set("i32", HostTensor::fromInts({2}, {-5, 6}));
  HostTensor u8(DataType::kUInt8, {3});
  u8.mutableData<uint8_t>()[2] = 255;
  s.set("u8", u8);
  HostTensor flags(DataType::kBool, {2});
  flags.mutableData<uint8_t>()[0] = 1;
  s.set("flags", flags);
  s.set("empty", HostTensor(DataType::kFloat32, {0, 5}));
  s.metadata()["format"] = "pt";
  s.metadata()["ds2rt.config"] = R"({"nested": "json", "n": [1, 2]})";
  return s;
}

void expectSameTensor(const HostTensor& a, const HostTensor& b, const std::string& name) {
  EXPECT_EQ(a.dtype(), b.dtype()) << name;
  EXPECT_EQ(a.shape(), b.shape()) << name;
  ASSERT_EQ(a.bytes(), b.bytes()) << name;
  if (a.bytes()) EXPECT_EQ(std::memcmp(a.data(), b.data(), a.bytes()), 0) << name;
}

TEST(WeightStore, SaveLoadRoundTrip) {
  const WeightStore original = sampleStore();
  const std::string path = scratch("roundtrip.safetensors");
  original.save(path);
  const WeightStore loaded = WeightStore::load(path);
  EXPECT_EQ(loaded.names(), original.names());
  for (const auto& [name, t] : original.tensors()) expectSameTensor(loaded.get(name), t, name);
  EXPECT_EQ(loaded.metadata(), original.metadata());
  EXPECT_EQ(loaded.source(), path);
  EXPECT_EQ(loaded.get("num_batches_tracked").rank(), 0u);
  EXPECT_EQ(loaded.get("counts.i64").data<int64_t>()[1], int64_t{1} << 50);
  // Loaded tensors view the read-only mapping.
  EXPECT_THROW(const_cast<HostTensor&>(loaded.get("f32")).mutableData(), Error);
  // A second save of the loaded store gives the same bytes.
  const std::string again = scratch("roundtrip2.safetensors");
  loaded.save(again);
  EXPECT_EQ(readBytes(again), readBytes(path));
  // No temporary file is left beside the result.
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
}

TEST(WeightStore, SavedFileFollowsTheSafetensorsLayout) {
  const WeightStore original = sampleStore();
  const std::string path = scratch("layout.safetensors");
  original.save(path);
  const std::string bytes = readBytes(path);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  ASSERT_LE(8 + header_size, bytes.size());
  EXPECT_EQ((8 + header_size) % 8, 0u);  // data section aligned
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  EXPECT_EQ(header.at("__metadata__").at("format"), "pt");
  EXPECT_EQ(header.at("layer.f16").at("dtype"), "F16");
  EXPECT_EQ(header.at("layer.bf16").at("dtype"), "BF16");
  EXPECT_EQ(header.at("counts.i64").at("shape"), nlohmann::json({3}));
  // The offsets tile the data section exactly.
  uint64_t total = 0;
  for (const auto& [name, entry] : header.items())
    if (name != "__metadata__") total += entry.at("data_offsets")[1].get<uint64_t>() - entry.at("data_offsets")[0].get<uint64_t>();
  EXPECT_EQ(8 + header_size + total, bytes.size());
  const auto& f32 = header.at("f32").at("data_offsets");
  float first;
  std::memcpy(&first, bytes.data() + 8 + header_size + f32[0].get<uint64_t>(), 4);
  EXPECT_EQ(first, 1.5f);
}

TEST(WeightStore, ReadsHandWrittenFiles) {
  // Unpadded header, keys in arbitrary order, no metadata: as other writers make them.
  std::string data(12, '\0');
  const float values[] = {1, 2};
  std::memcpy(data.data(), values, 8);
  const uint16_t half = 0x4000;  // 2.0
  std::memcpy(data.data() + 8, &half, 2);
  data[10] = 3;  // I8
  data[11] = static_cast<char>(-4);
  const std::string path = scratch("handmade.safetensors");
  writeBytes(path, safetensors(R"({"z":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("a":{"dtype":"F16","shape":[1,1],"data_offsets":[8,10]},)"
                               R"("m":{"dtype":"I8","shape":[2],"data_offsets":[10,12]}})",
                               data));
  const WeightStore s = WeightStore::load(path);
  EXPECT_EQ(s.names(), (std::vector<std::string>{"a", "m", "z"}));
  EXPECT_TRUE(s.metadata().empty());
  EXPECT_EQ(toVector(s.get("z")), (std::vector<float>{1, 2}));
  EXPECT_EQ(toVector(s.get("a")), (std::vector<float>{2}));
  EXPECT_EQ(toVector(s.get("m")), (std::vector<float>{3, -4}));
}

TEST(WeightStore, ReadsFilesWrittenByPythonSafetensors) {
  const WeightStore io = WeightStore::load(dataPath("parity/lstm_bi_l2_h32/io.safetensors"));
  EXPECT_EQ(io.get("input").dtype(), DataType::kFloat32);
  EXPECT_EQ(io.get("input").shape(), (Shape{4, 1, 161, 50}));
  EXPECT_EQ(io.get("input_lengths").dtype(), DataType::kInt32);
  EXPECT_EQ(toVector(io.get("input_lengths")), (std::vector<float>{41, 50, 27, 17}));
  EXPECT_EQ(toVector(io.get("output_lengths")), (std::vector<float>{21, 25, 14, 9}));
  const WeightStore model = WeightStore::load(dataPath("parity/lstm_bi_l2_h32/model.safetensors"));
  EXPECT_EQ(model.get("conv.seq_module.0.weight").dtype(), DataType::kFloat16);
  EXPECT_EQ(model.get("conv.seq_module.0.weight").shape(), (Shape{32, 1, 41, 11}));
  EXPECT_EQ(model.get("conv.seq_module.1.num_batches_tracked").dtype(), DataType::kInt64);
  EXPECT_EQ(model.get("conv.seq_module.1.num_batches_tracked").rank(), 0u);
  EXPECT_TRUE(model.metadata().count("ds2rt.config"));
}

// ---- getFloat / get ----------------------------------------------------------------------------

TEST(WeightStore, GetFloatConvertsAndChecks) {
  WeightStore s = sampleStore();
  s.setSource("my_model.safetensors");
  EXPECT_EQ(toVector(s.getFloat("layer.f16", {4})),
            (std::vector<float>{1, -2.5f, std::ldexp(1.0f, -24), std::numeric_limits<float>::infinity()}));
  EXPECT_EQ(s.getFloat("layer.bf16", {2, 2}).dtype(), DataType::kFloat32);
  EXPECT_EQ(toVector(s.getFloat("f64", {2}))[0], 0.1f);
  EXPECT_EQ(s.getFloat("f32", {2, 3}).data(), s.get("f32").data());  // no copy for float32

  try {
    s.getFloat("rnns.0.rnn.weight_ih_l0", {4, 4});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing tensor 'rnns.0.rnn.weight_ih_l0'"));
    EXPECT_THAT(e.what(), HasSubstr("my_model.safetensors"));
  }
  try {
    s.getFloat("f32", {3, 2});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("'f32'"));
    EXPECT_THAT(e.what(), HasSubstr("[2, 3]"));
    EXPECT_THAT(e.what(), HasSubstr("[3, 2]"));
    EXPECT_THAT(e.what(), HasSubstr("my_model.safetensors"));
  }
  for (const auto& [name, shape] : std::vector<std::pair<std::string, Shape>>{
           {"counts.i64", {3}}, {"i32", {2}}, {"u8", {3}}, {"flags", {2}}}) {
    try {
      s.getFloat(name, shape);
      ADD_FAILURE() << name << " was accepted as a floating tensor";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("'" + name + "'"));
      EXPECT_THAT(e.what(), HasSubstr("expected a floating type"));
    }
  }
  try {
    s.get("nope");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("'nope'"));
  }
  EXPECT_TRUE(s.contains("f32"));
  EXPECT_FALSE(s.contains("nope"));
}

// ---- Malformed files -------------------------------------------------------------------------

TEST(WeightStoreErrors, MissingFile) {
  const std::string path = scratch("does_not_exist.safetensors");
  expectLoadError(path, {path, "cannot open"});
}

TEST(WeightStoreErrors, DirectoryPath) {
  const std::string path = scratch("a_directory.safetensors");
  std::filesystem::create_directories(path);
  expectLoadError(path, {path, "not a regular file"});
}

TEST(WeightStoreErrors, EmptyAndShortFiles) {
  const std::string path = scratch("short.safetensors");
  writeBytes(path, "");
  expectLoadError(path, {path, "0 bytes"});
  writeBytes(path, std::string("\x05\x00\x00", 3));
  expectLoadError(path, {path, "3 bytes"});
  writeBytes(path, std::string(7, '\0'));
  expectLoadError(path, {path, "7 bytes"});
}

TEST(WeightStoreErrors, HeaderLargerThanFile) {
  const std::string path = scratch("bighead.safetensors");
  std::string bytes = safetensors("{}");
  bytes[0] = 100;  // header of 100 bytes in a 10-byte file
  writeBytes(path, bytes);
  expectLoadError(path, {path, "header of 100 bytes"});
  bytes.assign(8, '\xff');  // 2^64 - 1
  bytes += "{}";
  writeBytes(path, bytes);
  expectLoadError(path, {path, "truncated"});
}

TEST(WeightStoreErrors, HeaderNotJson) {
  const std::string path = scratch("notjson.safetensors");
  writeBytes(path, safetensors(R"({"a": {"dtype": "F32", )"));
  expectLoadError(path, {path, "corrupt safetensors header"});
  writeBytes(path, safetensors("\x89PNG garbage"));
  expectLoadError(path, {path, "corrupt safetensors header"});
}

TEST(WeightStoreErrors, HeaderNotAnObject) {
  const std::string path = scratch("array.safetensors");
  writeBytes(path, safetensors("[1, 2, 3]"));
  expectLoadError(path, {path, "not a JSON object"});
  writeBytes(path, safetensors(R"("text")"));
  expectLoadError(path, {path, "not a JSON object"});
}

TEST(WeightStoreErrors, EntryWithoutDtypeShapeOrOffsets) {
  const std::string path = scratch("incomplete.safetensors");
  const std::string data(16, '\0');
  for (const std::string& entry : {R"({"shape":[4],"data_offsets":[0,16]})", R"({"dtype":"F32","data_offsets":[0,16]})",
                                   R"({"dtype":"F32","shape":[4]})", R"([1, 2])", R"("F32")"}) {
    writeBytes(path, safetensors(R"({"ok":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"conv.weight":)" + entry + "}",
                                 data));
    expectLoadError(path, {path, "'conv.weight'"});
  }
}

TEST(WeightStoreErrors, BadFieldValues) {
  const std::string path = scratch("badfields.safetensors");
  const std::string data(16, '\0');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]})", "F8_E4M3"},  // unknown dtype
      {R"({"dtype":"f32","shape":[4],"data_offsets":[0,16]})", "f32"},          // wrong spelling
      {R"({"dtype":32,"shape":[4],"data_offsets":[0,16]})", "dtype"},           // not a string
      {R"({"dtype":"F32","shape":[-4],"data_offsets":[0,16]})", "shape"},
      {R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,16]})", "shape"},
      {R"({"dtype":"F32","shape":[4],"data_offsets":[0]})", "data_offsets"},
      {R"({"dtype":"F32","shape":[4],"data_offsets":[-16,0]})", "data_offsets"},
      {R"({"dtype":"F32","shape":[4],"data_offsets":"0..16"})", "data_offsets"},
  };
  for (const auto& [entry, detail] : cases) {
    SCOPED_TRACE(entry);
    writeBytes(path, safetensors(R"({"rnn.bias":)" + entry + "}", data));
    expectLoadError(path, {path, "'rnn.bias'", detail});
  }
}

TEST(WeightStoreErrors, ElementCountOverflow) {
  // 2^32 x 2^32 elements would wrap to 0 in 64 bits and match empty offsets.
  const std::string path = scratch("overflow.safetensors");
  writeBytes(path, safetensors(R"({"huge":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"));
  expectLoadError(path, {path, "'huge'"});
  // 2^61 float64 elements: 2^64 bytes, which would wrap to 0.
  writeBytes(path, safetensors(R"({"huge8":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})"));
  expectLoadError(path, {path, "'huge8'"});
}

TEST(WeightStoreErrors, MetadataNotStrings) {
  const std::string path = scratch("badmeta.safetensors");
  writeBytes(path, safetensors(R"({"__metadata__":{"version":1}})"));
  expectLoadError(path, {path, "'version'"});
  writeBytes(path, safetensors(R"({"__metadata__":[1]})"));
  expectLoadError(path, {path, "__metadata__"});
}

TEST(WeightStoreErrors, TruncatedFile) {
  const std::string path = scratch("full.safetensors");
  sampleStore().save(path);
  const std::string bytes = readBytes(path);
  const std::string cut_path = scratch("truncated.safetensors");
  // Cuts that leave the header whole but lose data name the first tensor (in name order) whose
  // bytes are gone: the data section holds the tensors sorted by name, ..., "layer.f16" (8 bytes),
  // "num_batches_tracked" (8), "u8" (3).
  for (const auto& [cut, tensor] : std::vector<std::pair<size_t, std::string>>{{1, "u8"}, {3, "u8"}, {17, "layer.f16"}}) {
    SCOPED_TRACE(cut);
    writeBytes(cut_path, bytes.substr(0, bytes.size() - cut));
    expectLoadError(cut_path, {cut_path, "'" + tensor + "'", "truncated or corrupt"});
  }
  // Cuts inside the header.
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  for (const size_t keep : {size_t{0}, size_t{5}, size_t{8}, size_t{9}, size_t{8 + header_size / 2}, size_t{7 + header_size}}) {
    SCOPED_TRACE(keep);
    writeBytes(cut_path, bytes.substr(0, keep));
    try {
      WeightStore::load(cut_path);
      ADD_FAILURE() << "a file cut to " << keep << " bytes loaded";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(cut_path));
    }
  }
}

TEST(WeightStoreErrors, ByteCountNotMatchingShape) {
  const std::string path = scratch("mismatch.safetensors");
  writeBytes(path, safetensors(R"({"fc.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", std::string(12, '\0')));
  expectLoadError(path, {path, "'fc.weight'", "holds 12 bytes", "F32 [2, 2] needs 16"});
  writeBytes(path, safetensors(R"({"fc.weight":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')));
  expectLoadError(path, {path, "'fc.weight'", "holds 8 bytes", "F16 [3] needs 6"});
  // Offsets reversed.
  writeBytes(path, safetensors(R"({"fc.weight":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", std::string(8, '\0')));
  expectLoadError(path, {path, "'fc.weight'"});
}

}  // namespace
}  // namespace ds2rt::test
