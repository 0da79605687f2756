// What the restricted unpickler builds: plain values and an object graph owned by an arena.
// Nothing here can run code; objects of allowlisted classes are inert records of their
// class name, constructor arguments and state. The pickles of model files name globals of two
// families: PyTorch's (torch.save: tensors over storages, omegaconf hyper-parameters) and
// numpy's (paddle.save: plain ndarrays); each reader allows only the family it expects.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "ds2rt/tensor.h"

namespace ds2rt::pickle {

struct Node;

// One pickled value. Scalars are held inline; strings, containers and objects point into the
// Arena that made them (copies are cheap, so DUP and BINGET cannot blow up memory).
struct None {};
using Value = std::variant<None, bool, int64_t, double, Node*>;

// Which globals a pickle may name, beyond the plain containers every reader allows.
enum class GlobalFamily : uint8_t { kTorch = 1, kNumpy = 2 };

// What an allowlisted global stands for (see pickle_allowlist.cpp).
enum class GlobalKind : uint8_t {
  kRebuildTensor,      // torch._utils._rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3
  kRebuildParameter,   // torch._utils._rebuild_parameter(_with_state): the tensor itself
  kRebuildFromType,    // torch._tensor._rebuild_from_type_v2(func, type, args, state)
  kOrderedDict,        // collections.OrderedDict / defaultdict: a dict
  kSet,                // builtins.set / frozenset: a list of the items
  kCodecsEncode,       // _codecs.encode(text, "latin1"): bytes (how protocol 2 writes bytes)
  kGetattr,            // builtins.getattr(enum class, member name) only
  kTorchSize,          // torch.Size(sequence): a tuple
  kStorageType,        // torch.FloatStorage, ...: names a storage's element type
  kDtype,              // torch.float32, ...
  kContainerClass,     // omegaconf containers and nodes: NEWOBJ + BUILD record their state
  kEnumClass,          // deepspeech_pytorch.enums.*: calling it records an enum member
  kNumpyReconstruct,   // numpy.core.multiarray._reconstruct(ndarray, (0,), b'b'): an empty array, then BUILD
  kNumpyDtype,         // numpy.dtype('f4', False, True), then BUILD with its byte order
  kInert,              // referenced only, never called: types (builtins.float, typing.Any, nn.LSTM,
                       // deepspeech.pytorch config dataclasses), operator.getitem, Ellipsis
};

struct Text {  // str, bytes, or an integer too big for 64 bits (little-endian two's complement)
  enum class Kind : uint8_t { kString, kBytes, kBigInt } kind;
  std::string data;
};

struct Sequence {
  enum class Kind : uint8_t { kList, kTuple, kSet } kind;
  std::vector<Value> items;
};

struct Dict {
  std::vector<std::pair<Value, Value>> entries;  // in pickle order; later keys win on lookup
};

struct Global {
  std::string module, name;  // as written in the pickle ("__builtin__", "eval")
  GlobalKind kind;
  std::optional<DataType> dtype;  // kStorageType / kDtype: the element type, if ds2rt has it
  size_t element_size = 0;        // kStorageType / kDtype
  std::string qualifiedName() const { return module + "." + name; }
};

// An instance of an allowlisted class: an omegaconf container or node (NEWOBJ args + BUILD
// state), an enum member (args = {value} or member = name), or an inert call (operator.getitem).
struct Object {
  const Global* type = nullptr;
  std::vector<Value> args;
  Value state = None{};
  std::string member;  // enum member looked up by name
};

// A storage named by a persistent id: ('storage', type, key, location, numel[, view]).
struct StorageRef {
  const Global* type = nullptr;  // a kStorageType global
  std::string key;
  std::string location;
  int64_t numel = 0;  // elements of `type`
};

// A tensor as torch._utils._rebuild_tensor_v2 would make it: a strided view of a storage.
struct TensorRef {
  const StorageRef* storage = nullptr;
  const Global* dtype = nullptr;  // the element type (the storage's unless _rebuild_tensor_v3 says)
  int64_t offset = 0;             // in elements
  Shape size, stride;
};

// numpy.dtype(code): the array-protocol type string ("f4", "<f8", "i8", "b1", ...) and the
// byte order BUILD sets ('<', '>', '|' or '=').
struct NumpyDtype {
  std::string code;
  char byte_order = '=';
};

// A numpy.ndarray as _reconstruct + BUILD((version, shape, dtype, is_fortran, raw bytes)) make it.
struct NumpyArray {
  bool built = false;
  Shape shape;
  const NumpyDtype* dtype = nullptr;
  bool fortran_order = false;
  const Text* data = nullptr;  // the raw bytes
};

struct Node {
  template <typename T>
  explicit Node(T value) : payload(std::in_place_type<T>, std::move(value)) {}
  std::variant<Text, Sequence, Dict, Global, Object, StorageRef, TensorRef, NumpyDtype, NumpyArray> payload;
};

// Owns every node of one unpickling; nodes stay valid (and may form cycles) until it dies.
class Arena {
 public:
  template <typename T>
  Node* make(T payload) {
    return &nodes_.emplace_back(std::move(payload));
  }
  size_t size() const { return nodes_.size(); }
  const Node& at(size_t i) const { return nodes_.at(i); }

 private:
  std::deque<Node> nodes_;
};

// ---- Reading values (nullptr / nullopt when the value is of another kind) ----------------------
template <typename T>
T* as(const Value& value) {
  Node* const* node = std::get_if<Node*>(&value);
  return node ? std::get_if<T>(&(*node)->payload) : nullptr;
}
std::optional<std::string_view> asString(const Value& value);  // str only
std::optional<int64_t> asInt(const Value& value);               // int (bools are not ints here)
std::optional<double> asNumber(const Value& value);             // int or float
bool isNone(const Value& value);
// "dict", "list", "str", "tensor", "object of omegaconf.dictconfig.DictConfig", ... for messages.
std::string describe(const Value& value);
// The value under a string key of a dict (the last one wins, as in Python), or nullptr.
const Value* find(const Dict& dict, std::string_view key);

}  // namespace ds2rt::pickle
