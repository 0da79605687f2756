// PyTorch checkpoints read in C++: fixtures written by PyTorch itself
// (tests/fixtures_src/make_pytorch_checkpoints.py) import and match PyTorch's outputs; every dtype,
// layout and format variant rebuilds bit-exactly; malicious and malformed files give clear errors.
#include <gmock/gmock.h>

#include <cstring>
#include <fstream>

#include "ds2rt/builder.h"
#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "importers/config_evidence.h"
#include "importers/pytorch/architecture.h"
#include "importers/pytorch/tensor_rebuild.h"
#include "importers/pytorch/torch_file.h"
#include "importers/pickle/unpickler.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;
namespace pt = ds2rt::pytorch;

std::string pytorchData(const std::string& name) { return dataPath("pytorch/" + name); }

std::string readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string writeScratch(const std::string& name, const std::string& bytes) {
  const std::string path = scratch(name);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}


const ConfigOrigin& origin(const ImportedModel& m, const std::string& field) {
  for (const auto& o : m.origins)
    if (o.field == field) return o;
  throw std::runtime_error("no origin for " + field);
}


// ---- Importing DeepSpeech2 checkpoints ----------------------------------------------------------

class CheckpointParity : public testing::TestWithParam<std::string> {};

TEST_P(CheckpointParity, MatchesPyTorch) {
  const std::string file = GetParam();
  const ImportedModel imported = importModel(pytorchData(file));
  const WeightStore io = WeightStore::load(pytorchData(file.substr(0, file.find('.')) + ".io.safetensors"));
  for (const bool optimize : {false, true}) {
    const Engine engine = Builder({.optimize = optimize}).build(imported.model.createNetwork());
    auto ctx = engine.createContext();
    const auto out = ctx.run({{"features", io.get("input")}, {"lengths", io.get("input_lengths")}});
    ASSERT_EQ(toVector(out.at("output_lengths")), toVector(io.get("output_lengths")));
    const double error = relativeL2(validFrames(out.at("probs"), out.at("output_lengths")),
                                    validFrames(io.get("probs"), io.get("output_lengths")));
    EXPECT_LT(error, 1e-4) << file << (optimize ? " optimized" : "");
    RecordProperty(optimize ? "relative_l2_optimized" : "relative_l2", cat(error));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CheckpointParity, testing::Values("gru_uni_l2_h12_ctx3.ckpt", "lstm_bi_l2_h8.pth"),
                         [](const auto& info) { return info.param.substr(0, info.param.find('.')); });

TEST(PyTorchImport, LightningCheckpointArchitectureIsRead) {
  const ImportedModel m = importModel(pytorchData("gru_uni_l2_h12_ctx3.ckpt"));
  EXPECT_EQ(m.format, "PyTorch Lightning checkpoint (torch.save zip archive)");
  const DeepSpeech2Config& c = m.model.config();
  EXPECT_EQ(c.rnn_type, "gru");
  EXPECT_EQ(c.hidden_size, 12);
  EXPECT_EQ(c.hidden_layers, 2);
  EXPECT_FALSE(c.bidirectional);
  EXPECT_EQ(c.lookahead_context, 3);
  EXPECT_EQ(c.labels, importers::deepspeechPytorchLabels());
  EXPECT_EQ(c.spect.sample_rate, 8000);
  EXPECT_EQ(c.spect.window, "hamming");
  for (const auto& o : m.origins) EXPECT_EQ(o.kind, ConfigOrigin::Kind::kRead) << o.field;
  EXPECT_EQ(origin(m, "rnn_type").detail, "hyper_parameters.model_cfg.rnn_type");  // an RNNType enum member
  EXPECT_THAT(origin(m, "bidirectional").detail, HasSubstr("UniDirectionalConfig"));  // the DictConfig's type
  // Optimizer state and callbacks stay unread: only the network's tensors, in their stored fp16.
  EXPECT_EQ(m.model.weights().get("rnns.0.rnn.weight_ih_l0").dtype(), DataType::kFloat16);
  EXPECT_FALSE(m.model.weights().contains("exp_avg"));
}

TEST(PyTorchImport, PlainStateDictArchitectureIsInferred) {
  const ImportedModel m = importModel(pytorchData("lstm_bi_l2_h8.pth"));
  EXPECT_EQ(m.format, "PyTorch state_dict (torch.save zip archive)");
  const DeepSpeech2Config& c = m.model.config();
  EXPECT_EQ(c.rnn_type, "lstm");
  EXPECT_EQ(c.hidden_size, 8);
  EXPECT_EQ(c.hidden_layers, 2);
  EXPECT_TRUE(c.bidirectional);
  EXPECT_EQ(c.spect.sample_rate, 8000);
  for (const char* field : {"rnn_type", "hidden_size", "hidden_layers", "bidirectional", "spect_cfg.sample_rate"})
    EXPECT_EQ(origin(m, field).kind, ConfigOrigin::Kind::kInferred) << field;
  EXPECT_EQ(origin(m, "labels").kind, ConfigOrigin::Kind::kDefault);  // 29 classes: deepspeech.pytorch's labels
  EXPECT_THAT(origin(m, "rnn_type").detail, HasSubstr("4 gates"));
}

TEST(PyTorchImport, AsANetworkCarriesLabelsAndFeatures) {
  ImportedNetwork n = importNetwork(pytorchData("gru_uni_l2_h12_ctx3.ckpt"), {}, {.log_softmax = true});
  EXPECT_THAT(n.format, HasSubstr("Lightning"));
  EXPECT_THAT(n.architecture, HasSubstr("gru, 2 layers of 12, unidirectional, lookahead context 3"));
  EXPECT_EQ(n.labels.size(), 29u);
  EXPECT_TRUE(n.spect_known);
  const Engine engine = Builder(BuilderConfig{}).build(std::move(n.network));
  const auto outputs = engine.outputNames();
  EXPECT_NE(std::find(outputs.begin(), outputs.end(), "log_probs"), outputs.end());
  EXPECT_EQ(engine.tensorShape("features")[2], n.spect.frequencyBins());
  EXPECT_EQ(engine.tensorShape("features")[3], kDynamic);
  EXPECT_THAT(errorOf([&] { engine.tensorShape("nope"); }), HasSubstr("no input or output 'nope'"));
}

TEST(PyTorchImport, InferenceAgreesWithHyperParameters) {
  const pt::TorchFile file = pt::TorchFile::open(pytorchData("gru_uni_l2_h12_ctx3.ckpt"));
  importers::ConfigEvidence e;
  pt::readHyperParameters(file.root(), e);
  std::map<std::string, Shape> shapes;
  const pt::Dict* sd = pt::as<pt::Dict>(*pt::find(*pt::as<pt::Dict>(file.root()), "state_dict"));
  ASSERT_NE(sd, nullptr);
  for (const auto& [k, v] : sd->entries) shapes.emplace(*pt::asString(k), pt::as<pt::TensorRef>(v)->size);
  pt::inferFromShapes(shapes, e);
  EXPECT_EQ(e.rnn_type.read, e.rnn_type.inferred);
  EXPECT_EQ(e.hidden_size.read, e.hidden_size.inferred);
  EXPECT_EQ(e.hidden_layers.read, e.hidden_layers.inferred);
  EXPECT_EQ(e.bidirectional.read, e.bidirectional.inferred);
  EXPECT_EQ(e.lookahead_context.read, e.lookahead_context.inferred);
  EXPECT_EQ(e.sample_rate.read, e.sample_rate.inferred);
  EXPECT_EQ(e.num_classes.inferred, 29);
}

TEST(PyTorchImport, ConvertedModelRoundTrips) {
  const ImportedModel m = importModel(pytorchData("gru_uni_l2_h12_ctx3.ckpt"));
  const std::string path = scratch("converted.safetensors");
  m.model.save(path);
  const ImportedModel back = importModel(path);
  EXPECT_EQ(back.format, "ds2rt model");
  EXPECT_EQ(back.model.config().toJson(), m.model.config().toJson());
  ASSERT_EQ(back.model.weights().names(), m.model.weights().names());
  for (const auto& name : m.model.weights().names()) {
    const HostTensor &a = m.model.weights().get(name), &b = back.model.weights().get(name);
    ASSERT_EQ(a.dtype(), b.dtype()) << name;
    ASSERT_EQ(a.shape(), b.shape()) << name;
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.bytes()), 0) << name;
  }
  EXPECT_EQ(loadModel(pytorchData("lstm_bi_l2_h8.pth")).config().hidden_size, 8);  // what build/run/inspect use
}

