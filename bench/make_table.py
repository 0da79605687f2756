#!/usr/bin/env python3
"""Turns one GPU benchmark run (scripts/gpu-check.sh bench) into the markdown table of
bench/RESULTS.md: ds2rt beside the faster of PyTorch's two variants (eager packed cuDNN, or a
CUDA graph), same card, same shapes, same run. ds2rt's tf32 rows are set against PyTorch's fp32,
which runs its cuDNN RNNs and convolutions in TF32 by default (torch.backends.cudnn.allow_tf32).
Where a shape ran more than once (rounds alternating with a baseline binary) the best run counts;
with OUT_DIR/baseline.jsonl (pack-gpu.sh BASELINE=...) a column gives the baseline's time too.

    python3 bench/make_table.py OUT_DIR   # reads OUT_DIR/ds2rt.jsonl and OUT_DIR/torch_ds2.json
"""
import json
import os
import sys

TORCH_DTYPE = {"tf32": "fp32"}  # what PyTorch's "fp32" computes in on Ampere and later


def best_runs(path):
    """The fastest row per (model, precision, batch, seconds), in first-seen order."""
    best = {}
    if not os.path.exists(path):
        return best
    for line in open(path):
        if not line.strip():
            continue
        row = json.loads(line)
        key = (row["model"], row["dtype"], row["batch"], row["secs"])
        if key not in best or row["latency_ms"] < best[key]["latency_ms"]:
            best[key] = row
    return best


def main(out):
    ours = best_runs(os.path.join(out, "ds2rt.jsonl"))
    baseline = best_runs(os.path.join(out, "baseline.jsonl"))
    theirs = json.load(open(os.path.join(out, "torch_ds2.json")))
    extra = " baseline ms |" if baseline else ""
    print(f"| model | precision | batch x seconds | ds2rt ms |{extra} PyTorch eager ms | PyTorch graph ms | "
          "ds2rt audio-s/s | speed-up vs faster PyTorch |")
    print("|---|---|---|---|" + ("---|" if baseline else "") + "---|---|---|---|")
    for key, row in ours.items():
        model, dtype, batch, secs = key
        torch_key = (model, TORCH_DTYPE.get(dtype, dtype), batch, secs)
        ref = {r["variant"]: r for r in theirs if (r["model"], r["dtype"], r["batch"], r["secs"]) == torch_key}
        best = min((r["latency_ms"] for r in ref.values()), default=None)
        cell = lambda v: f"{ref[v]['latency_ms']:.2f}" if v in ref else "-"
        ratio = f"{best / row['latency_ms']:.2f}x" if best else "-"
        base = ""
        if baseline:
            base = f" {baseline[key]['latency_ms']:.2f} |" if key in baseline else " - |"
        print(f"| {model} | {dtype} | {batch} x {secs:g} | {row['latency_ms']:.2f} |{base} "
              f"{cell('eager')} | {cell('graph')} | {row['audio_s_per_s']:,.0f} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ds2rt-gpu")
