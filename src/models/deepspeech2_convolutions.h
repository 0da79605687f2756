// deepspeech.pytorch's fixed convolutional front end, in one place for the network builder and the
// ONNX exporter: module i is conv.seq_module.{3i} (Conv2d), .{3i+1} (BatchNorm2d), .{3i+2} (Hardtanh).
#pragma once

namespace ds2rt::models {

struct DeepSpeech2Convolution {
  int in, kf, kt, sf, st, pf, pt;  // input channels; kernel, stride and padding along frequency and time
};
constexpr int kDeepSpeech2ConvChannels = 32;
constexpr DeepSpeech2Convolution kDeepSpeech2Convolutions[2] = {{1, 41, 11, 2, 2, 20, 5}, {32, 21, 11, 2, 1, 10, 5}};

}  // namespace ds2rt::models
