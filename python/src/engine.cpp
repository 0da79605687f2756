// Builder -> Engine -> ExecutionContext. run() takes and returns dicts of numpy arrays; inputs are
// viewed, not copied, and the GIL is released while the network runs (one context per thread).
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <atomic>
#include <optional>

#include "bindings.h"
#include "ds2rt/builder.h"
#include "ds2rt/error.h"

namespace ds2rt::python {

using namespace nb::literals;

namespace {

using TensorMap = std::map<std::string, HostTensor>;

// An ExecutionContext that refuses a second call while one runs (Python threads share objects
// freely, and the GIL is released while a context runs). A context may run on any thread.
struct Context {
  Context(ExecutionContext c, bool cpu) : context(std::move(c)), cpu(cpu) {}
  ExecutionContext context;
  const bool cpu;
  std::atomic<bool> busy{false};
};

class Exclusive {
 public:
  explicit Exclusive(Context& c) : c_(c) {
    check(!c_.busy.exchange(true), "this ExecutionContext is in use by another thread: create one context per thread");
  }
  ~Exclusive() { c_.busy = false; }
  Exclusive(const Exclusive&) = delete;
  Exclusive& operator=(const Exclusive&) = delete;
  ExecutionContext* operator->() { return &c_.context; }


 private:
  Context& c_;
};

void bindBuilder(nb::module_& m) {
  nb::enum_<Device>(m, "Device").value("CPU", Device::kCPU).value("CUDA", Device::kCUDA);
  nb::enum_<Precision>(m, "Precision")
      .value("FP32", Precision::kFP32)
      .value("FP16", Precision::kFP16)
      .value("BF16", Precision::kBF16)
      .value("INT8", Precision::kInt8)
      .value("TF32", Precision::kTF32);

  nb::class_<BuilderConfig>(m, "BuilderConfig")
      .def(
          "__init__",
          [](BuilderConfig* self, Device device, Precision precision, bool optimize) {
            construct(self, {device, precision, optimize});
          },
          "device"_a = Device::kCPU, "precision"_a = Precision::kFP32, "optimize"_a = true)
      .def_rw("device", &BuilderConfig::device)
      .def_rw("precision", &BuilderConfig::precision)
      .def_rw("optimize", &BuilderConfig::optimize, "Graph passes: folding, fusion, dead-layer removal.")
      .def("validate", &BuilderConfig::validate, "Raises ds2rt.Error when this build cannot honour the combination.")
      .def("__repr__", [](const BuilderConfig& c) { return cat("BuilderConfig(", c.toString(), ")"); });

  nb::class_<Builder>(m, "Builder", "Turns a NetworkDefinition into an optimised, immutable Engine.")
      .def(nb::init<BuilderConfig>(), "config"_a = BuilderConfig{})
      .def_prop_ro("config", [](const Builder& b) { return b.config(); })
      .def("build", &Builder::build, "network"_a, nb::call_guard<nb::gil_scoped_release>());
}

void bindEngineClass(nb::module_& m) {
  nb::class_<Engine>(m, "Engine", "An optimised network, shared by any number of ExecutionContexts.")
      .def_static(
          "load", [](const std::filesystem::path& path) { return Engine::load(pathString(path)); }, "path"_a,
          "Reads a plan file written by save() or `ds2rt build`.")
      .def_static(
          "deserialize",
          [](nb::bytes plan, const std::string& source) {
            const auto* begin = static_cast<const uint8_t*>(plan.data());
            return Engine::deserialize(std::vector<uint8_t>(begin, begin + plan.size()), source);
          },
          "plan"_a, "source"_a = "plan")
      .def("save", [](const Engine& e, const std::filesystem::path& path) { e.save(pathString(path)); }, "path"_a)
      .def("serialize", [](const Engine& e) {
        const std::vector<uint8_t> plan = e.serialize();
        return nb::bytes(plan.data(), plan.size());
      })
      .def(
          "create_context",
          [](const Engine& e, int num_threads, bool cuda_graphs, bool profile) {
            return std::make_unique<Context>(e.createContext({num_threads, cuda_graphs, profile}),
                                             e.config().device == Device::kCPU);
          },
          nb::kw_only(), "num_threads"_a = 0, "cuda_graphs"_a = true, "profile"_a = false,
          "A context holding the scratch memory of one run at a time (one per thread). num_threads: CPU "
          "threads (0: every core); profile: time every layer (see ExecutionContext.layer_timings).")
      .def_prop_ro("config", [](const Engine& e) { return e.config(); })
      .def_prop_ro("input_names", &Engine::inputNames)
      .def_prop_ro("output_names", &Engine::outputNames)
      .def(
          "tensor_shape", [](const Engine& e, const std::string& name) { return e.tensorShape(name); }, "name"_a,
          "An input's or output's shape; -1 for the batch and time axes.")
      .def_prop_ro("metadata", &Engine::metadata,
                   "The network's metadata (labels and feature settings of a DeepSpeech2 model), saved in plans.")
      .def_prop_ro("build_report", &Engine::buildReport,
                   "What the builder folded, fused, removed and chose, one line per decision.")
      .def("describe", &Engine::describe,
           "Layers with shapes, parameter counts and fused operations, and the memory plan.");
}

void bindContext(nb::module_& m) {
  nb::class_<LayerTiming>(m, "LayerTiming")
      .def_ro("layer", &LayerTiming::layer)
      .def_ro("kind", &LayerTiming::kind)
      .def_ro("milliseconds", &LayerTiming::milliseconds)
      .def("__repr__", [](const LayerTiming& t) {
        return cat("LayerTiming(", t.layer, ", ", t.kind, ", ", t.milliseconds, " ms)");
      });
  nb::class_<RunStats>(m, "RunStats")
      .def_ro("input_ms", &RunStats::input_ms, "Checking and uploading the inputs.")
      .def_ro("compute_ms", &RunStats::compute_ms, "The network itself.");

  nb::class_<Context>(m, "ExecutionContext", "Runs an Engine; one per thread, the engine is shared.")
      .def(
          "run",
          [](Context& c, const TensorMap& inputs) {
            Exclusive context(c);
            nb::gil_scoped_release release;
            return context->run(inputs);
          },
          "inputs"_a,
          "Binds the inputs by name (arrays are read in place), runs the network with the GIL released and returns "
          "every output as a new array: {'features': x, 'lengths': l} -> {'probs': ..., 'output_lengths': ...}.")
      .def(
          "set_input",
          [](Context& c, const std::string& name, const HostTensor& tensor) { Exclusive(c)->setInput(name, tensor); },
          "name"_a, "tensor"_a, "Binds one input for run() without arguments; the context keeps the array alive.")
      .def(
          "run",
          [](Context& c) {
            Exclusive context(c);
            nb::gil_scoped_release release;
            context->run();
          },
          "Runs on the inputs bound with set_input; read the results with output().")
      .def(
          "output", [](Context& c, const std::string& name) { return Exclusive(c)->output(name).clone(); }, "name"_a,
          "A copy of one output of the last run.")
      .def_prop_ro(
          "layer_timings", [](Context& c) { return Exclusive(c)->layerTimings(); },
          "Per-layer times of the last run (create_context(profile=True)).")
      .def_prop_ro("last_run_stats", [](Context& c) { return Exclusive(c)->lastRunStats(); });
}

}  // namespace

void bindEngine(nb::module_& m) {
  bindBuilder(m);
  bindContext(m);
  bindEngineClass(m);
}

}  // namespace ds2rt::python
