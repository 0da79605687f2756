#!/usr/bin/env bash
# Configures and builds ds2rt into build/ (extra CMake arguments are passed through).
# Where the CUDA toolkit is installed (nvcc), the CUDA backend is built too, for sm_80/86/89/90
# (CUDA_ARCHITECTURES overrides; DS2RT_WITH_CUDA=OFF skips it). It builds without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/install-deps.sh"
cuda=()
if [ "${DS2RT_WITH_CUDA:-auto}" != OFF ]; then
  nvcc=$(command -v nvcc || true)
  [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
  if [ -n "$nvcc" ]; then
    cuda=(-DDS2RT_WITH_CUDA=ON "-DCMAKE_CUDA_COMPILER=$nvcc" "-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES:-80;86;89;90}")
  fi
fi
cmake -S . -B "${BUILD_DIR:-build}" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda[@]}" "$@"
cmake --build "${BUILD_DIR:-build}"
