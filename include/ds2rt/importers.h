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
  // .wts only: the gate layout of the recurrent tensors (state_dict names, gates in another
  // framework's order) and TF1 LSTMCell's forget_bias, added to the forget-gate input bias.
  std::optional<GateLayout> gate_layout;
  std::optional<float> forget_bias;

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
// config), a PyTorch checkpoint (.pth, .pt, .ckpt; zip or legacy format) or a .wts file. A graph
// format (ONNX, Keras, PaddleSpeech) is refused here: open it with importNetwork. Throws
// ds2rt::Error naming the file and the field or tensor at fault; an unknown format lists the
// supported ones.
ImportedModel importModel(const std::string& path, const ImportOptions& options = {});
// importModel(path, options).model.
DeepSpeech2Model loadModel(const std::string& path, const ImportOptions& options = {});
// One line per format importModel reads, for help texts.
std::vector<std::string> supportedModelFormats();

// A model file as a network ready for the Builder, whatever its format. DeepSpeech2 formats (ds2rt,
// PyTorch, .wts) come through DeepSpeech2Model::createNetwork; graph formats (ONNX, Keras,
// PaddleSpeech) are translated node by node and need not have deepspeech.pytorch's exact shape.
// Networks meant for transcription take "features" (N x 1 x bins x T) and "lengths" and give
// "probs" (or "log_probs") and "output_lengths", as DeepSpeech2Model::createNetwork's do.
struct ImportedNetwork {
  NetworkDefinition network;
  std::string format;
  std::string architecture;  // one line: "lstm, 5 layers of 1024, bidirectional, 29 labels, 16000 Hz"
  // What transcription needs beyond the network, where the file says (else empty / defaults).
  std::vector<std::string> labels;
  SpectrogramConfig spect;
  bool spect_known = false;
  std::vector<std::string> notes;
};
ImportedNetwork importNetwork(const std::string& path, const ImportOptions& options = {},
                              const DeepSpeech2NetworkOptions& network_options = {});

// PyTorch checkpoints, read in C++ (no Python): torch.save zip archives and the legacy format,
// holding a state_dict with deepspeech.pytorch's names (optionally under a prefix such as
// "model."), a Lightning checkpoint ({'state_dict', 'hyper_parameters': {labels, model_cfg,
// spect_cfg}, ...}) or deepspeech.pytorch's older package dict. The pickle is read by a restricted
// unpickler: a checkpoint naming any callable beyond tensor rebuilding and plain containers
// (os.system, builtins.eval, a whole pickled nn.Module, ...) is refused, never run.
// The architecture comes from the hyper-parameters where present, else from tensor names and shapes.
ImportedModel importPyTorch(const std::string& path, const ImportOptions& options = {});
DeepSpeech2Model importPyTorchCheckpoint(const std::string& path, const ImportOptions& options = {});

// PaddleSpeech's DeepSpeech2 (offline: bidirectional, or online: forward; GRU or LSTM; each recurrent
// layer followed by a LayerNorm; optional fc layers; the CTC projection) from the .pdparams that
// paddle.save(model.state_dict()) writes. The pickle is read by the restricted unpickler, which
// here rebuilds numpy arrays and refuses every other global. The architecture is inferred from the
// parameter names and shapes; inputs "features" (N x 1 x bins x T) and "lengths", outputs "probs"
// (N x T' x vocabulary) and "output_lengths". A model.yaml (or <stem>.yaml) beside the file gives
// the feature bins (feat_dim) where the weights allow several; labels come from options.labels, else
// from a vocab.txt beside the file with one token per output. The features themselves (PaddleSpeech
// trains on Kaldi fbank + CMVN) are not described: spect_known stays false.
ImportedNetwork importPaddleSpeech(const std::string& path, const ImportOptions& options = {});

