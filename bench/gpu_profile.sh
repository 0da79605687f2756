#!/usr/bin/env bash
# One GPU call that checks a fresh build and says where batch-1 time goes: the CUDA suite, uni-GRU at
# the batch sizes that do not take the stacked kernel (8-64 x 15 s fp16; 64 x 15 s tf32/fp32), each
# model's per-layer times at 1 x 10 s (`--profile`: how much of the batch-1 time is outside the
# recurrent kernels), the recurrent kernels' phase trace (DS2RT_RNN_TRACE=1) and, if the machine has
# nsys, its kernel summary for lstm_bi. With BASELINE=... given to pack-gpu.sh the benches alternate
# with that binary. TESTS=0 skips the suite, UNI_SHAPES picks the uni-GRU shapes, WIDE=0 skips the
# tf32/fp32 64 x 15 s rows (a shorter call), NCU=1 adds the stall sampling below. Logs under $OUT. Here:
#   BUILD_DIR=build CUDA_ARCHITECTURES=90 scripts/pack-gpu.sh && scripts/device-tree.sh out
# (the phase trace needs a profiling build: BUILD_DIR=build-trace CMAKE_ARGS=-DDS2RT_RNN_TRACE=ON;
# a normal build says so and times the steps without it)
# then `run` with carry [".gpu"]: bash bench/gpu_profile.sh; then scripts/device-tree.sh in.
set -u
export OUT
exec > >(tee "$OUT/run.log") 2>&1
t0=$SECONDS
# (scripts/gpu-check.sh unpacks too, but with TESTS=0 the profiles below come first)
if [ -f .gpu/payload.tar.gz ] && [ ! -x .gpu/bin/ds2rt ]; then tar -C .gpu -xzf .gpu/payload.tar.gz; fi
[ "${TESTS:-1}" = 1 ] && OUT=$OUT scripts/gpu-check.sh tests
echo "tests done at $((SECONDS-t0)) s"
export LD_LIBRARY_PATH=$PWD/.gpu/lib
for a in lstm_bi gru_bi gru_uni; do
  echo "== profile $a fp16 1x10"
  timeout 40 .gpu/bin/ds2rt bench --device cuda --precision fp16 --arch $a -b 1 -s 10 -n 5 --profile 2>&1 | tail -n 24
  echo "== trace $a fp16 1x10"
  DS2RT_RNN_TRACE=1 timeout 40 .gpu/bin/ds2rt bench --device cuda --precision fp16 --arch $a -b 1 -s 10 -n 2 2>&1 | grep "rnn layer" | tail -n 5
done
ITERATIONS=10 TORCH=0 ARCHS=gru_uni PRECISIONS=fp16 SHAPES="${UNI_SHAPES:-1x10 8x15 16x15 32x15 64x15}" OUT=$OUT scripts/gpu-check.sh bench
ITERATIONS=10 TORCH=0 ARCHS="lstm_bi gru_bi" PRECISIONS=fp16 SHAPES="1x10" OUT=$OUT scripts/gpu-check.sh bench
[ "${WIDE:-1}" = 1 ] && ITERATIONS=10 TORCH=0 ARCHS=gru_uni PRECISIONS="tf32 fp32" SHAPES="64x15" OUT=$OUT scripts/gpu-check.sh bench
echo "benches done at $((SECONDS-t0)) s"
which nsys ncu 2>&1 | head -2
if command -v nsys >/dev/null; then timeout 120 nsys profile -o $OUT/lstm_bi --force-overwrite true .gpu/bin/ds2rt bench --device cuda --precision fp16 --arch lstm_bi -b 1 -s 10 -n 5 >/dev/null 2>&1; timeout 60 nsys stats -r cuda_gpu_kern_sum $OUT/lstm_bi.nsys-rep 2>&1 | head -30; rm -f $OUT/*.nsys-rep $OUT/*.sqlite; fi
# NCU=1: Nsight Compute's stall sampling of the tensor-core recurrent kernel, SASS line by line
# (NCU_ARCH, default lstm_bi, fp16 1 x 10 s); bench/ncu_stalls.py reads it (here or there).
if [ "${NCU:-0}" = 1 ]; then
  ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
  timeout 150 "$ncu" -k regex:mmaKernelImpl --launch-count 1 --section SourceCounters --section WarpStateStats \
    --page source --csv --print-source sass .gpu/bin/ds2rt bench --device cuda --precision fp16 --arch "${NCU_ARCH:-lstm_bi}" \
    -b 1 -s 10 -n 1 --warmup 0 --no-graphs >"$OUT/ncu_source.csv" 2>"$OUT/ncu_err.txt"
  python3 bench/ncu_stalls.py "$OUT/ncu_source.csv"
fi
echo "total $((SECONDS-t0)) s"
