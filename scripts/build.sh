#!/usr/bin/env bash
# Configures and builds ds2rt into build/ (extra CMake arguments are passed through).
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/install-deps.sh"
cmake -S . -B "${BUILD_DIR:-build}" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "${BUILD_DIR:-build}"
