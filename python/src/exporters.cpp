// Model exporters: a DeepSpeech2Model to the files other runtimes read (ONNX).
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/string.h>

#include "bindings.h"
#include "ds2rt/exporters.h"

namespace ds2rt::python {

using namespace nb::literals;

void bindExporters(nb::module_& m) {
  const OnnxExportOptions defaults;
  m.def(
      "export_onnx",
      [](const DeepSpeech2Model& model, const std::filesystem::path& path, int opset, bool int64_lengths,
         bool log_softmax) {
        nb::gil_scoped_release release;
        exportOnnx(model, pathString(path), {opset, int64_lengths, log_softmax});
      },
      "model"_a, "path"_a, nb::kw_only(), "opset"_a = defaults.opset, "int64_lengths"_a = defaults.int64_lengths,
      "log_softmax"_a = defaults.log_softmax,
      "Writes the model as a standard ONNX model (opset 13 to 17) that ONNX Runtime runs with ds2rt's output: "
      "inputs 'features' (float32 N x 1 x bins x T) and 'lengths' (int32, or int64 with int64_lengths), outputs "
      "'probs' (or 'log_probs' with log_softmax; N x T' x classes, zero past each length) and 'output_lengths'. "
      "The configuration JSON is stored under the metadata key 'ds2rt.config'.");
}

}  // namespace ds2rt::python