TEST(PyTorchImport, OptionsOverrideTheFile) {
  ImportOptions o;
  o.labels = std::vector<std::string>(29, "x");
  o.sample_rate = 8100;  // same spectrogram size as 8000 Hz
  const ImportedModel m = importModel(pytorchData("lstm_bi_l2_h8.pth"), o);
  EXPECT_EQ(m.model.config().labels, *o.labels);
  EXPECT_EQ(m.model.config().spect.sample_rate, 8100);
  EXPECT_EQ(origin(m, "labels").kind, ConfigOrigin::Kind::kGiven);
  EXPECT_EQ(origin(m, "spect_cfg.sample_rate").kind, ConfigOrigin::Kind::kGiven);
  m.model.createNetwork();

  ImportOptions wrong;
  wrong.hidden_size = 16;
  EXPECT_THAT(errorOf([&] { importModel(pytorchData("lstm_bi_l2_h8.pth"), wrong).model.createNetwork(); }),
              testing::AllOf(HasSubstr("tensor 'rnns.0.rnn."), HasSubstr("expected [64]")));
  ImportOptions few_labels;
  few_labels.labels = {"_", "a"};
  EXPECT_THAT(errorOf([&] { importModel(pytorchData("gru_uni_l2_h12_ctx3.ckpt"), few_labels); }),
              HasSubstr("2 labels given, but the output layer has 29 classes"));
  ImportOptions relabel;  // a ds2rt model's configuration can be overridden too
  relabel.labels = std::vector<std::string>(29, "y");
  EXPECT_EQ(importModel(dataPath("parity/gru_bi_l3_h24/model.safetensors"), relabel).model.config().labels[0], "y");
}

