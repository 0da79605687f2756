// cuBLASLt is opened on first use (cublaslt_loader.cpp), not linked.
#pragma once

namespace ds2rt::detail::cuda {

// Throws ds2rt::Error saying which library could not be loaded and why, where cuBLASLt is missing.
void requireCublasLt();

}  // namespace ds2rt::detail::cuda
