#!/usr/bin/env bash
# Installs what ds2rt needs to build and test, from Debian 12's packages.
# (ocl-icd-opencl-dev: Debian's dnnl-config.cmake asks for OpenCL; libdnnl-dev only recommends it.)
set -euo pipefail
packages=(cmake ninja-build g++ ccache pkg-config zlib1g-dev libdnnl-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libsndfile1-dev libsoxr-dev libfftw3-dev libzip-dev libonnx-dev libprotobuf-dev libhdf5-dev ocl-icd-opencl-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