TEST(PyTorchImport, ResolveRules) {
  importers::ConfigEvidence e;
  e.rnn_type.setInferred("gru", "w");
  e.hidden_size.setRead(1024, "hyper_parameters.model_cfg.hidden_size");
  e.hidden_size.setInferred(12, "rnns.0.rnn.weight_hh_l0 [36, 12]");
  e.hidden_layers.setInferred(2, "rnns");
  e.bidirectional.setInferred(true, "reverse");
  e.num_classes.setInferred(40, "fc.0.module.1.weight [40, 12]");
  e.sample_rate.setInferred(16000, "w");
  const std::string conflict = errorOf([&] { importers::resolveConfig(e, {}, "m.pth"); });
  EXPECT_THAT(conflict, HasSubstr("hidden_size = 1024 (hyper_parameters.model_cfg.hidden_size)"));
  EXPECT_THAT(conflict, HasSubstr("the weights say 12"));
  EXPECT_THAT(conflict, HasSubstr("--hidden-size"));
  ImportOptions o;
  o.hidden_size = 12;  // the caller settles it
  EXPECT_THAT(errorOf([&] { importers::resolveConfig(e, o, "m.pth"); }),
              HasSubstr("40 output classes (fc.0.module.1.weight [40, 12]) and the file names no labels; give them with --labels"));
  o.labels = std::vector<std::string>(40, "z");
  EXPECT_EQ(importers::resolveConfig(e, o, "m.pth").config.labels.size(), 40u);
  e.rnn_type = {};
  EXPECT_THAT(errorOf([&] { importers::resolveConfig(e, o, "m.pth"); }), HasSubstr("rnn_type from the file; give it with --rnn-type"));
}

TEST(PyTorchImport, DeepSpeechPytorchV2Package) {
  const pt::TorchFile file = pt::TorchFile::open(pytorchData("v2_package.pt"));
  EXPECT_EQ(file.format(), "legacy torch.save format");
  importers::ConfigEvidence e;
  pt::readHyperParameters(file.root(), e);
  EXPECT_EQ(e.rnn_type.read, "lstm");
  EXPECT_EQ(e.hidden_size.read, 8);
  EXPECT_EQ(e.hidden_layers.read, 2);
  EXPECT_EQ(e.bidirectional.read, true);
  EXPECT_EQ(e.sample_rate.read, 8000);
  EXPECT_EQ(e.window.read, "hamming");
  EXPECT_EQ(e.labels.read, importers::deepspeechPytorchLabels());
  EXPECT_THAT(errorOf([&] { importModel(pytorchData("v2_package.pt")); }), HasSubstr("holds no DeepSpeech2 state_dict"));
}

