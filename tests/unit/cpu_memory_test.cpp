// Memory of CPU engines: a loaded plan gives back the pages of the weights its kernels copied
// (fp32 recurrent matrices; every RNN weight in int8 and bf16), and still runs and saves exactly as
// before; file-page release never touches memory that is not a file mapping; contexts that share
// one scratch block between kernels give the same results across changing shapes.
#include <gmock/gmock.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <variant>

#include "core/file.h"
#include "cpu/bf16.h"
#include "cpu/kernels.h"
#include "ds2rt/builder.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/weights.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using Outputs = std::map<std::string, HostTensor>;

const size_t kPage = static_cast<size_t>(::sysconf(_SC_PAGESIZE));

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

DeepSpeech2Config smallConfig(const std::string& rnn, bool bidirectional) {
  DeepSpeech2Config c;
  c.rnn_type = rnn;
  c.hidden_size = 256;  // 256 KiB per recurrent gate matrix: whole pages to give back
  c.hidden_layers = 2;
  c.bidirectional = bidirectional;
  c.lookahead_context = 3;
  for (const char* l : {"_", "'"}) c.labels.emplace_back(l);
  for (char ch = 'A'; ch <= 'Z'; ++ch) c.labels.emplace_back(1, ch);
  c.labels.emplace_back(" ");
  return c;
}

Outputs runBatch(const Engine& engine, int64_t batch, int64_t frames, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> lengths(batch);
  for (int64_t b = 0; b < batch; ++b) lengths[b] = static_cast<int32_t>(frames - (b * 7) % (frames / 2));
  auto ctx = engine.createContext();
  return ctx.run({{"features", randomTensor({batch, 1, 161, frames}, rng)},
                  {"lengths", HostTensor::fromInts({batch}, lengths)}});
}

void expectBitIdentical(const Outputs& a, const Outputs& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    const HostTensor& u = b.at(name);
    ASSERT_EQ(t.shape(), u.shape()) << name;
    EXPECT_EQ(std::memcmp(t.data(), u.data(), t.bytes()), 0) << name << " differs";
  }
}

// Where the recurrent layers' weights lie in a plan file (offsets from its JSON description).
struct Range {
  size_t offset, bytes;
};
struct RnnWeights {
  std::vector<Range> recurrent, input;
};
uint64_t getLE(const std::vector<uint8_t>& b, size_t offset) {
  uint64_t v = 0;
  for (size_t i = 8; i-- > 0;) v = (v << 8) | b[offset + i];
  return v;
}
RnnWeights rnnWeights(const std::vector<uint8_t>& plan) {
  const size_t json_size = getLE(plan, 16), blob = getLE(plan, 24);
  const auto meta = nlohmann::json::parse(plan.begin() + 48, plan.begin() + 48 + static_cast<std::ptrdiff_t>(json_size));
  RnnWeights w;
  for (const auto& layer : meta.at("layers")) {
    if (layer.at("kind") != "RNN") continue;
    for (const auto& [key, t] : layer.at("weights").items()) {
      size_t bytes = 4;
      for (int64_t d : t.at("shape")) bytes *= static_cast<size_t>(d);
      const Range r{blob + t.at("offset").get<size_t>(), bytes};
      if (key.find("recurrent_weight") != std::string::npos) w.recurrent.push_back(r);
      if (key.find("input_weight") != std::string::npos) w.input.push_back(r);
    }
  }
  return w;
}

// The start of this process's mapping of `path` (/proc/self/maps).
const uint8_t* mappingOf(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  const std::string canonical = std::filesystem::canonical(path).string();
  for (std::string line; std::getline(maps, line);)
    if (line.size() >= canonical.size() && line.compare(line.size() - canonical.size(), canonical.size(), canonical) == 0)
      return reinterpret_cast<const uint8_t*>(std::stoull(line.substr(0, line.find('-')), nullptr, 16));
  return nullptr;
}

size_t resident(const uint8_t* base, const std::vector<Range>& ranges) {
  size_t bytes = 0;
  for (const Range& r : ranges) bytes += detail::residentBytes(base + r.offset, r.bytes);
  return bytes;
}
size_t total(const std::vector<Range>& ranges) {
  size_t bytes = 0;
  for (const Range& r : ranges) bytes += r.bytes;
  return bytes;
}

