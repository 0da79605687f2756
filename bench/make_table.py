#!/usr/bin/env python3
"""Turns one GPU benchmark run (scripts/gpu-check.sh bench) into the markdown table of
bench/RESULTS.md: ds2rt beside the faster of PyTorch's two variants (eager packed cuDNN, or a
CUDA graph), same card, same shapes, same precision, same run.

    python3 bench/make_table.py OUT_DIR   # reads OUT_DIR/ds2rt.jsonl and OUT_DIR/torch_ds2.json
"""
import json
import os
import sys


def main(out):
    ours = [json.loads(line) for line in open(os.path.join(out, "ds2rt.jsonl")) if line.strip()]
    theirs = json.load(open(os.path.join(out, "torch_ds2.json")))
    print("| model | precision | batch x seconds | ds2rt ms | PyTorch eager ms | PyTorch graph ms | "
          "ds2rt audio-s/s | speed-up vs faster PyTorch |")
    print("|---|---|---|---|---|---|---|---|")
    for row in ours:
        key = (row["model"], row["dtype"], row["batch"], row["secs"])
        ref = {r["variant"]: r for r in theirs if (r["model"], r["dtype"], r["batch"], r["secs"]) == key}
        best = min((r["latency_ms"] for r in ref.values()), default=None)
        cell = lambda v: f"{ref[v]['latency_ms']:.2f}" if v in ref else "-"
        ratio = f"{best / row['latency_ms']:.2f}x" if best else "-"
        print(f"| {row['model']} | {row['dtype']} | {row['batch']} x {row['secs']:g} | {row['latency_ms']:.2f} | "
              f"{cell('eager')} | {cell('graph')} | {row['audio_s_per_s']:,.0f} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ds2rt-gpu")