// ---- Tensors: every dtype, layout and file variant, against PyTorch's own contiguous copies -------

void collectTensors(const pt::Value& v, const std::string& path, std::map<std::string, const pt::TensorRef*>& out,
                    int depth = 0) {
  ASSERT_LT(depth, 16);
  if (const auto* t = pt::as<pt::TensorRef>(v)) {
    out[path] = t;
  } else if (const auto* d = pt::as<pt::Dict>(v)) {
    for (const auto& [k, item] : d->entries) {
      const std::string key = pt::asString(k) ? std::string(*pt::asString(k)) : cat(*pt::asInt(k));
      collectTensors(item, path.empty() ? key : path + "." + key, out, depth + 1);
    }
  } else if (const auto* s = pt::as<pt::Sequence>(v)) {
    for (size_t i = 0; i < s->items.size(); ++i) collectTensors(s->items[i], cat(path, ".", i), out, depth + 1);
  }
}

void expectTensorsMatch(const std::string& file, size_t expected_count) {
  SCOPED_TRACE(file);
  const pt::TorchFile f = pt::TorchFile::open(pytorchData(file));
  const WeightStore expected = WeightStore::load(pytorchData("tensors_expected.safetensors"));
  std::map<std::string, const pt::TensorRef*> tensors;
  collectTensors(f.root(), "", tensors);
  ASSERT_EQ(tensors.size(), expected_count);
  for (const auto& [name, ref] : tensors) {
    const HostTensor got = f.tensor(*ref, name), want = expected.get(name);
    ASSERT_EQ(got.dtype(), want.dtype()) << name;
    ASSERT_EQ(got.shape(), want.shape()) << name;
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.bytes()), 0) << name;
  }
}

TEST(PyTorchTensors, EveryDtypeAndLayout) {
  const size_t all = WeightStore::load(pytorchData("tensors_expected.safetensors")).names().size();
  expectTensorsMatch("tensors.pth", all);         // protocol 2
  expectTensorsMatch("tensors_p4.pth", all);      // protocol 4: STACK_GLOBAL, MEMOIZE, FRAME
  expectTensorsMatch("tensors_legacy.pt", all);   // the legacy (non-zip) format
  expectTensorsMatch("tensors_big_endian.pth", 3);  // byte-swapped storages
}

TEST(PyTorchTensors, SharedStoragesAreReadOnceAndPlainValuesKept) {
  const pt::TorchFile f = pt::TorchFile::open(pytorchData("tensors.pth"));
  const pt::Dict& root = *pt::as<pt::Dict>(f.root());
  const HostTensor a = f.tensor(*pt::as<pt::TensorRef>(*pt::find(root, "shared_a")), "shared_a");
  const HostTensor b = f.tensor(*pt::as<pt::TensorRef>(*pt::find(root, "shared_b")), "shared_b");
  EXPECT_EQ(b.data<float>(), a.data<float>() + 6);  // two views of one storage, no copies
  const auto& list = *pt::as<pt::Sequence>(*pt::find(*pt::as<pt::Dict>(*pt::find(root, "nested")), "list"));
  ASSERT_EQ(list.items.size(), 7u);
  EXPECT_EQ(pt::asInt(list.items[1]), 1);
  EXPECT_EQ(pt::asNumber(list.items[2]), 2.5);
  EXPECT_EQ(pt::asString(list.items[3]), "text");
  EXPECT_TRUE(pt::isNone(list.items[4]));
  EXPECT_EQ(std::get<bool>(list.items[5]), true);
  EXPECT_EQ(pt::as<pt::Text>(list.items[6])->data, "raw");  // bytes: _codecs.encode under protocol 2
}

