// Take a DeepSpeech2 model out of ds2rt into another runtime's format. (TensorRT .wts weights are
// written by writeWts, declared in ds2rt/importers.h beside readWts.)
#pragma once

#include <string>

#include "ds2rt/deepspeech2.h"

namespace ds2rt {

struct OnnxExportOptions {
  int opset = 17;              // ai.onnx opset of the graph: 13 to 17
  bool int64_lengths = false;  // "lengths" / "output_lengths" as int64 (torch.onnx's habit) instead of int32
  bool log_softmax = false;    // output "log_probs" instead of "probs", as DeepSpeech2NetworkOptions
};

// Writes `model` as a standard ONNX model (IR version of libonnx 1.12, ai.onnx opset
// options.opset) that ONNX Runtime runs with the output ds2rt gives for the same inputs:
//   inputs  "features"       float32  N x 1 x bins x T  (N and T dynamic)
//           "lengths"        int32 (or int64)  N: valid frames of each utterance
//   outputs "probs"          float32  N x T' x classes, zero past each utterance's output length
//                            ("log_probs" with options.log_softmax)
//           "output_lengths" as "lengths"  N
// The graph is deepspeech.pytorch's DeepSpeech in standard operators (Conv, BatchNormalization,
// Clip, LSTM/GRU/RNN with sequence_lens, ...); initializers carry the state_dict names where a tensor
// maps one to one, and the configuration JSON is stored under the metadata key "ds2rt.config".
// The file is written to a temporary name and renamed, so a failure leaves no partial file.
// Throws ds2rt::Error for unsupported options, weights that disagree with the configuration, or a
// path that cannot be written.
void exportOnnx(const DeepSpeech2Model& model, const std::string& path, const OnnxExportOptions& options = {});

}  // namespace ds2rt