// TensorRT .wts text weights: line 1 the tensor count, then one line per tensor. Two flavours:
//   kTensorRT (TensorRT samples, dumpTFWts.py):  name type count hex hex ...  (type 0 float32, 1 float16)
//   kPyTorch  (the common gen_wts.py):           name count hex hex ...       (float32 only)
// Hex words are the IEEE bits printed big-endian ("3f800000" = 1.0). readWts detects the flavour
// (optionally reported through *flavor); tensors come back 1-D ([count]: .wts keeps no shapes).
// Errors name the file, the line and the tensor.
enum class WtsFlavor { kPyTorch, kTensorRT };
WeightStore readWts(const std::string& path, WtsFlavor* flavor = nullptr);
// Writes every tensor as float32, in name order, byte for byte as gen_wts.py (kPyTorch) or
// dumpTFWts.py --wtsv1 (kTensorRT) would for the same tensors.
void writeWts(const WeightStore& weights, const std::string& path, WtsFlavor flavor = WtsFlavor::kPyTorch);
// A .wts holding deepspeech.pytorch state_dict names (what gen_wts.py writes for a DS2 model): the
// shapes are rebuilt from the counts (see src/importers/wts/wts_importer.cpp), then the model is
// imported exactly as a PyTorch state_dict is. options.gate_layout / forget_bias declare a source
// whose recurrent tensors use another gate order.
ImportedModel importWts(const std::string& path, const ImportOptions& options = {});

// An ONNX model (protobuf, opset 7 and later, self-contained: no external data) translated node by
// node: the operators torch.onnx.export writes for DeepSpeech2-style networks (Conv, BatchNormalization,
// Clip/Relu/Tanh/Sigmoid, LSTM/GRU/RNN with sequence_lens, MatMul/Gemm, Softmax/LogSoftmax, a depthwise
// 1-D Conv after a Pad as lookahead) plus the shape plumbing around them (Shape, Gather, Reshape,
// Transpose, Concat, Slice, Cast, ...), folded at import. Masks computed from the lengths input
// (Range(0, T) < lengths) become sequence masks, integer arithmetic on the lengths becomes lengths
// transforms. Inputs: float N x C x F x T features (or T x N x H sequences) and integer lengths N.
// Every unsupported operator is listed in one error; metadata_props "ds2rt.config" (DeepSpeech2Config
// JSON) gives the labels and feature settings. options.labels / sample_rate override them.
ImportedNetwork importOnnx(const std::string& path, const ImportOptions& options = {});

// Keras / TensorFlow 2 models: Keras 3 .keras archives and legacy .h5 files (model.save), Functional
// or Sequential, one chain of InputLayer, Reshape, Conv2D (channels_last, valid or same padding),
// BatchNormalization, ReLU / Activation / Softmax, Dense / TimeDistributed(Dense), Dropout,
// LSTM / GRU (both reset_after) / SimpleRNN, plain or in Bidirectional (merge concat or sum).
// The network takes "features" (N x 1 x bins x T, Keras's N x T x bins transposed) and "lengths";
// it gives "probs" (N x T' x classes; "logits" when the model does not end with a softmax) and
// "output_lengths". Each utterance of a batch gets what Keras gives for it alone, except after a
// Conv2D with "same" padding and a stride s > 1 along time: there ds2rt matches Keras for lengths
// that are multiples of s at that layer (TensorFlow pads other lengths differently); the
// result's notes say so. Labels are not in a Keras file: options.labels, if given. Errors list
// every unsupported layer by class and name, and name the file, layer and weight at fault.
// network_options.log_softmax turns a final softmax into a log-softmax output named "log_probs".
// The HDF5 library (1.10) is not hardened against crafted files, so it runs in a forked reader
// process (Linux): a corrupt .h5 that crashes it, hangs it or makes it allocate without end gives
// an Error saying the HDF5 data is corrupt, never a crash of the caller. The cost is a few
// milliseconds per import plus about half a millisecond per MB of weights.
ImportedNetwork importKeras(const std::string& path, const ImportOptions& options = {},
                            const DeepSpeech2NetworkOptions& network_options = {});

// TF1 LSTMCell (what dumpTFWts.py dumps): kernel (I+H) x 4H applied as [x, h] * kernel, bias 4H,
// gate columns i, j(cell), f, o, and c' = sigmoid(f + forget_bias) * c + sigmoid(i) * tanh(j).
// Returns W (4H x I), R (4H x H), Wb (4H, forget_bias added to the f block) and Rb (4H zeros) in
// the canonical i, f, g, o order.
struct CanonicalLSTMWeights {
  HostTensor W, R, Wb, Rb;
};
CanonicalLSTMWeights tf1LstmCellToCanonical(const HostTensor& kernel, const HostTensor& bias, int64_t input_size,
                                            float forget_bias);

}  // namespace ds2rt
