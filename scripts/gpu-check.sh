#!/usr/bin/env bash
# On the GPU machine, from the repository root, after scripts/pack-gpu.sh here:
#   scripts/gpu-check.sh [tests|bench|all]
# Runs the CUDA test suite and/or ds2rt bench beside the PyTorch reference (same shapes, same run),
# writing logs and JSON under $OUT (default /tmp/ds2rt-gpu). The device tool refuses a working tree over
# 64 MiB: take models/ out of the index for the call (train/README.md shows how).
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

if [ "$what" = bench ] || [ "$what" = all ]; then
  rm -f "$out/ds2rt.jsonl" "$out/baseline.jsonl"
  shapes=${SHAPES:-"1x10 64x15"}
  binaries=ds2rt rounds=1
  if [ -x .gpu/bin/ds2rt-baseline ]; then binaries="ds2rt ds2rt-baseline" rounds="1 2"; fi
  for arch in ${ARCHS:-lstm_bi gru_bi gru_uni}; do
    for precision in ${PRECISIONS:-fp16 fp32}; do
      for shape in $shapes; do
        # With a baseline binary (pack-gpu.sh BASELINE=...) both run, alternating, two rounds each.
        for round in $rounds; do
          for bin in $binaries; do
            rm -f "$out/run.jsonl"
            .gpu/bin/$bin bench --device cuda --precision "$precision" --arch "$arch" -b "${shape%x*}" -s "${shape#*x}" \
              -n "${ITERATIONS:-20}" --json "$out/run.jsonl" 2>&1 | tail -n 1 | sed "s/^/$bin $arch $precision /"
            [ -f "$out/run.jsonl" ] && cat "$out/run.jsonl" >>"$out/$([ $bin = ds2rt ] && echo ds2rt || echo baseline).jsonl"
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
