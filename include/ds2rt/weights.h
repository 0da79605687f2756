// Named weight tensors (read and written as safetensors) and conversion of recurrent weights
// from each framework's gate layout into the one canonical layout the engine uses.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ds2rt/tensor.h"

namespace ds2rt {

class WeightStore {
 public:
  // Reads a .safetensors file. The file is memory-mapped; tensors view the mapping.
  static WeightStore load(const std::string& path);
  void save(const std::string& path) const;

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws an error naming the tensor (and `context`, e.g. the file) when it is missing.
  const HostTensor& get(const std::string& name) const;
  // As get(), and checks the shape; the result is converted to float32.
  HostTensor getFloat(const std::string& name, const Shape& expected_shape) const;
  void set(const std::string& name, HostTensor tensor) { tensors_[name] = std::move(tensor); }
  std::vector<std::string> names() const;
  const std::map<std::string, HostTensor>& tensors() const { return tensors_; }

  std::map<std::string, std::string>& metadata() { return metadata_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Where the weights came from, used in error messages ("model.safetensors").
  const std::string& source() const { return source_; }
  void setSource(std::string source) { source_ = std::move(source); }

 private:
  std::map<std::string, HostTensor> tensors_;
  std::map<std::string, std::string> metadata_;
  std::string source_ = "weight store";
};

// ---- Recurrent gate layouts ---------------------------------------------------------------

enum class RNNCell : uint8_t { kRNNTanh, kRNNRelu, kLSTM, kGRU };
int gateCount(RNNCell cell);  // 1, 1, 4, 3
const char* toString(RNNCell cell);

enum class Gate : uint8_t { kInput, kForget, kCell, kOutput, kUpdate, kReset, kHidden };
const char* toString(Gate gate);

// Orders of the gate blocks along the G*H axis of a framework's recurrent weight tensors.
//   kCanonical = kPyTorch = kCuDNN: LSTM i,f,g,o   GRU r,z,n
//   kONNX:                          LSTM i,o,f,c   GRU z,r,h
//   kKeras (TF2):                   LSTM i,f,c,o   GRU z,r,h
//   kTF1 (LSTMCell, "i, j, f, o"):  LSTM i,j(=cell),f,o
// (TensorRT sets weights per named gate; see RNNWeights::setGate.)
enum class GateLayout : uint8_t { kCanonical, kPyTorch, kCuDNN, kONNX, kKeras, kTF1 };
const char* toString(GateLayout layout);
std::vector<Gate> gateOrder(RNNCell cell, GateLayout layout);

// Reorders the gate blocks of `tensor` along `axis` (of size G*H) from `from` into the
// canonical order. Works for weights (G*H x I), biases (G*H) and Keras kernels (I x G*H, axis 1).
// A float32 tensor already in order comes back as itself (shared, read-only storage), others as a
// new tensor; the pages of a memory-mapped original are then given back (they read back from the
// file if used again).
HostTensor toCanonicalGates(const HostTensor& tensor, RNNCell cell, GateLayout from, int axis = 0);
// The inverse, for exporters.
HostTensor fromCanonicalGates(const HostTensor& tensor, RNNCell cell, GateLayout to, int axis = 0);

// 2-D transpose (Keras/TF store kernels as input x units); a copy, as above.
HostTensor transpose2d(const HostTensor& tensor);

}  // namespace ds2rt
