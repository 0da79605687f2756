#!/usr/bin/env bash
# The convolutions' layouts on the GPU machine (repository root, after scripts/pack-gpu.sh here):
# per-layer times (`ds2rt bench --profile`) with cuDNN's NCHW, NHWC and the timed choice, then the
# whole model's median in each, alternating, ROUNDS times; and bench/cuda_probes/conv_probe if built
# into .gpu/probe. Environment: ARCHS ("lstm_bi"), SHAPES ("1x10 64x15"), PRECISION (fp16), ROUNDS (2).
set -u
out=${OUT:-/tmp/ds2rt-conv}; mkdir -p "$out"
[ -x .gpu/bin/ds2rt ] || tar -C .gpu -xzf .gpu/payload.tar.gz
export LD_LIBRARY_PATH=$PWD/.gpu/lib
p=${PRECISION:-fp16}
for arch in ${ARCHS:-lstm_bi}; do
  for shape in ${SHAPES:-1x10 64x15}; do
    for layout in nchw nhwc auto; do
      echo "== profile $arch $p $shape conv layout $layout"
      [ $layout = auto ] && unset DS2RT_CUDA_CONV_LAYOUT || export DS2RT_CUDA_CONV_LAYOUT=$layout
      timeout 60 .gpu/bin/ds2rt bench --device cuda --precision $p --arch $arch -b ${shape%x*} -s ${shape#*x} -n 5 --profile \
        2>&1 | grep -E "median|^ +[0-9]|Convolution|ReshapeToSequence|SequenceMask"
    done
  done
done
unset DS2RT_CUDA_CONV_LAYOUT
for round in $(seq "${ROUNDS:-2}"); do
  for arch in ${ARCHS:-lstm_bi}; do
    for shape in ${SHAPES:-1x10 64x15}; do
      for layout in nchw auto; do
        ms=$( ( [ $layout = auto ] || export DS2RT_CUDA_CONV_LAYOUT=$layout
               timeout 60 .gpu/bin/ds2rt bench --device cuda --precision $p --arch $arch -b ${shape%x*} -s ${shape#*x} -n 10 \
                 --json "$out/one.jsonl" >/dev/null 2>&1 ) && grep -o '"latency_ms":[0-9.]*' "$out/one.jsonl" | cut -d: -f2)
        echo "round $round $arch $p $shape conv $layout ${ms:-failed}" | tee -a "$out/conv.txt"
      done
    done
  done
done
[ -x .gpu/probe/conv_probe ] && timeout 120 .gpu/probe/conv_probe
