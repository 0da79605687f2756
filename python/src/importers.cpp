// Model importers: any supported model file (ds2rt model, PyTorch checkpoint, ...) to a DeepSpeech2Model.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.h"
#include "ds2rt/error.h"
#include "ds2rt/importers.h"

namespace ds2rt::python {

using namespace nb::literals;

namespace {

template <typename Function>
void defImport(nb::module_& m, const char* name, Function function, const char* doc) {
  m.def(
      name,
      [function](const std::filesystem::path& path, std::optional<std::string> rnn_type, std::optional<int> hidden_size,
                 std::optional<int> hidden_layers, std::optional<bool> bidirectional,
                 std::optional<int> lookahead_context, std::optional<std::vector<std::string>> labels,
                 std::optional<int> sample_rate) {
        const ImportOptions options{rnn_type, hidden_size, hidden_layers, bidirectional, lookahead_context, labels,
                                    sample_rate};
        nb::gil_scoped_release release;
        return function(pathString(path), options);
      },
      "path"_a, nb::kw_only(), "rnn_type"_a = nb::none(), "hidden_size"_a = nb::none(),
      "hidden_layers"_a = nb::none(), "bidirectional"_a = nb::none(), "lookahead_context"_a = nb::none(),
      "labels"_a = nb::none(), "sample_rate"_a = nb::none(), doc);
}

}  // namespace

void bindImporters(nb::module_& m) {
  nb::class_<ConfigOrigin> origin(m, "ConfigOrigin", "Where one field of an imported model's configuration came from.");
  nb::enum_<ConfigOrigin::Kind>(origin, "Kind")
      .value("READ", ConfigOrigin::Kind::kRead)
      .value("INFERRED", ConfigOrigin::Kind::kInferred)
      .value("GIVEN", ConfigOrigin::Kind::kGiven)
      .value("DEFAULT", ConfigOrigin::Kind::kDefault);
  origin.def_ro("field", &ConfigOrigin::field)
      .def_ro("value", &ConfigOrigin::value)
      .def_ro("kind", &ConfigOrigin::kind)
      .def_ro("detail", &ConfigOrigin::detail)
      .def("__repr__", [](const ConfigOrigin& o) {
        return cat("ConfigOrigin(", o.field, "=", o.value, ", ", toString(o.kind), ": ", o.detail, ")");
      });

  nb::class_<ImportedModel>(m, "ImportedModel")
      .def_ro("model", &ImportedModel::model)
      .def_ro("format", &ImportedModel::format)
      .def_ro("origins", &ImportedModel::origins)
      .def_ro("notes", &ImportedModel::notes);

  nb::class_<ImportedNetwork>(m, "ImportedNetwork",
                              "A model file as a network ready for Builder.build, with what transcription needs.")
      .def_ro("network", &ImportedNetwork::network)
      .def_ro("format", &ImportedNetwork::format)
      .def_ro("architecture", &ImportedNetwork::architecture)
      .def_ro("labels", &ImportedNetwork::labels, "the output classes' labels; empty when the file does not say")
      .def_prop_ro(
          "spect", [](const ImportedNetwork& n) { return n.spect_known ? std::optional(n.spect) : std::nullopt; },
          "the feature settings the model was trained with; None when the file does not say")
      .def_ro("notes", &ImportedNetwork::notes);
  m.def(
      "import_network",
      [](const std::filesystem::path& path, bool log_softmax) {
        nb::gil_scoped_release release;
        return importNetwork(pathString(path), {}, {.log_softmax = log_softmax});
      },
      "path"_a, nb::kw_only(), "log_softmax"_a = false,
      "Any model file as a network: DeepSpeech2 formats through DeepSpeech2Model.create_network, graph "
      "formats (ONNX, Keras, PaddleSpeech) node by node.");

#define DS2RT_FIELDS " Keyword arguments override architecture fields the file holds or implies."
  defImport(m, "import_model", &importModel,
            "Reads any supported model file (format found from its content)." DS2RT_FIELDS);
  defImport(m, "load_model", &loadModel, "import_model(path, ...).model." DS2RT_FIELDS);
  defImport(m, "import_pytorch", &importPyTorch,
            "A PyTorch checkpoint (.pth/.pt/.ckpt), read without Python's pickle: callables are refused." DS2RT_FIELDS);
#undef DS2RT_FIELDS
  m.def("supported_model_formats", &supportedModelFormats, "One line per format import_model reads.");
}

}  // namespace ds2rt::python
