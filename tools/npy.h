// Reader for NumPy's .npy format (version 1-3, little-endian, C order), for feature files.
#pragma once

#include <string>

#include "ds2rt/tensor.h"

namespace ds2rt::tools {

HostTensor readNpy(const std::string& path);

}  // namespace ds2rt::tools
