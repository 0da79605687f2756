// HostTensor <-> numpy, WeightStore (a dict of arrays, safetensors files) and gate layouts.
#include <nanobind/ndarray.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <optional>

#include "bindings.h"
#include "ds2rt/error.h"
#include "ds2rt/weights.h"

namespace ds2rt::python {

using namespace nb::literals;

namespace {

using Array = nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu>;
using Code = nb::dlpack::dtype_code;

// Keeps an imported array (and so its Python owner) alive; the last HostTensor copy may drop it on
// any thread, with or without the GIL.
struct ArrayOwner {
  explicit ArrayOwner(Array a) : array(std::move(a)) {}
  ArrayOwner(const ArrayOwner&) = delete;
  ArrayOwner& operator=(const ArrayOwner&) = delete;
  ~ArrayOwner() {
    if (!Py_IsInitialized()) return;  // shutting down: nanobind skips the release itself
    nb::gil_scoped_acquire gil;
    Array released = std::move(array);
  }
  Array array;
};

std::optional<DataType> dataTypeOf(nb::dlpack::dtype t) {
  if (t.lanes != 1) return std::nullopt;
  switch (static_cast<Code>(t.code)) {
    case Code::Float:
      if (t.bits == 32) return DataType::kFloat32;
      if (t.bits == 16) return DataType::kFloat16;
      if (t.bits == 64) return DataType::kFloat64;
      break;
    case Code::Bfloat:
      if (t.bits == 16) return DataType::kBFloat16;
      break;
    case Code::Int:
      if (t.bits == 32) return DataType::kInt32;
      if (t.bits == 64) return DataType::kInt64;
      if (t.bits == 8) return DataType::kInt8;
      break;
    case Code::UInt:
      if (t.bits == 8) return DataType::kUInt8;
      break;
    case Code::Bool: return DataType::kBool;
    default: break;
  }
  return std::nullopt;
}

// Integer types ds2rt has no DataType for, widened to one it has (numpy's spelling).
const char* widerType(nb::dlpack::dtype t) {
  if (static_cast<Code>(t.code) == Code::Int && t.bits == 16) return "int32";
  if (static_cast<Code>(t.code) == Code::UInt && t.bits <= 32) return t.bits == 32 ? "int64" : "int32";
  if (static_cast<Code>(t.code) == Code::UInt && t.bits == 64) return "int64";
  return nullptr;
}

nb::dlpack::dtype dlpackType(DataType type) {
  switch (type) {
    case DataType::kFloat32: return nb::dtype<float>();
    case DataType::kFloat16: return {static_cast<uint8_t>(Code::Float), 16, 1};
    case DataType::kFloat64: return nb::dtype<double>();
    case DataType::kInt64: return nb::dtype<int64_t>();
    case DataType::kInt32: return nb::dtype<int32_t>();
    case DataType::kInt8: return nb::dtype<int8_t>();
    case DataType::kUInt8: return nb::dtype<uint8_t>();
    case DataType::kBool: return nb::dtype<bool>();
    case DataType::kBFloat16: break;  // exported as float32
  }
  fail("no numpy dtype for ", toString(type));
}

Array asArray(nb::handle source, const char* dtype = nullptr) {
  Array array;
  if (!dtype && nb::try_cast(source, array, false)) return array;
  const nb::module_ numpy = nb::module_::import_("numpy");
  const nb::object type = dtype ? nb::object(nb::str(dtype)) : nb::none();
  const nb::object converted = numpy.attr("asarray")(source, "dtype"_a = type, "order"_a = "C");
  if (!nb::try_cast(converted, array, false)) throw nb::type_error("expected a numeric array");
  return array;
}

bool isWritable(HostTensor tensor) {
  try {
    tensor.mutableData();
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

HostTensor toHostTensor(nb::handle source) {
  Array array = asArray(source);
  std::optional<DataType> type = dataTypeOf(array.dtype());
  if (!type) {
    const char* wider = widerType(array.dtype());
    if (!wider) throw nb::type_error("unsupported array dtype");
    array = asArray(source, wider);
    type = dataTypeOf(array.dtype());
  }
  Shape shape(array.shape_ptr(), array.shape_ptr() + array.ndim());
  const void* data = array.data();
  return HostTensor::view(*type, std::move(shape), data, std::make_shared<ArrayOwner>(std::move(array)));
}

nb::object toNumpy(const HostTensor& tensor) {
  if (tensor.empty()) return nb::none();
  auto owned = std::make_unique<HostTensor>(tensor.dtype() == DataType::kBFloat16 ? tensor.toFloat32() : tensor);
  const std::vector<size_t> shape(owned->shape().begin(), owned->shape().end());
  const void* data = owned->data();
  const nb::dlpack::dtype type = dlpackType(owned->dtype());
  const bool writable = isWritable(*owned);
  nb::capsule owner(owned.get(),
                    [](void* p) noexcept { std::unique_ptr<HostTensor> last(static_cast<HostTensor*>(p)); });
  owned.release();  // the capsule owns it now
  if (writable)
    return nb::ndarray<nb::numpy>(const_cast<void*>(data), shape.size(), shape.data(), owner, nullptr, type).cast();
  return nb::ndarray<nb::numpy, nb::ro>(data, shape.size(), shape.data(), owner, nullptr, type).cast();
}

namespace {

void bindGateLayouts(nb::module_& m) {
  nb::enum_<RNNCell>(m, "RNNCell")
      .value("RNN_TANH", RNNCell::kRNNTanh)
      .value("RNN_RELU", RNNCell::kRNNRelu)
      .value("LSTM", RNNCell::kLSTM)
      .value("GRU", RNNCell::kGRU);
  nb::enum_<Gate>(m, "Gate")
      .value("INPUT", Gate::kInput)
      .value("FORGET", Gate::kForget)
      .value("CELL", Gate::kCell)
      .value("OUTPUT", Gate::kOutput)
      .value("UPDATE", Gate::kUpdate)
      .value("RESET", Gate::kReset)
      .value("HIDDEN", Gate::kHidden);
  nb::enum_<GateLayout>(m, "GateLayout",
                        "Order of the gate blocks along the G*H axis of a framework's recurrent weights.")
      .value("CANONICAL", GateLayout::kCanonical, "LSTM i,f,g,o; GRU r,z,n (= PYTORCH = CUDNN)")
      .value("PYTORCH", GateLayout::kPyTorch)
      .value("CUDNN", GateLayout::kCuDNN)
      .value("ONNX", GateLayout::kONNX, "LSTM i,o,f,c; GRU z,r,h")
      .value("KERAS", GateLayout::kKeras, "LSTM i,f,c,o; GRU z,r,h")
      .value("TF1", GateLayout::kTF1, "LSTMCell: i,j(=cell),f,o");

  m.def("gate_count", &gateCount, "cell"_a, "Gates per cell: 1 (RNN), 4 (LSTM), 3 (GRU).");
  m.def("gate_order", &gateOrder, "cell"_a, "layout"_a, "The gates of `layout`, in the order its tensors hold them.");
  m.def("to_canonical_gates", &toCanonicalGates, "tensor"_a, "cell"_a, "from_layout"_a, "axis"_a = 0,
        "Reorders the gate blocks of `tensor` along `axis` (size G*H) from `from_layout` into the engine's order.\n"
        "Works for weights (G*H x I), biases (G*H) and Keras kernels (I x G*H, axis=1).");
  m.def("from_canonical_gates", &fromCanonicalGates, "tensor"_a, "cell"_a, "to_layout"_a, "axis"_a = 0,
        "The inverse of to_canonical_gates, for exporters.");
  m.def("transpose2d", &transpose2d, "tensor"_a, "2-D transpose (Keras/TF kernels are input x units).");
}

void bindWeightStore(nb::module_& m) {
  using TensorMap = std::map<std::string, HostTensor>;
  using Metadata = std::map<std::string, std::string>;
  nb::class_<WeightStore>(m, "WeightStore",
                          "Named weight tensors: built from a dict of arrays (a PyTorch state_dict after .numpy()), "
                          "or read from / written to a .safetensors file. Arrays are shared, not copied.")
      .def(
          "__init__",
          [](WeightStore* self, const TensorMap& tensors, const Metadata& metadata) {
            WeightStore store;
            for (const auto& [name, tensor] : tensors) store.set(name, tensor);
            store.metadata() = metadata;
            construct(self, std::move(store));
          },
          "tensors"_a = TensorMap{}, "metadata"_a = Metadata{})
      .def_static(
          "load", [](const std::filesystem::path& path) { return WeightStore::load(pathString(path)); }, "path"_a,
          "Reads a .safetensors file (memory-mapped; the arrays view the mapping, read-only).")
      .def(
          "save", [](const WeightStore& w, const std::filesystem::path& path) { w.save(pathString(path)); }, "path"_a)
      .def(
          "__getitem__",
          [](const WeightStore& w, const std::string& name) {
            if (!w.contains(name)) throw nb::key_error(cat("no tensor '", name, "' in ", w.source()).c_str());
            return w.get(name);
          },
          "name"_a)
      .def("__setitem__", &WeightStore::set, "name"_a, "tensor"_a)
      .def("__contains__", &WeightStore::contains, "name"_a)
      .def("__len__", [](const WeightStore& w) { return w.tensors().size(); })
      .def("__iter__", [](const WeightStore& w) { return nb::iter(nb::cast(w.names())); })
      .def("keys", &WeightStore::names, "Tensor names, sorted.")
      .def("to_dict", [](const WeightStore& w) { return w.tensors(); }, "All tensors as a dict of arrays.")
      .def("get_float", &WeightStore::getFloat, "name"_a, "expected_shape"_a,
           "The tensor as float32, checking its shape; raises ds2rt.Error naming the tensor.")
      .def_prop_rw(
          "metadata", [](const WeightStore& w) { return w.metadata(); },
          [](WeightStore& w, const Metadata& metadata) { w.metadata() = metadata; },
          "The safetensors header's __metadata__ (a copy; assign to change it).")
      .def_prop_rw("source", &WeightStore::source, &WeightStore::setSource,
                   "What error messages call these weights (the file name after load()).")
      .def("__repr__", [](const WeightStore& w) {
        return cat("WeightStore(", w.tensors().size(), " tensors from ", w.source(), ")");
      });
  nb::implicitly_convertible<nb::dict, WeightStore>();
}

}  // namespace

void bindTensors(nb::module_& m) {
  bindGateLayouts(m);
  bindWeightStore(m);
}

}  // namespace ds2rt::python
