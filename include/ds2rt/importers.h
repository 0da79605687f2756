// Bring a trained DeepSpeech2 model from the file its framework wrote: importModel(path) finds the
// format from the file's content and returns a DeepSpeech2Model plus where each architecture field
// came from (read from the file, inferred from the weights, or given by the caller).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ds2rt/deepspeech2.h"

namespace ds2rt {

// Architecture fields the caller knows better than the file: each one set here wins over what an
// importer reads or infers (the ds2rt command line's --rnn-type, --hidden-size, ... flags).
struct ImportOptions {
  std::optional<std::string> rnn_type;  // "lstm" | "gru" | "rnn"
  std::optional<int> hidden_size;
  std::optional<int> hidden_layers;
  std::optional<bool> bidirectional;
  std::optional<int> lookahead_context;
  std::optional<std::vector<std::string>> labels;
  std::optional<int> sample_rate;

  bool empty() const;
};

// Where one field of the imported model's configuration came from.
struct ConfigOrigin {
  enum class Kind { kRead, kInferred, kGiven, kDefault };
  std::string field;   // "rnn_type", "hidden_size", "labels", "spect_cfg.sample_rate", ...
  std::string value;   // as printed: "gru", "12", "29 labels"
  Kind kind;
  std::string detail;  // "hyper_parameters.model_cfg.rnn_type", "rnns.0.rnn.weight_hh_l0 [36, 12]: 3 gates"
};
const char* toString(ConfigOrigin::Kind kind);  // "read", "inferred", "given", "default"

struct ImportedModel {
  DeepSpeech2Model model;
  std::string format;                 // "PyTorch Lightning checkpoint (torch.save zip archive)", ...
  std::vector<ConfigOrigin> origins;  // one per configuration field
  std::vector<std::string> notes;     // anything else worth telling: keys skipped, prefixes removed
};

// Any supported model file: a ds2rt model (.safetensors with ds2rt.config metadata, or its .json
// config) or a PyTorch checkpoint (.pth, .pt, .ckpt; zip or legacy format). Later importers (ONNX,
// Keras, PaddleSpeech, .wts) join the same dispatch. Throws ds2rt::Error naming the file and the
// field or tensor at fault; an unknown format lists the supported ones.
ImportedModel importModel(const std::string& path, const ImportOptions& options = {});
// importModel(path, options).model: what `ds2rt build`, `run` and `inspect` open.
DeepSpeech2Model loadModel(const std::string& path, const ImportOptions& options = {});
// One line per format importModel reads, for help texts.
std::vector<std::string> supportedModelFormats();

// PyTorch checkpoints, read in C++ (no Python): torch.save zip archives and the legacy format,
// holding a state_dict with deepspeech.pytorch's names (optionally under a prefix such as
// "model."), a Lightning checkpoint ({'state_dict', 'hyper_parameters': {labels, model_cfg,
// spect_cfg}, ...}) or deepspeech.pytorch's older package dict. The pickle is read by a restricted
// unpickler: a checkpoint naming any callable beyond tensor rebuilding and plain containers
// (os.system, builtins.eval, a whole pickled nn.Module, ...) is refused, never run.
// The architecture comes from the hyper-parameters where present, else from tensor names and shapes.
ImportedModel importPyTorch(const std::string& path, const ImportOptions& options = {});
DeepSpeech2Model importPyTorchCheckpoint(const std::string& path, const ImportOptions& options = {});

}  // namespace ds2rt