TEST(PyTorchTensors, ViewsOutsideTheirStorageAreRefused) {
  pt::Global type{"torch", "FloatStorage", pt::GlobalKind::kStorageType, DataType::kFloat32, 4};
  pt::StorageRef storage{&type, "0", "cpu", 6};
  const auto bytes = std::make_shared<const std::vector<uint8_t>>(24);
  EXPECT_EQ(toVector(pt::rebuildTensor({&storage, &type, 2, {2, 2}, {2, 1}}, bytes, false, "t")),
            std::vector<float>(4, 0.0f));
  EXPECT_THAT(errorOf([&] { pt::rebuildTensor({&storage, &type, 3, {2, 2}, {2, 1}}, bytes, false, "t"); }),
              HasSubstr("reaches past the end of storage '0'"));
  EXPECT_THAT(errorOf([&] { pt::rebuildTensor({&storage, &type, 0, {1 << 20, 1 << 20}, {0, 0}}, bytes, false, "t"); }),
              HasSubstr("repeats its 6-element storage"));
  EXPECT_THAT(errorOf([&] { pt::rebuildTensor({&storage, &type, 0, {int64_t{1} << 62, 4}, {1, 1}}, bytes, false, "t"); }),
              HasSubstr("64 bits"));
  pt::StorageRef short_storage{&type, "1", "cpu", 7};  // declares more than the 24 bytes there are
  EXPECT_THAT(errorOf([&] { pt::rebuildTensor({&short_storage, &type, 0, {1}, {1}}, bytes, false, "t"); }),
              HasSubstr("holds 24 bytes, but the checkpoint declares 28"));
}

// ---- Malicious checkpoints: refused, naming the global ---------------------------------------------

TEST(PyTorchSecurity, ForbiddenGlobalsAreRefused) {
  const std::pair<const char*, const char*> cases[] = {
      {"evil_os_system.pth", "os.system"},         {"evil_posix_system.pt", "posix.system"},
      {"evil_eval_legacy.pt", "__builtin__.eval"}, {"evil_exec.pth", "__builtin__.exec"},
      {"evil_subprocess.pth", "subprocess.Popen"}, {"whole_module.pth", "torch.nn.modules.linear.Linear"},
  };
  for (const auto& [file, global] : cases) {
    const std::string error = errorOf([&] { importModel(pytorchData(file)); });
    EXPECT_THAT(error, HasSubstr("refusing to load")) << file;
    EXPECT_THAT(error, HasSubstr(std::string("references ") + global)) << file;
  }
  EXPECT_THAT(errorOf([&] { importModel(pytorchData("whole_module.pth")); }), HasSubstr("save its state_dict()"));
}

