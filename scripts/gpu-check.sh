#!/usr/bin/env bash
# On the GPU machine, from the repository root, after scripts/pack-gpu.sh here:
#   scripts/gpu-check.sh [tests|bench|all|sanitize]
# Runs the CUDA test suite and/or ds2rt bench beside the PyTorch reference (same shapes, same run),
# writing logs and JSON under $OUT (default /tmp/ds2rt-gpu). The device tool refuses a working tree over
# 64 MiB: take models/ out of the index for the call (scripts/device-tree.sh out, then in).
set -uo pipefail
what=${1:-all}
out=${OUT:-/tmp/ds2rt-gpu}
mkdir -p "$out"
if [ -f .gpu/payload.tar.gz ] && [ ! -x .gpu/bin/ds2rt ]; then tar -C .gpu -xzf .gpu/payload.tar.gz; fi
export LD_LIBRARY_PATH="$PWD/.gpu/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv | tee "$out/gpu.txt"

if [ "$what" = tests ] || [ "$what" = all ]; then
  .gpu/bin/ds2rt_cuda_tests --gtest_brief=1 --gtest_output="xml:$out/cuda_tests.xml" >"$out/cuda_tests.log" 2>&1
  echo "cuda tests exit $?"; tail -n 15 "$out/cuda_tests.log"
fi

# NVIDIA's compute-sanitizer over the CUDA tests (pack-gpu.sh with SANITIZER=1 brings it): synccheck
# (barriers: named ones, divergent arrival) and racecheck (shared memory) on the recurrent kernels'
# 1024-unit cases, memcheck on every other RNN case (it slows the 1024-unit ones past usefulness).
# SANITIZE_FILTER replaces the first filter; each tool's log is $out/sanitize-<tool>.log.
if [ "$what" = sanitize ]; then
  [ -f .gpu/sanitizer.tar.gz ] && tar -C /tmp -xzf .gpu/sanitizer.tar.gz
  sanitizer=${COMPUTE_SANITIZER:-/tmp/compute-sanitizer/compute-sanitizer}
  heavy=${SANITIZE_FILTER:-"*CudaRNN*h1024*"}
  status=0
  for tool in synccheck racecheck memcheck; do
    filter=$heavy
    [ "$tool" = memcheck ] && filter="*CudaRNN*:-*h1024*"
    timeout "${SANITIZE_SECONDS:-300}" "$sanitizer" --tool "$tool" --error-exitcode 9 .gpu/bin/ds2rt_cuda_tests \
      --gtest_brief=1 --gtest_filter="$filter" >"$out/sanitize-$tool.log" 2>&1
    code=$?
    echo "$tool exit $code: $(grep -E "(ERROR|RACECHECK) SUMMARY" "$out/sanitize-$tool.log" | tail -n 1)"
    [ "$code" = 0 ] || status=1
  done
  exit $status
fi

# Where a binary's results go: ds2rt.jsonl, baseline.jsonl (bench/make_table.py reads both), <variant>.jsonl.
jsonName() { case "$1" in ds2rt) echo ds2rt.jsonl ;; *) echo "${1#ds2rt-}.jsonl" ;; esac; }

if [ "$what" = bench ] || [ "$what" = all ]; then
  shapes=${SHAPES:-"1x10 64x15"}
  # ds2rt, then any others pack-gpu.sh added (BASELINE, VARIANTS): .gpu/bin/ds2rt-<name>.
  binaries=ds2rt rounds=1
  for other in .gpu/bin/ds2rt-*; do [ -x "$other" ] && binaries="$binaries ${other##*/}" rounds="1 2"; done
  for bin in $binaries; do rm -f "$out/$(jsonName "$bin")"; done
  for arch in ${ARCHS:-lstm_bi gru_bi gru_uni}; do
    for precision in ${PRECISIONS:-fp16 fp32}; do
      for shape in $shapes; do
        # With other binaries (pack-gpu.sh BASELINE=..., VARIANTS=...) all run, alternating, two rounds each.
        for round in $rounds; do
          for bin in $binaries; do
            rm -f "$out/run.jsonl"
            .gpu/bin/$bin bench --device cuda --precision "$precision" --arch "$arch" -b "${shape%x*}" -s "${shape#*x}" \
              -n "${ITERATIONS:-20}" --json "$out/run.jsonl" 2>&1 | tail -n 1 | sed "s/^/$bin $arch $precision /"
            [ -f "$out/run.jsonl" ] && cat "$out/run.jsonl" >>"$out/$(jsonName "$bin")"
          done
        done
      done
    done
  done
  if [ "${TORCH:-1}" = 1 ]; then
    torch_shapes=$(echo "$shapes" | tr ' ' ',')
    PYTHONUNBUFFERED=1 OUT="$out" python3 .gpu/torch_ds2.py --models "${TORCH_MODELS:-lstm_bi,gru_bi,gru_uni}" \
      --dtypes "${TORCH_DTYPES:-fp16,fp32}" --variants "${TORCH_VARIANTS:-eager,graph}" --shapes "$torch_shapes" \
      --reps "${ITERATIONS:-20}" 2>&1 | tee "$out/torch.log" | tail -n 20
  fi
  rm -f "$out/run.jsonl"
fi
