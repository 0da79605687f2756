// From a TensorRef (storage, offset, size, stride) and its storage's bytes to a contiguous
// HostTensor: a view when the layout allows, else a strided copy (byte-swapped if big-endian).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ds2rt/tensor.h"
#include "importers/pickle/pickle_value.h"

namespace ds2rt::pytorch {

// The reader works on the values of the restricted unpickler (importers/pickle).
using namespace ds2rt::pickle;

using StorageBytes = std::shared_ptr<const std::vector<uint8_t>>;

// `what` names the tensor in errors ("'model.pth': tensor 'rnns.0.rnn.weight_ih_l0'").
HostTensor rebuildTensor(const TensorRef& tensor, const StorageBytes& storage, bool big_endian, const std::string& what);

}  // namespace ds2rt::pytorch
