#!/usr/bin/env bash
# The GPU call that decided branch wip/stacked-layers (run 2026-12-07 on an H100, then merged: bench/
# RESULTS.md, "Two layers per launch for one-direction stacks"): its stack tests, uni-GRU times against main
# (ds2rt-baseline), PyTorch, the phase trace, the full CUDA suite and bidirectional times, most
# important first; a stage that would not finish within BUDGET seconds (default 420) is skipped.
# To repeat it: build this tree in `build` and the commit to compare with elsewhere, then
#   BUILD_DIR=build BASELINE=<that build>/tools/ds2rt scripts/pack-gpu.sh && scripts/device-tree.sh out
# and on the GPU machine (run with carry [".gpu"], then scripts/device-tree.sh in):
#   bash bench/gpu_stacked.sh          (logs under $OUT)
set -u
export OUT
exec > >(tee $OUT/run.log) 2>&1
t0=$SECONDS
budget=${BUDGET:-420}
fits() { [ $((SECONDS - t0 + $1)) -le "$budget" ] || { echo "skipped (needs $1 s, $((budget - SECONDS + t0)) left): $2"; return 1; }; }
tar -C .gpu -xzf .gpu/payload.tar.gz; export LD_LIBRARY_PATH=$PWD/.gpu/lib
B=.gpu/bin
[ -e /work/main ] || { mkdir -p /work && ln -s $PWD /work/main; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
F='Cases/CudaRNN.*_l2_*:Cases/CudaRNN.*_l3_*:Cases/CudaRNN.*_l4_*:Cases/CudaRNN.*_l5_*:*MatchesPyTorch/*uni*'
timeout 120 $B/ds2rt_cuda_tests --gtest_filter="$F" --gtest_brief=1 > $OUT/stacked_tests.log 2>&1
echo "stacked tests exit $? at $((SECONDS-t0)) s"; tail -n 3 $OUT/stacked_tests.log; grep -B3 -A10 "Failure" $OUT/stacked_tests.log | head -40
bench() { timeout 40 $B/$4 bench --device cuda --precision $2 --arch $1 -b ${3%x*} -s ${3#*x} -n 10 --json $OUT/$4.jsonl 2>&1 | tail -n 1 | sed "s/^/$4 $1 $2 $3 /"; }
for s in 1x10 2x15; do for r in 1 2; do for b in ds2rt ds2rt-baseline; do bench gru_uni fp16 $s $b; done; done; done
echo "uni fp16 done at $((SECONDS-t0)) s"
fits 100 torch && { PYTHONUNBUFFERED=1 OUT=$OUT timeout 100 python3 .gpu/torch_ds2.py --models gru_uni,lstm_bi,gru_bi --dtypes fp16 --variants graph --shapes 1x10,2x15 --reps 10 2>&1 | grep -v '^{"gpu' | cut -c1-160; echo "torch done at $((SECONDS-t0)) s"; }
fits 20 trace && DS2RT_RNN_TRACE=1 timeout 20 $B/ds2rt bench --device cuda --precision fp16 --arch gru_uni -b 1 -s 10 -n 3 2>&1 | grep "rnn layer" | tail -n 3
fits 60 "uni tf32/bf16/fp32" && for b in ds2rt ds2rt-baseline; do bench gru_uni tf32 1x10 $b; bench gru_uni bf16 1x10 $b; bench gru_uni fp32 1x10 $b; done
if fits 150 "full CUDA suite"; then
  timeout $((budget - SECONDS + t0 - 5)) $B/ds2rt_cuda_tests --gtest_brief=1 > $OUT/cuda_tests.log 2>&1; echo "cuda tests exit $? at $((SECONDS-t0)) s"; tail -n 3 $OUT/cuda_tests.log
  grep -B3 -A10 "Failure" $OUT/cuda_tests.log | head -40
fi
# The bidirectional paths do not stack, but their kernels were recompiled: both binaries.
fits 60 "bidirectional A/B" && for a in lstm_bi gru_bi; do for b in ds2rt ds2rt-baseline; do bench $a fp16 1x10 $b; bench $a fp16 2x15 $b; done; done
echo "total $((SECONDS-t0)) s"
