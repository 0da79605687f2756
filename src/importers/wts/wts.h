// Internal helpers of the .wts importer.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ds2rt/tensor.h"

namespace ds2rt::wts {

// True when the bytes look like a .wts file: a decimal tensor count on the first line, then a
// line starting with a name and a decimal field.
bool looksLikeWts(const std::vector<uint8_t>& head);

// The shapes of deepspeech.pytorch state_dict tensors rebuilt from element counts alone (a .wts
// keeps none). Names it does not know keep a 1-D shape.
std::map<std::string, Shape> reconstructShapes(const std::map<std::string, int64_t>& counts, const std::string& source);

}  // namespace ds2rt::wts
