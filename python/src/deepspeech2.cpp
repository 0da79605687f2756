// DeepSpeech2 models as deepspeech.pytorch defines them: configuration, weights, network.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/error.h"

namespace ds2rt::python {

using namespace nb::literals;

namespace {

void bindConfigs(nb::module_& m) {
  const SpectrogramConfig spect;
  nb::class_<SpectrogramConfig>(m, "SpectrogramConfig", "deepspeech.pytorch's SpectConfig.")
      .def(
          "__init__",
          [](SpectrogramConfig* self, int sample_rate, double window_size, double window_stride, std::string window) {
            construct(self, {sample_rate, window_size, window_stride, std::move(window)});
          },
          "sample_rate"_a = spect.sample_rate, "window_size"_a = spect.window_size,
          "window_stride"_a = spect.window_stride, "window"_a = spect.window)
      .def_rw("sample_rate", &SpectrogramConfig::sample_rate)
      .def_rw("window_size", &SpectrogramConfig::window_size, "Seconds.")
      .def_rw("window_stride", &SpectrogramConfig::window_stride, "Seconds.")
      .def_rw("window", &SpectrogramConfig::window)
      .def_prop_ro("fft_size", &SpectrogramConfig::fftSize)
      .def_prop_ro("frequency_bins", &SpectrogramConfig::frequencyBins);

  const DeepSpeech2Config model;
  nb::class_<DeepSpeech2Config>(m, "DeepSpeech2Config",
                                "deepspeech.pytorch's model_cfg plus labels and spect_cfg.")
      .def(
          "__init__",
          [](DeepSpeech2Config* self, std::string rnn_type, int hidden_size, int hidden_layers, bool bidirectional,
             int lookahead_context, std::vector<std::string> labels, SpectrogramConfig spect) {
            construct(self, {std::move(rnn_type), hidden_size, hidden_layers, bidirectional, lookahead_context,
                             std::move(labels), std::move(spect)});
          },
          "rnn_type"_a = model.rnn_type, "hidden_size"_a = model.hidden_size, "hidden_layers"_a = model.hidden_layers,
          "bidirectional"_a = model.bidirectional, "lookahead_context"_a = model.lookahead_context,
          "labels"_a = model.labels, "spect"_a = model.spect)
      .def_rw("rnn_type", &DeepSpeech2Config::rnn_type, "'lstm', 'gru' or 'rnn'.")
      .def_rw("hidden_size", &DeepSpeech2Config::hidden_size)
      .def_rw("hidden_layers", &DeepSpeech2Config::hidden_layers)
      .def_rw("bidirectional", &DeepSpeech2Config::bidirectional)
      .def_rw("lookahead_context", &DeepSpeech2Config::lookahead_context, "Unidirectional models only.")
      .def_rw("labels", &DeepSpeech2Config::labels)
      .def_rw("spect", &DeepSpeech2Config::spect)
      .def_static("from_json", &DeepSpeech2Config::fromJson, "json_text"_a, "source"_a = "config")
      .def("to_json", &DeepSpeech2Config::toJson)
      .def("validate", &DeepSpeech2Config::validate)
      .def_prop_ro("cell", &DeepSpeech2Config::cell)
      .def_prop_ro("rnn_input_size", &DeepSpeech2Config::rnnInputSize,
                   "32 * frequency bins after the two convolutions.")
      .def("__repr__", [](const DeepSpeech2Config& c) { return cat("DeepSpeech2Config(", c.toJson(), ")"); });
}

void bindModel(nb::module_& m) {
  nb::class_<DeepSpeech2Model>(m, "DeepSpeech2Model",
                               "A DeepSpeech2 model: configuration plus weights under deepspeech.pytorch's "
                               "state_dict names.")
      .def(nb::init<DeepSpeech2Config, WeightStore>(), "config"_a, "weights"_a,
           "weights: a WeightStore or a dict of arrays ({k: v.numpy() for k, v in state_dict.items()}).")
      .def_static(
          "load", [](const std::filesystem::path& path) { return DeepSpeech2Model::load(pathString(path)); }, "path"_a,
          "A .safetensors file with the config under its 'ds2rt.config' metadata, or a .json config.")
      .def_static("with_random_weights", &DeepSpeech2Model::withRandomWeights, "config"_a, "seed"_a = 1,
                  "This architecture with random weights (for benchmarks and tests).")
      .def(
          "save",
          [](const DeepSpeech2Model& model, const std::filesystem::path& path) { model.save(pathString(path)); },
          "path"_a, "Writes one self-describing .safetensors file.")
      .def_prop_ro("config", [](const DeepSpeech2Model& model) { return model.config(); })
      .def_prop_ro("weights", [](const DeepSpeech2Model& model) { return model.weights(); })
      .def(
          "create_network",
          [](const DeepSpeech2Model& model, bool log_softmax) { return model.createNetwork({log_softmax}); },
          nb::kw_only(), "log_softmax"_a = false,
          "Inputs 'features' (N x 1 x bins x T) and 'lengths'; outputs 'probs' (or 'log_probs'), N x T' x classes, "
          "and 'output_lengths'.");
}

}  // namespace

void bindDeepSpeech2(nb::module_& m) {
  bindConfigs(m);
  bindModel(m);
}

}  // namespace ds2rt::python
