// cuBLASLt, loaded on first use. Linked the usual way, libcublasLt.so (540 MB) adds ~210 MB to the
// resident size of every process that starts, CPU-only runs included, and a build with the CUDA
// backend would not start at all where the library is missing. Instead, this file defines the
// cuBLASLt functions the backend calls; each opens the library on its first call and forwards.
// requireCublasLt() turns a missing library into a clear error where a CUDA context is made.
#include "cuda/cublaslt_loader.h"

#include <cublasLt.h>
#include <dlfcn.h>

#include <string>

#include "ds2rt/error.h"

#define DS2RT_STRINGIFY_(x) #x
#define DS2RT_STRINGIFY(x) DS2RT_STRINGIFY_(x)

namespace ds2rt::detail::cuda {
namespace {

struct Library {
  void* handle = nullptr;
  std::string error;  // why it could not be opened
};

const Library& cublasLt() {
  static const Library library = [] {
    Library l;
    for (const char* name : {"libcublasLt.so." DS2RT_STRINGIFY(CUBLAS_VER_MAJOR), "libcublasLt.so"}) {
      l.handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (l.handle) return l;
      const char* why = dlerror();
      l.error += (l.error.empty() ? "" : "; ") + std::string(why ? why : name);
    }
    return l;
  }();
  return library;
}

template <typename Function>
Function resolve(const char* name) {
  const Library& library = cublasLt();
  return library.handle ? reinterpret_cast<Function>(dlsym(library.handle, name)) : nullptr;
}

}  // namespace

void requireCublasLt() {
  const Library& library = cublasLt();
  check(library.handle != nullptr, "the CUDA backend needs cuBLASLt ", CUBLAS_VER_MAJOR, " (libcublasLt.so.",
        CUBLAS_VER_MAJOR, "), which could not be loaded: ", library.error);
}

}  // namespace ds2rt::detail::cuda

// Each function as cublasLt.h declares it; without the library (or the symbol) a call returns
// CUBLAS_STATUS_NOT_INITIALIZED, which the callers' checks report.
#define DS2RT_CUBLASLT_FORWARD(name, parameters, arguments)                                         \
  cublasStatus_t CUBLASWINAPI name parameters {                                                     \
    static const auto real = ds2rt::detail::cuda::resolve<decltype(&name)>(#name);                  \
    return real ? real arguments : CUBLAS_STATUS_NOT_INITIALIZED;                                   \
  }

extern "C" {
DS2RT_CUBLASLT_FORWARD(cublasLtCreate, (cublasLtHandle_t * handle), (handle))
DS2RT_CUBLASLT_FORWARD(cublasLtDestroy, (cublasLtHandle_t handle), (handle))
DS2RT_CUBLASLT_FORWARD(cublasLtMatmul,
                       (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* a,
                        cublasLtMatrixLayout_t a_desc, const void* b, cublasLtMatrixLayout_t b_desc, const void* beta,
                        const void* c, cublasLtMatrixLayout_t c_desc, void* d, cublasLtMatrixLayout_t d_desc,
                        const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_bytes,
                        cudaStream_t stream),
                       (handle, desc, alpha, a, a_desc, b, b_desc, beta, c, c_desc, d, d_desc, algo, workspace,
                        workspace_bytes, stream))
DS2RT_CUBLASLT_FORWARD(cublasLtMatmulAlgoGetHeuristic,
                       (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a_desc,
                        cublasLtMatrixLayout_t b_desc, cublasLtMatrixLayout_t c_desc, cublasLtMatrixLayout_t d_desc,
                        cublasLtMatmulPreference_t preference, int requested,
                        cublasLtMatmulHeuristicResult_t results[], int* returned),
                       (handle, desc, a_desc, b_desc, c_desc, d_desc, preference, requested, results, returned))
DS2RT_CUBLASLT_FORWARD(cublasLtMatmulDescCreate,
                       (cublasLtMatmulDesc_t * desc, cublasComputeType_t compute, cudaDataType_t scale),
                       (desc, compute, scale))
DS2RT_CUBLASLT_FORWARD(cublasLtMatmulDescDestroy, (cublasLtMatmulDesc_t desc), (desc))
DS2RT_CUBLASLT_FORWARD(cublasLtMatmulDescSetAttribute,
                       (cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute, const void* buffer,
                        size_t bytes),
                       (desc, attribute, buffer, bytes))
DS2RT_CUBLASLT_FORWARD(cublasLtMatmulPreferenceCreate, (cublasLtMatmulPreference_t * preference), (preference))
DS2RT_CUBLASLT_FORWARD(cublasLtMatmulPreferenceDestroy, (cublasLtMatmulPreference_t preference), (preference))
DS2RT_CUBLASLT_FORWARD(cublasLtMatmulPreferenceSetAttribute,
                       (cublasLtMatmulPreference_t preference, cublasLtMatmulPreferenceAttributes_t attribute,
                        const void* buffer, size_t bytes),
                       (preference, attribute, buffer, bytes))
DS2RT_CUBLASLT_FORWARD(cublasLtMatrixLayoutCreate,
                       (cublasLtMatrixLayout_t * layout, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld),
                       (layout, type, rows, cols, ld))
DS2RT_CUBLASLT_FORWARD(cublasLtMatrixLayoutDestroy, (cublasLtMatrixLayout_t layout), (layout))
DS2RT_CUBLASLT_FORWARD(cublasLtMatrixLayoutSetAttribute,
                       (cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attribute, const void* buffer,
                        size_t bytes),
                       (layout, attribute, buffer, bytes))
}