TEST(MappedPages, ReleaseDropsFilePagesAndTheyReadBackUnchanged) {
  const std::string path = scratch("pages.bin");
  std::vector<uint8_t> bytes(256 * kPage);
  std::mt19937 rng(3);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  const auto file = detail::MappedFile::open(path);
  const auto view = file.bytes();
  ASSERT_EQ(std::memcmp(view.data(), bytes.data(), bytes.size()), 0);  // every page resident now
  EXPECT_EQ(detail::residentBytes(view.data(), view.size()), view.size());
  // An unaligned range: only the whole pages inside it go (1..71 of the 0..72 it touches).
  const size_t released = detail::releaseMappedPages(view.data() + 100, 72 * kPage);
  EXPECT_EQ(released, 71 * kPage);
  EXPECT_EQ(detail::residentBytes(view.data(), view.size()), view.size() - released);
  EXPECT_EQ(std::memcmp(view.data(), bytes.data(), bytes.size()), 0);  // read back from the file
  EXPECT_EQ(detail::residentBytes(view.data(), view.size()), view.size());
}

TEST(MappedPages, ReleaseLeavesOtherMemoryAlone) {
  std::vector<float> heap(1 << 20, 1.5f);
  EXPECT_EQ(detail::releaseMappedPages(heap.data(), heap.size() * sizeof(float)), 0u);
  for (float x : heap) ASSERT_EQ(x, 1.5f);
  // A range that starts inside a mapping and runs past its end is not released either.
  const std::string path = scratch("short.bin");
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(3 * kPage, 'x');
  }
  const auto file = detail::MappedFile::open(path);
  EXPECT_EQ(detail::releaseMappedPages(file.bytes().data(), 4 * kPage), 0u);
  EXPECT_EQ(detail::releaseMappedPages(file.bytes().data(), 3 * kPage), 3 * kPage);
  EXPECT_EQ(file.bytes()[3 * kPage - 1], 'x');
}

struct PlanCase {
  std::string rnn;
  Precision precision;
  bool bf16_matmul = false;  // bf16: the input projections' GEMM (pinned), else fp32 sgemm
  std::string name() const {
    return rnn + "_" + toString(precision) + (precision == Precision::kBF16 ? bf16_matmul ? "_matmul" : "_sgemm" : "");
  }
};

class LoadedPlanMemory : public testing::TestWithParam<PlanCase> {};

