// Paddle's parameter files: paddle.save(layer.state_dict(), "x.pdparams") pickles (protocol 2 to 4)
// a dict of parameter name -> numpy.ndarray, plus a "StructuredToParameterName@@" dict of names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ds2rt/weights.h"

namespace ds2rt::paddle {

// True for a .pdparams name, or for a pickle (not a PyTorch legacy file) that rebuilds numpy arrays.
bool looksLikePdparams(const std::vector<uint8_t>& head, const std::string& extension);

// Every array of the file under its structured name, in its own element type. Refuses any global
// beyond numpy array rebuilding and plain containers; errors name the file and the entry at fault.
// `notes` (optional) receives what was skipped.
WeightStore readPdparams(const std::string& path, std::vector<std::string>* notes = nullptr);

}  // namespace ds2rt::paddle
