// Shared pieces of the ds2rt Python bindings: the HostTensor <-> array conversion (a nanobind type
// caster, so every function taking or returning a HostTensor takes or returns numpy arrays) and
// the per-concern bind functions that module.cpp calls.
#pragma once

#include <nanobind/nanobind.h>

#include <filesystem>
#include <new>
#include <utility>

#include "ds2rt/tensor.h"

namespace ds2rt::python {

namespace nb = nanobind;

// Any array-like -> HostTensor. C-contiguous CPU arrays of a supported dtype (numpy, or anything
// speaking DLPack, torch tensors included) are viewed without a copy and kept alive by the tensor;
// anything else goes through numpy.asarray(order='C') first. Integer types ds2rt lacks are widened.
// Throws for objects that are not numeric arrays.
HostTensor toHostTensor(nb::handle source);
// HostTensor -> numpy array viewing the tensor's storage (kept alive by the array). Writable when
// the tensor owns its storage, read-only for views (a memory-mapped file, say). BF16 becomes float32.
nb::object toNumpy(const HostTensor& tensor);

// Constructs a bound C++ object in the memory nanobind gives to __init__.
template <typename T>
void construct(T* self, T value) {
  new (self) T(std::move(value));
}

inline std::string pathString(const std::filesystem::path& path) { return path.string(); }

void bindTensors(nb::module_& m);      // weights, gate layouts
void bindNetwork(nb::module_& m);      // NetworkDefinition and its enums
void bindEngine(nb::module_& m);       // BuilderConfig, Builder, Engine, ExecutionContext
void bindDeepSpeech2(nb::module_& m);  // DeepSpeech2Config, DeepSpeech2Model
void bindImporters(nb::module_& m);    // import_model, load_model (PyTorch checkpoints, ...)
void bindExporters(nb::module_& m);    // export_onnx
void bindAudio(nb::module_& m);        // decoding, resampling, features
void bindDecoder(nb::module_& m);      // language model, CTC decoders, WER/CER
void bindLmBuilder(nb::module_& m);    // build_lm: ARPA word LMs from text
void bindBundledModel(nb::module_& m);  // find_bundled_model: the default model of ds2rt.transcribe

}  // namespace ds2rt::python

namespace nanobind::detail {

template <>
struct type_caster<ds2rt::HostTensor> {
  NB_TYPE_CASTER(ds2rt::HostTensor, io_name("numpy.typing.ArrayLike", "numpy.typing.NDArray[typing.Any]"))

  bool from_python(handle source, uint32_t, cleanup_list*) noexcept {
    try {
      value = ds2rt::python::toHostTensor(source);
      return true;
    } catch (...) {
      PyErr_Clear();
      return false;
    }
  }

  static handle from_cpp(const ds2rt::HostTensor& tensor, rv_policy, cleanup_list*) noexcept {
    try {
      return ds2rt::python::toNumpy(tensor).release();
    } catch (python_error& e) {
      e.restore();
      return {};
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
      return {};
    }
  }
};

}  // namespace nanobind::detail
