#!/usr/bin/env python3
"""Each fp32 row of bench/cpu_vs_onnxruntime.py's --json output against this CPU's two ceilings.

A row's bound is the larger of: reading the recurrent weights that do not stay in L2 once per step
(1024-unit layers; --read GB/s per core, bench/cpu_probes/stream_read.cpp) and all of the model's
arithmetic at the FMA peak (--peak GFLOP/s for all cores, bench/cpu_probes/fma_peak.cpp). On CPUs with AMX,
--tile-peak gives the fp32 GEMMs' rate as three bf16 products on the tiles (all cores, bench/cpu_probes/
bf16x3_gemm.cpp): the input projections, the FC and, from 16 utterances, the recurrent products count at
that rate, the rest at --peak (src/cpu/amx_gemm.h says which GEMMs run there). The last
column says how close to that bound an engine must come to run 1.5x ONNX Runtime (over 100%: no engine can).
The second convolution counts as ds2rt computes it since session 16, through FFTs (src/cpu/
convolution_fft.cpp: ~25x fewer FLOPs than the direct form); --direct-convolutions counts the direct
form (rows measured with DS2RT_CPU_CONV=direct, or before).

    python3 bench/cpu_bounds.py /tmp/qb_fp32.jsonl --peak 366 --read 27 --cores 2
"""
import argparse
import json
import math


def fft_convolution_flop(steps, channels=32, outputs=32, nf=105, nt=64, width=11):
    """FLOP of the second convolution through FFTs: time tiles of nt frames (nt - width + 1 outputs each),
    a 2-D real FFT per input and output channel (2.5 N log2 N each way), 4 real MACs a complex product."""
    tiles = -(-steps // (nt - width + 1))
    transforms = tiles * (channels + outputs) * 2.5 * nf * nt * math.log2(nf * nt)
    products = tiles * nf * (nt // 2 + 1) * channels * outputs * 8
    return transforms + products


def model(cell, bidirectional, hidden, layers=5, seconds=10.0, direct=False):
    """FLOP of deepspeech.pytorch's model on one utterance ({"convolutions", "projections", "recurrent"}:
    the FC counts with the projections) and the bytes of recurrent weights read from beyond L2."""
    gates = {"lstm": 4, "gru": 3}[cell] * hidden
    dirs = 2 if bidirectional else 1
    steps = int(50 * seconds)  # 100 frames a second, the first convolution's time stride 2
    second = 32 * 41 * steps * 32 * 21 * 11 if direct else fft_convolution_flop(steps) / 2  # MACs
    convolutions = 32 * 81 * steps * 41 * 11 + second
    projections = steps * dirs * gates * (1312 + (layers - 1) * hidden)  # 32 x 41 features into layer 0
    recurrent = layers * steps * dirs * gates * hidden
    flop = {"convolutions": 2 * convolutions, "projections": 2 * (projections + steps * hidden * 29),
            "recurrent": 2 * recurrent}
    streamed = gates * hidden * 4 > (2 << 20)  # a direction's W_h larger than a core's L2
    return flop, recurrent * 4 if streamed else 0


def compute_seconds(flop, batch, peak, tile_peak):
    """All of a batch's arithmetic at the FMA peak, or its tile GEMMs at the tile rate where one is given."""
    on_tiles = {"projections"} | ({"recurrent"} if batch >= 16 else set()) if tile_peak else set()
    return batch * sum(f / ((tile_peak if part in on_tiles else peak) * 1e9) for part, f in flop.items())


MODELS = {"lstm_bi": ("lstm", True, 1024), "gru_bi": ("gru", True, 1024), "gru_uni": ("gru", False, 1024),
          "small": ("gru", True, 256)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", help="JSON lines from cpu_vs_onnxruntime.py --json (fp32, with ORT)")
    parser.add_argument("--peak", type=float, default=366.0, help="FMA peak of all cores, GFLOP/s")
    parser.add_argument("--tile-peak", type=float, default=0.0,
                        help="fp32 GFLOP/s of the AMX tile GEMMs, all cores (0: no AMX, all at --peak)")
    parser.add_argument("--read", type=float, default=27.0, help="L3 read rate of one core, GB/s")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--direct-convolutions", action="store_true",
                        help="count the second convolution's direct FLOPs (DS2RT_CPU_CONV=direct or older rows)")
    args = parser.parse_args()
    print("| model | batch x s | ORT ms | ds2rt ms | ds2rt vs ORT | bound ms | bound | 1.5x ORT ms | "
          "share of the bound 1.5x ORT needs |")
    print("|---|---|---|---|---|---|---|---|---|")
    with open(args.rows) as f:
        for line in f:
            r = json.loads(line)
            if r["model"] not in MODELS or not r.get("ort_ms"):
                continue
            flop, streamed = model(*MODELS[r["model"]], seconds=r["seconds"], direct=args.direct_convolutions)
            t_read = streamed / (args.read * 1e9 * args.cores)
            t_flop = compute_seconds(flop, r["batch"], args.peak, args.tile_peak)
            bound, target = max(t_read, t_flop) * 1e3, r["ort_ms"] / 1.5
            need = bound / target
            print(f"| {r['model']} | {r['batch']} x {r['seconds']:g} | {r['ort_ms']:,.1f} | {r['ds2rt_ms']:,.1f} | "
                  f"{r['ort_ms'] / r['ds2rt_ms']:.2f}x | {bound:,.0f} | {'weight reads' if t_read > t_flop else 'arithmetic' if args.tile_peak else 'FMA peak'} | "
                  f"{target:,.0f} | {need * 100:.0f}%{' (no engine can)' if need > 1 else ''} |")


if __name__ == "__main__":
    main()
