#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite (GoogleTest through CTest + CLI checks).
# SANITIZE=address,undefined or SANITIZE=thread builds and tests under sanitizers in build-<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SANITIZE:-}" ]; then
  export BUILD_DIR="build-$(echo "$SANITIZE" | tr ',' '-')"
  DS2RT_WITH_CUDA=OFF scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDS2RT_SANITIZE="$SANITIZE"  # sanitizers check the host code
else
  scripts/build.sh
fi
if [ -z "${SANITIZE:-}" ]; then
  scripts/test-python.sh
fi
# The ONNX project's backend node tests (tests/unit/onnx_node_test.cpp) come with the onnx package.
venv=.venv-test
if [ -z "${DS2RT_ONNX_NODE_TESTS:-}" ]; then
  { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } &&
    "$venv/bin/python" -m pip install -q --disable-pip-version-check onnx==1.17.0 &&
    DS2RT_ONNX_NODE_TESTS=$("$venv/bin/python" -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node"))') &&
    export DS2RT_ONNX_NODE_TESTS ||
    echo "note: the onnx package could not be installed; the ONNX node tests will be skipped"
fi
cd "${BUILD_DIR:-build}"
if [ "${SANITIZE:-}" = thread ]; then
  export TSAN_OPTIONS="suppressions=$PWD/../tests/tsan.supp halt_on_error=1 ${TSAN_OPTIONS:-}"
fi
ctest --output-on-failure -j 2 ${CTEST_ARGS:-}
