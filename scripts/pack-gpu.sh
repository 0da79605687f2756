#!/usr/bin/env bash
# Builds the CUDA configuration here and gathers what the GPU machine needs into .gpu/ (git-ignored):
# binaries, the shared libraries they load (other than CUDA's and the C runtime), and the PyTorch
# reference benchmark. Then, on the GPU machine: scripts/gpu-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${CUDA_ARCHITECTURES:-"80;86;89;90"}
BUILD_DIR=build-cuda CUDA_ARCHITECTURES="$arch" scripts/build.sh
rm -rf .gpu && mkdir -p .gpu/bin
cp build-cuda/tools/ds2rt build-cuda/tests/ds2rt_cuda_tests .gpu/bin/
../shared/gpu/pack-libs.sh .gpu/lib .gpu/bin/ds2rt .gpu/bin/ds2rt_cuda_tests
cp ../shared/bench/torch_ds2.py .gpu/
# What travels to the GPU machine is limited to 64 MiB: the binaries and libraries go compressed (the
# GPU machine has gzip, not zstd); scripts/gpu-check.sh unpacks them.
tar -C .gpu -czf .gpu/payload.tar.gz bin lib && rm -rf .gpu/bin .gpu/lib
du -sh .gpu
