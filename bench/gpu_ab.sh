#!/usr/bin/env bash
# A/B of two ds2rt builds on the same GPU in one run, alternating (GPU machine, repository root):
# .gpu/payload.tar.gz as scripts/pack-gpu.sh makes it, with the older build added as bin/ds2rt-base.
[ -x .gpu/bin/ds2rt ] || tar -C .gpu -xzf .gpu/payload.tar.gz
export LD_LIBRARY_PATH=$PWD/.gpu/lib
for round in 1 2; do
  for arch in lstm_bi gru_bi gru_uni; do
    for p in fp16 fp32; do
      for bin in ds2rt-base ds2rt; do
        r=$(.gpu/bin/$bin bench --device cuda --precision $p --arch $arch -b 64 -s 15 -n 10 2>&1 | tail -n 1 | awk '{print $2}')
        echo "round $round $arch $p 64x15 $bin $r"
      done
    done
  done
done