// A plan loaded from its file drops the pages of the weights that its kernels copied into their own
// layout, computes bit-identically to the same plan deserialised from memory (nothing dropped),
// and saves back to the identical bytes (the dropped pages read back from the file).
TEST_P(LoadedPlanMemory, ReleasesCopiedWeightsAndStaysExact) {
  const PlanCase c = GetParam();
  const Precision precision = c.precision;
  if (precision == Precision::kBF16 && !detail::cpu::haveBF16()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  if (precision == Precision::kInt8 && !detail::cpu::haveInt8()) GTEST_SKIP() << "this CPU has no AVX512_VNNI";
  struct Unpin {
    ~Unpin() { detail::cpu::forceBF16MatmulForTesting(std::nullopt); }
  } unpin;
  if (precision == Precision::kBF16) detail::cpu::forceBF16MatmulForTesting(c.bf16_matmul);
  const auto model = DeepSpeech2Model::withRandomWeights(smallConfig(c.rnn, true), 5);
  const std::string path = scratch(c.name() + ".plan");
  Builder({.precision = precision}).build(model.createNetwork()).save(path);
  const std::vector<uint8_t> original = readFile(path);
  const RnnWeights w = rnnWeights(original);
  ASSERT_GT(total(w.recurrent), size_t{1} << 20);

  const Engine loaded = Engine::load(path);
  const Engine in_memory = Engine::deserialize(original, "memory");
  expectBitIdentical(runBatch(loaded, 3, 120, 7), runBatch(in_memory, 3, 120, 7));
  const uint8_t* base = mappingOf(path);
  ASSERT_NE(base, nullptr);
  // After a run, what the kernels read is resident and what they copied is not. Whole pages
  // only: a matrix's first and last page may be shared with a neighbour.
  EXPECT_LE(resident(base, w.recurrent), 2 * kPage * w.recurrent.size()) << "recurrent matrices stay resident";
  if (precision == Precision::kInt8 || c.bf16_matmul || (precision == Precision::kFP32 && detail::cpu::useBF16x3Gemm()))
    EXPECT_LE(resident(base, w.input), 2 * kPage * w.input.size())
        << "int8, the bf16 matmul and fp32's bf16 parts copy the input weights";
  else
    EXPECT_GE(resident(base, w.input), total(w.input)) << "fp32 GEMMs read the input weights where they are";

  EXPECT_TRUE(loaded.serialize() == original) << "a plan saved after its pages were dropped differs";
  const std::string again = scratch(c.name() + "_again.plan");
  loaded.save(again);
  EXPECT_TRUE(readFile(again) == original);
}

std::vector<PlanCase> planCases() {
  std::vector<PlanCase> cases;
  for (const std::string rnn : {"lstm", "gru"}) {
    cases.push_back({rnn, Precision::kFP32});
    cases.push_back({rnn, Precision::kInt8});
    cases.push_back({rnn, Precision::kBF16, true});
    cases.push_back({rnn, Precision::kBF16, false});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(CellsAndPrecisions, LoadedPlanMemory, testing::ValuesIn(planCases()),
                         [](const auto& info) { return info.param.name(); });

// This process's resident memory now and at its peak since resetPeak() (/proc/self/status).
size_t statusKiB(const std::string& key) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stoul(line.substr(key.size() + 1));
  return 0;
}
bool resetPeak() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";  // resets VmHWM to the current RSS
  clear.flush();
  return clear.good();
}

// Loading checks the whole plan's checksum; the file must not become resident all at once for it.
// With int8 kernels (which keep quarter-size copies of the RNN weights) the load's peak stays well
// under the plan's size; summing the whole mapping first would put the plan's size on top.
TEST(LoadedPlanPeak, ChecksumDoesNotMakeThePlanResident) {
  if (!detail::cpu::haveInt8()) GTEST_SKIP() << "this CPU has no AVX512_VNNI";
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "peak RSS under a sanitizer counts its shadow memory and allocator quarantine";
#endif
  DeepSpeech2Config c = smallConfig("lstm", true);
  c.hidden_size = 512;
  c.hidden_layers = 3;
  const std::string path = scratch("peak.plan");
  Builder({.precision = Precision::kInt8}).build(DeepSpeech2Model::withRandomWeights(c, 4).createNetwork()).save(path);
  const size_t plan_kib = std::filesystem::file_size(path) / 1024;
  ASSERT_GT(plan_kib, size_t{50} << 10);
  if (!resetPeak()) GTEST_SKIP() << "cannot reset the peak RSS (/proc/self/clear_refs)";
  const size_t before = statusKiB("VmRSS");
  {
    const Engine loaded = Engine::load(path);
    const size_t growth = statusKiB("VmHWM") - before;
    EXPECT_LT(growth, plan_kib / 2) << "peak growth " << growth << " KiB loading a plan of " << plan_kib << " KiB";
    std::printf("loading a %zu KiB int8 plan: peak +%zu KiB\n", plan_kib, growth);
  }
}

// A model built in-process from its .safetensors file: fp32 weights that need no conversion
// (PyTorch's gate order is canonical) stay views of the mapping, so that the engine keeps only what
// its kernels read: the first layer's input weights in place (copied where fp32 GEMMs run on AMX);
// the recurrent matrices (packed) and the later layers' input weights (batch norm folded into
// copies) given back. An fp16 file's
// tensors are given back once converted. Results and the saved plan are exactly those of the
// same weights held in ordinary memory.
TEST(ModelFileMemory, BuildFromSafetensorsKeepsOnlyWhatKernelsRead) {
  const auto random = DeepSpeech2Model::withRandomWeights(smallConfig("lstm", true), 9);
  for (const bool fp16 : {false, true}) {
    WeightStore store;  // in ordinary memory: nothing there can be given back
    for (const auto& [name, t] : random.weights().tensors()) {
      if (!fp16 || t.dtype() != DataType::kFloat32) {
        store.set(name, t.clone());
        continue;
      }
      HostTensor half(DataType::kFloat16, t.shape());
      for (int64_t i = 0; i < t.size(); ++i) half.mutableData<uint16_t>()[i] = floatToHalf(t.data<float>()[i]);
      store.set(name, std::move(half));
    }
    store.metadata() = random.weights().metadata();
    const DeepSpeech2Model in_memory(random.config(), store);
    const std::string path = scratch(fp16 ? "model16.safetensors" : "model32.safetensors");
    in_memory.save(path);

    const DeepSpeech2Model mapped = DeepSpeech2Model::load(path);
    const Engine engine = Builder().build(mapped.createNetwork());
    const Engine reference = Builder().build(in_memory.createNetwork());
    expectBitIdentical(runBatch(engine, 2, 150, 3), runBatch(reference, 2, 150, 3));
    const auto resident = [&](const std::string& name) {
      const HostTensor& t = mapped.weights().get(name);
      return detail::residentBytes(t.data(), t.bytes());
    };
    for (const std::string direction : {"", "_reverse"}) {
      for (const std::string layer : {"rnns.0.rnn.", "rnns.1.rnn."})
        EXPECT_LE(resident(layer + "weight_hh_l0" + direction), 2 * kPage) << layer << direction << " fp16 " << fp16;
      EXPECT_LE(resident("rnns.1.rnn.weight_ih_l0" + direction), 2 * kPage) << "folded" << direction << " fp16 " << fp16;
      const std::string first = "rnns.0.rnn.weight_ih_l0" + direction;
      if (fp16)
        EXPECT_LE(resident(first), 2 * kPage) << "converted to fp32";
      else if (detail::cpu::useBF16x3Gemm())
        EXPECT_LE(resident(first), 2 * kPage) << "copied as bf16 parts (AMX)";
      else
        EXPECT_GE(resident(first), mapped.weights().get(first).bytes()) << "read in place by the GEMM";
    }
    EXPECT_TRUE(engine.serialize() == reference.serialize()) << "fp16 " << fp16;
  }
}

// One context runs every kernel on one shared scratch block, which grows and moves between runs
// (longer utterances, larger batches) and is laid out differently by each kernel: outputs match a
// fresh context's for every shape, in any order.
TEST(ContextScratch, SharedBetweenKernelsAcrossChangingShapes) {
  for (const bool bidirectional : {true, false}) {
    const Engine engine = Builder().build(DeepSpeech2Model::withRandomWeights(smallConfig("gru", bidirectional), 2).createNetwork());
    auto shared = engine.createContext();
    std::mt19937 rng(11);
    for (const auto& [batch, frames] : std::vector<std::pair<int, int>>{{1, 60}, {4, 300}, {2, 90}, {1, 400}, {3, 61}}) {
      std::vector<int32_t> lengths(batch, frames);
      lengths[0] = frames / 2 + 1;
      const HostTensor x = randomTensor({batch, 1, 161, frames}, rng);
      const Outputs got = shared.run({{"features", x}, {"lengths", HostTensor::fromInts({batch}, lengths)}});
      auto fresh = engine.createContext();
      expectBitIdentical(got, fresh.run({{"features", x}, {"lengths", HostTensor::fromInts({batch}, lengths)}}));
    }
  }
}

TEST(ScratchLayout, PiecesAreAlignedAndDisjoint) {
  detail::cpu::ScratchLayout layout;
  const size_t a = layout.add<float>(3), b = layout.add<uint8_t>(65), c = layout.add<double>(0), d = layout.add<float>(16);
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b, 64u);
  EXPECT_EQ(c, 192u);
  EXPECT_EQ(d, 192u);  // an empty piece takes no room
  EXPECT_EQ(layout.bytes(), 256u);
}

}  // namespace
}  // namespace ds2rt::test
