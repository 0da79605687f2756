// importModel: which importer reads a file, decided by its content (then its name).
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "importers/config_evidence.h"
#include "importers/paddle/pdparams.h"
#include "importers/onnx/onnx_file.h"
#include "importers/keras/keras_file.h"
#include "importers/pytorch/torch_file.h"
#include "importers/wts/wts.h"

namespace ds2rt {

namespace {

struct FileHead {
  std::string path;
  std::string extension;       // lower case, with the dot
  std::vector<uint8_t> bytes;  // the first 512 bytes (fewer for short files)
};

std::vector<uint8_t> readWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool isDs2rtModel(const FileHead& f) {
  // safetensors: a little-endian u64 header length, then the JSON header.
  return f.extension == ".json" || f.extension == ".safetensors" ||
         (f.bytes.size() > 8 && f.bytes[8] == '{' && !pytorch::TorchFile::looksLikeTorchFile(f.bytes));
}

bool isPyTorch(const FileHead& f) { return pytorch::TorchFile::looksLikeTorchFile(f.bytes); }

bool isPaddle(const FileHead& f) { return paddle::looksLikePdparams(f.bytes, f.extension); }

// Content decides: a ModelProto with a graph parses. A .onnx file is claimed even when it does not
// parse, so that the ONNX reader says what is wrong with it.
bool isOnnx(const FileHead& f) {
  if (f.extension == ".onnx") return true;
  // A ModelProto starts with a varint or length-delimited field; skip parsing what cannot be one.
  if (f.bytes.empty() || ((f.bytes[0] & 7) != 0 && (f.bytes[0] & 7) != 2)) return false;
  return onnx_import::looksLikeOnnx(readWhole(f.path));
}

bool isKeras(const FileHead& f) {
  return keras::KerasFile::looksLikeKerasArchive(f.path, f.bytes) || keras::KerasFile::looksLikeLegacyH5(f.path, f.bytes);
}

bool isWts(const FileHead& f) { return f.extension == ".wts" || wts::looksLikeWts(f.bytes); }

// A ds2rt model needs no import; options still override its configuration.
ImportedModel importDs2rt(const std::string& path, const ImportOptions& options) {
  DeepSpeech2Model model = DeepSpeech2Model::load(path);
  const DeepSpeech2Config& c = model.config();
  importers::ConfigEvidence e;
  const std::string from = "ds2rt.config";
  e.rnn_type.setRead(c.rnn_type, from);
  e.hidden_size.setRead(c.hidden_size, from);
  e.hidden_layers.setRead(c.hidden_layers, from);
  e.bidirectional.setRead(c.bidirectional, from);
  if (!c.bidirectional) e.lookahead_context.setRead(c.lookahead_context, from);
  e.labels.setRead(c.labels, from);
  e.sample_rate.setRead(c.spect.sample_rate, from);
  e.window_size.setRead(c.spect.window_size, from);
  e.window_stride.setRead(c.spect.window_stride, from);
  e.window.setRead(c.spect.window, from);
  importers::ResolvedConfig resolved = importers::resolveConfig(e, options, path);
  if (!options.empty()) model = DeepSpeech2Model(std::move(resolved.config), model.weights());
  return {std::move(model), "ds2rt model", std::move(resolved.origins), {}};
}

// A DeepSpeech2 format fills `import`; a graph format (its network need not be deepspeech.pytorch's)
// fills `import_network` instead.
struct Importer {
  const char* description;
  bool (*recognises)(const FileHead& head);
  ImportedModel (*import)(const std::string& path, const ImportOptions& options);
  // network_options matter to graph formats too: log_softmax asks for "log_probs" instead of "probs".
  ImportedNetwork (*import_network)(const std::string& path, const ImportOptions& options,
                                    const DeepSpeech2NetworkOptions& network_options) = nullptr;
};

// New formats add a row; a zip-based one (.keras) must come before PyTorch, which claims every zip,
// and so must Paddle's .pdparams, a pickle as PyTorch's legacy format is.
constexpr Importer kImporters[] = {
    {"ds2rt model: .safetensors with ds2rt.config metadata, or its .json config", isDs2rtModel, importDs2rt},
    {"Keras / TensorFlow 2 model: .keras archive (Keras 3) or legacy .h5 (model.save)", isKeras, nullptr, importKeras},
    {"PaddleSpeech DeepSpeech2 .pdparams (paddle.save of the model's state_dict; offline or online, GRU or LSTM)",
     isPaddle, nullptr,
     [](const std::string& path, const ImportOptions& options, const DeepSpeech2NetworkOptions&) {
       return importPaddleSpeech(path, options);  // the graph ends in a softmax of its own
     }},
    {"PyTorch checkpoint: .pth, .pt or .ckpt from torch.save (zip archive or legacy format): a state_dict, a "
     "Lightning checkpoint or a deepspeech.pytorch package",
     isPyTorch, importPyTorch},
    {"TensorRT .wts text weights (TensorRT samples' name type count hex..., or gen_wts.py's name count hex...) "
     "under deepspeech.pytorch state_dict names",
     isWts, importWts},
    {"ONNX model (.onnx): a graph of the operators torch.onnx.export writes for DeepSpeech2-style networks", isOnnx,
     nullptr,
     [](const std::string& path, const ImportOptions& options, const DeepSpeech2NetworkOptions&) {
       return importOnnx(path, options);  // the graph decides between Softmax and LogSoftmax
     }},
};

FileHead readHead(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open '", path, "'");
  FileHead head;
  head.path = path;
  head.bytes.resize(512);
  in.read(reinterpret_cast<char*>(head.bytes.data()), static_cast<std::streamsize>(head.bytes.size()));
  head.bytes.resize(static_cast<size_t>(in.gcount()));
  head.path = path;
  head.extension = std::filesystem::path(path).extension().string();
  for (char& ch : head.extension) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return head;
}

}  // namespace

bool ImportOptions::empty() const {
  return !rnn_type && !hidden_size && !hidden_layers && !bidirectional && !lookahead_context && !labels && !sample_rate;
}

const char* toString(ConfigOrigin::Kind kind) {
  switch (kind) {
    case ConfigOrigin::Kind::kRead: return "read";
    case ConfigOrigin::Kind::kInferred: return "inferred";
    case ConfigOrigin::Kind::kGiven: return "given";
    case ConfigOrigin::Kind::kDefault: return "default";
  }
  return "?";
}

const Importer& findImporter(const std::string& path) {
  const FileHead head = readHead(path);
  for (const Importer& importer : kImporters)
    if (importer.recognises(head)) return importer;
  std::string formats;
  for (const std::string& f : supportedModelFormats()) formats += "\n  " + f;
  fail("'", path, "' is not a model file ds2rt reads. Supported:", formats);
}

ImportedModel importModel(const std::string& path, const ImportOptions& options) {
  const Importer& importer = findImporter(path);
  check(importer.import != nullptr, "'", path, "' is a ", importer.description,
        ": a graph, not a deepspeech.pytorch model; open it as a network (importNetwork, ds2rt build/run/inspect)");
  return importer.import(path, options);
}

ImportedNetwork importNetwork(const std::string& path, const ImportOptions& options,
                              const DeepSpeech2NetworkOptions& network_options) {
  const Importer& importer = findImporter(path);
  if (importer.import_network != nullptr) {
    ImportedNetwork imported = importer.import_network(path, options, network_options);
    if (!imported.labels.empty())
      setTranscriptionMetadata(imported.network, imported.labels, imported.spect_known ? &imported.spect : nullptr);
    return imported;
  }
  ImportedModel imported = importer.import(path, options);
  const DeepSpeech2Config& c = imported.model.config();
  std::string architecture = cat(c.rnn_type, ", ", c.hidden_layers, " layers of ", c.hidden_size, ", ",
                                 c.bidirectional ? "bidirectional" : "unidirectional");
  if (!c.bidirectional) architecture += cat(", lookahead context ", c.lookahead_context);
  return {imported.model.createNetwork(network_options),
          std::move(imported.format),
          std::move(architecture),
          c.labels,
          c.spect,
          true,
          std::move(imported.notes)};
}

DeepSpeech2Model loadModel(const std::string& path, const ImportOptions& options) {
  return importModel(path, options).model;
}

std::vector<std::string> supportedModelFormats() {
  std::vector<std::string> out;
  for (const Importer& importer : kImporters) out.emplace_back(importer.description);
  return out;
}

}  // namespace ds2rt
