#!/usr/bin/env bash
# Every ds2rt build in .gpu/bin (ds2rt and the ds2rt-<name> variants scripts/pack-gpu.sh adds with
# VARIANTS=...) on the same GPU in one call: the recurrent phase trace of each (DS2RT_RNN_TRACE=1,
# first layer of each launch), then ROUNDS rounds of `ds2rt bench` medians, the builds alternating
# within each round (GPU machine, repository root; logs under $OUT). The traces need builds
# configured with -DDS2RT_RNN_TRACE=ON (scripts/pack-gpu.sh's CMAKE_ARGS); the timings do not.
# Environment: ARCHS ("lstm_bi gru_bi gru_uni"), PRECISION (fp16), SHAPES ("1x10"), ROUNDS (3),
# TRACE (1; 0 skips the traces).
set -u
out=${OUT:-/tmp/ds2rt-variants}; mkdir -p "$out"
[ -x .gpu/bin/ds2rt ] || tar -C .gpu -xzf .gpu/payload.tar.gz
export LD_LIBRARY_PATH=$PWD/.gpu/lib
builds=$(cd .gpu/bin && ls ds2rt ds2rt-* 2>/dev/null | grep -v baseline_tests)
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
for arch in ${ARCHS:-lstm_bi gru_bi gru_uni}; do
  [ "${TRACE:-1}" = 1 ] || break
  for bin in $builds; do
    echo "== trace $bin $arch ${PRECISION:-fp16} 1x10"
    DS2RT_RNN_TRACE=1 timeout 60 .gpu/bin/$bin bench --device cuda --precision "${PRECISION:-fp16}" --arch "$arch" -b 1 \
      -s 10 -n 2 2>&1 | grep "rnn layer" | sort -u -t, -k1,1
  done
done
for round in $(seq "${ROUNDS:-3}"); do
  for arch in ${ARCHS:-lstm_bi gru_bi gru_uni}; do
    for shape in ${SHAPES:-1x10}; do
      for bin in $builds; do
        ms=$(timeout 60 .gpu/bin/$bin bench --device cuda --precision "${PRECISION:-fp16}" --arch "$arch" -b "${shape%x*}" \
          -s "${shape#*x}" -n 10 --json "$out/one.jsonl" >/dev/null 2>&1 && grep -o '"latency_ms":[0-9.]*' "$out/one.jsonl" | cut -d: -f2)
        echo "round $round $arch ${PRECISION:-fp16} $shape $bin ${ms:-failed}" | tee -a "$out/variants.txt"
      done
    done
  done
done
python3 bench/variants_table.py "$out/variants.txt"
