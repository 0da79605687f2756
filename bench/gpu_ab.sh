#!/usr/bin/env bash
# A/B of two ds2rt builds on the same GPU in one run, alternating (GPU machine, repository root):
# .gpu/payload.tar.gz as scripts/pack-gpu.sh makes it, with the older build added as bin/ds2rt-base.
# Environment: SHAPES (default "64x15"), PRECISIONS ("fp16 fp32"), ARCHS ("lstm_bi gru_bi gru_uni"),
# ROUNDS (2); TORCH=1 also runs PyTorch's CUDA-graph variant of each precision at the same shapes
# and prints the table of bench/RESULTS.md (previous ds2rt, ds2rt, PyTorch graph) from the last round.
out=${OUT:-/tmp/ds2rt-ab}; mkdir -p "$out"; rm -f "$out/ab.txt"
[ -x .gpu/bin/ds2rt ] || tar -C .gpu -xzf .gpu/payload.tar.gz
export LD_LIBRARY_PATH=$PWD/.gpu/lib
shapes=${SHAPES:-64x15}
for round in $(seq "${ROUNDS:-2}"); do
  for arch in ${ARCHS:-lstm_bi gru_bi gru_uni}; do
    for p in ${PRECISIONS:-fp16 fp32}; do
      for shape in $shapes; do
        for bin in ds2rt-base ds2rt; do
          .gpu/bin/$bin bench --device cuda --precision "$p" --arch "$arch" -b "${shape%x*}" -s "${shape#*x}" -n 10 \
            --json "$out/one.jsonl" >/dev/null 2>&1
          echo "$bin $(cat "$out/one.jsonl")" >>"$out/ab.txt"
          echo "round $round $arch $p $shape $bin $(grep -o '"latency_ms":[0-9.]*' "$out/one.jsonl" | cut -d: -f2)"
        done
      done
    done
  done
done
[ "${TORCH:-0}" = 1 ] || exit 0
PYTHONUNBUFFERED=1 OUT="$out" python3 .gpu/torch_ds2.py --models "$(echo ${ARCHS:-lstm_bi gru_bi gru_uni} | tr ' ' ,)" \
  --dtypes "$(echo ${PRECISIONS:-fp16 fp32} | tr ' ' ,)" --variants graph --shapes "$(echo $shapes | tr ' ' ,)" \
  --reps 10 >"$out/torch.txt" 2>&1
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
ours, torch = {}, {}
for line in open(f"{out}/ab.txt"):
    binary, row = line.split(" ", 1)
    if row.strip():
        r = json.loads(row)
        ours[(binary, r["model"], r["dtype"], r["batch"], float(r["secs"]))] = r["latency_ms"]
for line in open(f"{out}/torch.txt"):
    if line.startswith("{") and "latency_ms" in line:
        r = json.loads(line)
        torch[(r["model"], r["dtype"], r["batch"], float(r["secs"]))] = r["latency_ms"]
print("| model | precision | batch x s | previous ds2rt ms | ds2rt ms | PyTorch graph ms | vs previous | vs PyTorch | ds2rt audio-s/s |")
print("|---|---|---|---|---|---|---|---|---|")
for (binary, *key), ms in ours.items():
    if binary != "ds2rt":
        continue
    base, ref = ours.get(("ds2rt-base", *key)), torch.get(tuple(key))
    model, dtype, n, s = key
    ratio = lambda x: f"{x / ms:.2f}x" if x else "-"
    print(f"| {model} | {dtype} | {n} x {s:g} | {f'{base:.2f}' if base else '-'} | {ms:.2f} | {ref or '-'} | {ratio(base)} | {ratio(ref)} | "
          f"{n * s / ms * 1000:,.0f} |")
PY