pt::Value unpickleString(const std::string& bytes, pt::Arena& arena) {
  return pt::unpickle({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, arena, "test.pkl").value;
}

std::string unpickleError(const std::string& bytes) {
  pt::Arena arena;
  return errorOf([&] { unpickleString(bytes, arena); });
}

TEST(PyTorchSecurity, CallsAreOnlyEmulated) {
  using std::string_literals::operator""s;
  // protocol 4: STACK_GLOBAL 'builtins' 'eval', called
  EXPECT_THAT(unpickleError("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93\x8c\x03" "1+1\x85R."s),
              HasSubstr("references builtins.eval"));
  // an allowlisted type may be named but not called
  EXPECT_THAT(unpickleError("\x80\x02" "c__builtin__\nfloat\nX\x01\x00\x00\x00" "1\x85R."s), HasSubstr("calls __builtin__.float"));
  // getattr only looks up enum members
  EXPECT_THAT(unpickleError("\x80\x02" "c__builtin__\ngetattr\nctyping\nAny\nX\x01\x00\x00\x00x\x86R."s),
              HasSubstr("calls builtins.getattr on typing.Any"));
  EXPECT_THAT(unpickleError("\x80\x02\x82\x01."s), HasSubstr("copyreg extension registry"));
  // enum members by value, by getattr and by qualified name all read as inert records
  pt::Arena arena;
  const pt::Value member = unpickleString(
      "\x80\x04\x8c\x18" "deepspeech_pytorch.enums\x8c\x0b" "RNNType.gru\x93."s, arena);
  ASSERT_NE(pt::as<pt::Object>(member), nullptr);
  EXPECT_EQ(pt::as<pt::Object>(member)->member, "gru");
}

// ---- Malformed files: clear errors, no crash -------------------------------------------------------

TEST(PyTorchMalformed, CorruptPickles) {
  using std::string_literals::operator""s;
  EXPECT_THAT(unpickleError("\x80\x02."s), HasSubstr("stack underflow"));
  EXPECT_THAT(unpickleError("\x80\x02h\x05."s), HasSubstr("memo entry 5 was never stored"));
  EXPECT_THAT(unpickleError("\x80\x02X\xff\x00\x00\x00" "ab"s), HasSubstr("needs 255 more bytes"));
  EXPECT_THAT(unpickleError("\x80\x09."s), HasSubstr("pickle protocol 9"));
  EXPECT_THAT(unpickleError("\x80\x02}K\x01" "a."s), HasSubstr("APPEND on a dict"));
  EXPECT_THAT(unpickleError("\x80\x02K\x01K\x02."s), HasSubstr("1 values left on the stack"));
  EXPECT_THAT(unpickleError("\x80\x02(K\x01"s), HasSubstr("truncated"));
  EXPECT_THAT(unpickleError("\x80\x02(K\x01."s), HasSubstr("MARK without a matching opcode"));
  // Deep nesting needs no recursion, building or tearing down.
  const int depth = 100000;
  pt::Arena arena;
  const pt::Value nested = unpickleString("\x80\x02" + std::string(depth, ']') + std::string(depth - 1, 'a') + ".", arena);
  EXPECT_EQ(pt::as<pt::Sequence>(nested)->items.size(), 1u);
}

TEST(PyTorchMalformed, FilesGiveClearErrors) {
  const std::string pth = readBytes(pytorchData("lstm_bi_l2_h8.pth"));
  const std::string legacy = readBytes(pytorchData("tensors_legacy.pt"));
  EXPECT_THAT(errorOf([&] { importModel(writeScratch("half.pth", pth.substr(0, pth.size() / 2))); }),
              HasSubstr("truncated or corrupt"));
  EXPECT_THAT(errorOf([&] { importModel(writeScratch("cut.pth", pth.substr(0, pth.size() - 10))); }),
              HasSubstr("truncated or corrupt"));
  EXPECT_THAT(errorOf([&] { pt::TorchFile::open(writeScratch("cut.pt", legacy.substr(0, legacy.size() - 100))); }),
              HasSubstr("truncated"));
  EXPECT_THAT(errorOf([&] { importModel(writeScratch("magic.pth", "XXXX" + pth.substr(4))); }),
              HasSubstr("is not a model file ds2rt reads"));
  EXPECT_THAT(errorOf([&] { pt::TorchFile::open(writeScratch("magic2.pth", "XXXX" + pth.substr(4))); }),
              HasSubstr("is not a PyTorch checkpoint"));
  EXPECT_THAT(errorOf([&] { importModel(writeScratch("empty.pth", "")); }), HasSubstr("is not a model file"));
  EXPECT_THAT(errorOf([&] { importModel(pytorchData("corrupt_pickle.pth")); }), HasSubstr("corrupt pickle"));
  EXPECT_THAT(errorOf([&] { importModel(pytorchData("torchscript.pt")); }), HasSubstr("TorchScript"));
  EXPECT_THAT(errorOf([&] { importModel(pytorchData("legacy_tar.pt")); }), HasSubstr("re-save it with torch >= 1.6"));
  EXPECT_THAT(errorOf([&] { importModel(pytorchData("tensors.pth")); }), HasSubstr("holds no DeepSpeech2 state_dict"));

  const pt::TorchFile missing = pt::TorchFile::open(pytorchData("missing_storage.pth"));
  const pt::Dict& root = *pt::as<pt::Dict>(missing.root());
  missing.tensor(*pt::as<pt::TensorRef>(*pt::find(root, "a")), "a");
  const std::string error = errorOf([&] { missing.tensor(*pt::as<pt::TensorRef>(*pt::find(root, "b")), "b"); });
  EXPECT_THAT(error, HasSubstr("tensor 'b'"));
  EXPECT_THAT(error, HasSubstr("archive/data/1' is missing"));
}

}  // namespace
}  // namespace ds2rt::test
