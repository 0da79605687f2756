// A numpy array the restricted unpickler rebuilt, as a contiguous HostTensor.
#pragma once

#include <string>

#include "ds2rt/tensor.h"
#include "importers/pickle/pickle_value.h"

namespace ds2rt::pickle {

// Little-endian, C order, in the array's own element type (float16/32/64, int8/32/64, uint8,
// bool). Other types, or data of the wrong size, throw naming `what` ("model.pdparams: 'x.weight'").
HostTensor toHostTensor(const NumpyArray& array, const std::string& what);

}  // namespace ds2rt::pickle
