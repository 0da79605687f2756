#!/usr/bin/env bash
# Builds the CUDA configuration here and gathers what the GPU machine needs into .gpu/ (git-ignored):
# binaries, the shared libraries they load (other than CUDA's and the C runtime), and the PyTorch
# reference benchmark. Then, on the GPU machine: scripts/gpu-check.sh.
#   BUILD_DIR    the CUDA build to use (default build-cuda)
#   BASELINE     another ds2rt binary (say, the previous commit's) to time beside this one: it goes
#                in as .gpu/bin/ds2rt-baseline, and scripts/gpu-check.sh benches both, alternating
#   VARIANTS     more ds2rt binaries to time alongside, as name=path pairs separated by spaces: each
#                goes in as .gpu/bin/ds2rt-<name> (say, VARIANTS="packed=/tmp/ds2rt-packed")
#   CMAKE_ARGS   passed to the configure step; the recurrent phase trace (DS2RT_RNN_TRACE=1) needs
#                a profiling build: BUILD_DIR=build-trace CMAKE_ARGS=-DDS2RT_RNN_TRACE=ON
#   SANITIZER=1  also packs NVIDIA's compute-sanitizer (PyPI: nvidia-cuda-sanitizer-api, without its
#                documentation, ~18 MB) for `scripts/gpu-check.sh sanitize`
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${CUDA_ARCHITECTURES:-"80;86;89;90"}
build=${BUILD_DIR:-build-cuda}
# shellcheck disable=SC2086  # CMAKE_ARGS: words on purpose
BUILD_DIR=$build CUDA_ARCHITECTURES="$arch" scripts/build.sh ${CMAKE_ARGS:-}
rm -rf .gpu && mkdir -p .gpu/bin
cp "$build/tools/ds2rt" "$build/tests/ds2rt_cuda_tests" .gpu/bin/
binaries=(.gpu/bin/ds2rt .gpu/bin/ds2rt_cuda_tests)
if [ -n "${BASELINE:-}" ]; then cp "$BASELINE" .gpu/bin/ds2rt-baseline && binaries+=(.gpu/bin/ds2rt-baseline); fi
for variant in ${VARIANTS:-}; do
  cp "${variant#*=}" ".gpu/bin/ds2rt-${variant%%=*}" && binaries+=(".gpu/bin/ds2rt-${variant%%=*}")
done
../shared/gpu/pack-libs.sh .gpu/lib "${binaries[@]}"
cp ../shared/bench/torch_ds2.py .gpu/
# What travels to the GPU machine is limited to 64 MiB: the binaries and libraries go compressed (the
# GPU machine has gzip, not zstd); scripts/gpu-check.sh unpacks them.
tar -C .gpu -czf .gpu/payload.tar.gz bin lib && rm -rf .gpu/bin .gpu/lib
if [ "${SANITIZER:-0}" = 1 ]; then
  wheels=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --dest "$wheels" nvidia-cuda-sanitizer-api
  python3 -m zipfile -e "$wheels"/nvidia_cuda_sanitizer_api-*.whl "$wheels/x"
  sanitizer=$(dirname "$(find "$wheels/x" -name compute-sanitizer -type f | head -n 1)")
  rm -rf "$sanitizer/docs" && chmod +x "$sanitizer"/compute-sanitizer "$sanitizer"/TreeLauncher* "$sanitizer"/x86/TreeLauncher*
  tar -C "$(dirname "$sanitizer")" -czf .gpu/sanitizer.tar.gz "$(basename "$sanitizer")" && rm -rf "$wheels"
fi
du -sh .gpu
