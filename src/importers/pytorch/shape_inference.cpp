// The architecture a deepspeech.pytorch state_dict implies, from its names and shapes alone.
#include <cmath>

#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"
#include "importers/pytorch/architecture.h"

namespace ds2rt::pytorch {

namespace {

const Shape* shapeOf(const std::map<std::string, Shape>& shapes, const std::string& name, size_t rank) {
  const auto it = shapes.find(name);
  return it != shapes.end() && it->second.size() == rank ? &it->second : nullptr;
}

std::string described(const std::string& name, const Shape& shape) { return name + " " + toString(shape); }

// The sample rate whose spectrogram (window `window_size`) gives `rnn_inputs` RNN inputs: a common
// rate if one does, else the lowest such rate. The RNN input size only fixes the frequency bins.
std::optional<int> sampleRateFor(int64_t rnn_inputs, double window_size) {
  DeepSpeech2Config c;
  c.spect.window_size = window_size;
  for (const int rate : {16000, 8000, 11025, 22050, 24000, 32000, 44100, 48000}) {
    c.spect.sample_rate = rate;
    if (c.rnnInputSize() == rnn_inputs) return rate;
  }
  for (int fft = 80; fft <= 1 << 16; ++fft) {
    c.spect.sample_rate = static_cast<int>(std::ceil(fft / window_size));
    if (c.spect.fftSize() == fft && c.rnnInputSize() == rnn_inputs) return c.spect.sample_rate;
  }
  return std::nullopt;
}

}  // namespace

void inferFromShapes(const std::map<std::string, Shape>& shapes, importers::ConfigEvidence& e) {
  if (const Shape* fc = shapeOf(shapes, "fc.0.module.1.weight", 2))
    e.num_classes.setInferred(static_cast<int>((*fc)[0]), described("fc.0.module.1.weight", *fc));

  int layers = 0;
  while (shapes.count("rnns." + std::to_string(layers) + ".rnn.weight_hh_l0")) ++layers;
  if (layers > 0) e.hidden_layers.setInferred(layers, cat("rnns.0 ... rnns.", layers - 1));

  const std::string hh = "rnns.0.rnn.weight_hh_l0", ih = "rnns.0.rnn.weight_ih_l0";
  if (const Shape* w = shapeOf(shapes, hh, 2); w && (*w)[1] > 0 && (*w)[0] % (*w)[1] == 0) {
    const int64_t hidden = (*w)[1], gates = (*w)[0] / hidden;
    e.hidden_size.setInferred(static_cast<int>(hidden), described(hh, *w));
    const char* type = gates == 4 ? "lstm" : gates == 3 ? "gru" : gates == 1 ? "rnn" : nullptr;
    if (type) e.rnn_type.setInferred(type, cat(described(hh, *w), ": ", gates, " gate", gates > 1 ? "s" : ""));
  }
  if (shapes.count(hh)) {
    const bool reverse = shapes.count(hh + "_reverse") != 0;
    e.bidirectional.setInferred(reverse, reverse ? hh + "_reverse present" : "no " + hh + "_reverse");
  }
  if (const Shape* w = shapeOf(shapes, "lookahead.0.conv.weight", 3))
    e.lookahead_context.setInferred(static_cast<int>((*w)[2]), described("lookahead.0.conv.weight", *w));

  const double window = e.window_size.read.value_or(0.02);
  if (const Shape* w = shapeOf(shapes, ih, 2))
    if (const auto rate = sampleRateFor((*w)[1], window))
      e.sample_rate.setInferred(*rate, cat(described(ih, *w), ": ", (*w)[1] / 32, " x 32 RNN inputs with ",
                                           window, " s windows"));
}

}  // namespace ds2rt::pytorch
