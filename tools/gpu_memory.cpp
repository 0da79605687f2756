#include "gpu_memory.h"

#ifdef DS2RT_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace ds2rt::tools {

size_t gpuMemoryUsed() {
#ifdef DS2RT_WITH_CUDA
  size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) == cudaSuccess) return total - free;
#endif
  return 0;
}

}  // namespace ds2rt::tools
