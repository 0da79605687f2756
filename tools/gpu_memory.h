// GPU memory in use on the current device (0 in builds without CUDA), for ds2rt bench.
#pragma once

#include <cstddef>

namespace ds2rt::tools {

size_t gpuMemoryUsed();

}  // namespace ds2rt::tools
