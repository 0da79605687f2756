#!/usr/bin/env python3
"""ds2rt's CPU backend against ONNX Runtime on the same DeepSpeech2 weights, in one run.

For each model: random weights in deepspeech.pytorch's module tree (tests/fixtures_src/
make_parity_fixtures.py), saved as a ds2rt .safetensors model and exported to ONNX (ds2rt's own
exporter, `ds2rt convert`). Then, each in its own process:
  - agreement: the same features through ds2rt (`ds2rt run`) and ONNX Runtime, relative L2 of probs;
  - latency at batch 1 (2, 5, 10, 20 s) and throughput at batch 8 and 32 x 10 s: ds2rt via
    `ds2rt bench` on a plan built once by `ds2rt build` (compute time of each run), ONNX Runtime via
    this script's worker (session.run); median of the timed runs after one warm-up;
  - peak resident memory of each process (wait4's ru_maxrss; the ORT worker's includes the Python
    interpreter, numpy and onnxruntime: its RSS before the session is given in brackets).
Both use the same thread count (ORT: intra_op_num_threads, inter_op 1, sequential execution).

    python3 bench/cpu_vs_onnxruntime.py --ds2rt build/tools/ds2rt --threads 2 --out /tmp/ds2cpu
"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures_src"))

# name -> (rnn_type, bidirectional, hidden_layers, hidden_size, lookahead_context)
MODELS = {
    "lstm_bi": ("lstm", True, 5, 1024, None),  # deepspeech.pytorch's default
    "gru_bi": ("gru", True, 5, 1024, None),
    "gru_uni": ("gru", False, 5, 1024, 20),
    "small": ("gru", True, 5, 256, None),
}
SAMPLE_RATE = 16000
BINS = 161


def make_torch_model(name, seed=1):
    import torch
    from make_parity_fixtures import DeepSpeech, LABELS, init_params
    rnn_type, bi, layers, hidden, ctx = MODELS[name]
    torch.manual_seed(seed)
    model = DeepSpeech(rnn_type, hidden, layers, bi, ctx, SAMPLE_RATE, len(LABELS))
    init_params(model, torch.Generator().manual_seed(seed + 7))
    return model.eval()


def save_ds2rt_model(model, name, path):
    from make_parity_fixtures import LABELS, WINDOW_SIZE, WINDOW_STRIDE
    from safetensors.torch import save_file
    rnn_type, bi, layers, hidden, ctx = MODELS[name]
    model_cfg = {"rnn_type": rnn_type, "hidden_size": hidden, "hidden_layers": layers}
    if not bi:
        model_cfg["lookahead_context"] = ctx
    cfg = {"format": "ds2rt.deepspeech2", "version": 1, "model_cfg": model_cfg, "bidirectional": bi,
           "labels": LABELS, "spect_cfg": {"sample_rate": SAMPLE_RATE, "window_size": WINDOW_SIZE,
                                           "window_stride": WINDOW_STRIDE, "window": "hamming"}}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path,
              metadata={"ds2rt.config": json.dumps(cfg)})


def export_onnx(model, ds2rt_model_path, onnx_path, ds2rt_binary):
    """The ONNX model of the same weights, written by ds2rt's own exporter (`ds2rt convert`): inputs
    "features" and "lengths" (int32), the masking of deepspeech.pytorch included, checked against
    ONNX Runtime in tests/python/test_onnx_export.py."""
    del model
    subprocess.run([ds2rt_binary, "convert", ds2rt_model_path, onnx_path], check=True, capture_output=True)


def run_measured(cmd):
    """Runs cmd and returns (stdout, its peak resident memory in MiB). /usr/bin/time measures it: a
    child forked from this Python process would report this process's RSS at fork as its own peak."""
    p = subprocess.run(["/usr/bin/time", "-f", "DS2RT_PEAK_KIB=%M"] + cmd, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    peak = [line for line in p.stderr.splitlines() if line.startswith("DS2RT_PEAK_KIB=")][-1]
    return p.stdout, int(peak.split("=")[1]) / 1024.0


def iterations_for(batch, seconds, hidden):
    work = batch * seconds * (hidden / 1024.0) ** 2
    return 10 if work <= 5 else 5 if work <= 20 else 3 if work <= 80 else 2


def features(batch, seconds, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 1, BINS, int(seconds * 100)), dtype=np.float32)


# ---- ONNX Runtime worker (its own process) ----
def ort_worker(args):
    import onnxruntime as ort
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Python, numpy, onnxruntime
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])
    if args.input:
        x = np.load(args.input)
        np.save(args.output, sess.run(None, {"features": x, "lengths": np.full(x.shape[0], x.shape[3], np.int32)})[0])
        return
    x = features(args.batch, args.seconds, 1)
    for _ in range(args.warmup):
        sess.run(None, {"features": x, "lengths": np.full(x.shape[0], x.shape[3], np.int32)})
    times = []
    for _ in range(args.iterations):
        start = time.perf_counter()
        sess.run(None, {"features": x, "lengths": np.full(x.shape[0], x.shape[3], np.int32)})
        times.append((time.perf_counter() - start) * 1e3)
    print(json.dumps({"latency_ms": float(np.median(times)), "runs": times,
                      "baseline_mib": baseline}))


def ds2rt_plan(args, model_path):
    """The engine built once into a plan file, as deployed; the timed processes load it (as ONNX
    Runtime loads its .onnx), so their peak memory is the runtime's, not the builder's."""
    plan = model_path.replace(".safetensors", f".{args.precision}.plan")
    run_measured([args.ds2rt, "build", model_path, "-o", plan, "--device", "cpu", "--precision", args.precision])
    return plan


def ds2rt_latency(args, plan_path, batch, seconds, iterations):
    json_path = os.path.join(args.out, "ds2rt_row.jsonl")
    cmd = [args.ds2rt, "bench", plan_path, "-t", str(args.threads), "-b", str(batch), "-s", str(seconds), "--warmup", "1",
           "-n", str(iterations), "--json", json_path]
    out, rss = run_measured(cmd)
    with open(json_path) as f:
        row = json.loads(f.readline())
    return row["latency_ms"], rss


def ort_latency(args, onnx_path, batch, seconds, iterations):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--onnx", onnx_path, "--threads", str(args.threads),
           "--batch", str(batch), "--seconds", str(seconds), "--warmup", "1", "--iterations", str(iterations)]
    out, rss = run_measured(cmd)
    row = json.loads(out.strip().splitlines()[-1])
    return row["latency_ms"], rss, row["baseline_mib"]


def agreement(args, name, model_path, onnx_path):
    from safetensors.numpy import save_file, load_file
    x = features(2, 3, 7)
    xin = os.path.join(args.out, f"{name}_x.npy")
    np.save(xin, x)
    st_in = os.path.join(args.out, f"{name}_x.safetensors")
    save_file({"features": x, "lengths": np.full(2, x.shape[3], np.int32)}, st_in)
    ds_out = os.path.join(args.out, f"{name}_ds2rt.safetensors")
    run_measured([args.ds2rt, "run", model_path, "-i", st_in, "-o", ds_out, "-t", str(args.threads)])
    ort_out = os.path.join(args.out, f"{name}_ort.npy")
    run_measured([sys.executable, os.path.abspath(__file__), "--worker", "--onnx", onnx_path, "--threads",
                  str(args.threads), "--input", xin, "--output", ort_out])
    a, b = load_file(ds_out)["probs"].astype(np.float64), np.load(ort_out).astype(np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ds2rt", default=os.path.join(HERE, "..", "build", "tools", "ds2rt"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--precision", default="fp32", help="ds2rt's precision (ONNX Runtime runs fp32)")
    ap.add_argument("--latency-seconds", default="2,5,10,20", help="batch-1 utterance lengths")
    ap.add_argument("--batches", default="8,32", help="throughput batch sizes (10 s utterances)")
    ap.add_argument("--max-iterations", type=int, default=10, help="timed runs per shape at most (after 1 warm-up)")
    ap.add_argument("--no-ort", action="store_true", help="ds2rt only (models and agreement still use the ONNX file)")
    ap.add_argument("--out", default="/tmp/ds2rt_cpu_bench")
    ap.add_argument("--json", help="write every result row here (one JSON per line)")
    # worker mode
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--output", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--iterations", type=int, default=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return ort_worker(args)

    args.ds2rt = os.path.abspath(args.ds2rt)
    os.makedirs(args.out, exist_ok=True)
    import onnxruntime
    import torch
    print(f"# ds2rt {args.ds2rt} ({args.precision}) vs onnxruntime {onnxruntime.__version__} (fp32), "
          f"torch {torch.__version__} for export; {args.threads} threads; {os.cpu_count()} CPUs visible")
    shapes = [(1, float(s)) for s in args.latency_seconds.split(",") if s]
    shapes += [(int(b), 10.0) for b in args.batches.split(",") if b]
    rows = []
    header = ("| model | batch x s | ds2rt ms | ORT ms | speed-up | ds2rt audio-s/s | ORT audio-s/s | "
              "ds2rt peak MiB | ORT peak MiB (runtime baseline) | rel L2 |")
    print(header)
    print("|" + "---|" * 10)
    for name in args.models.split(","):
        model = make_torch_model(name)
        model_path = os.path.join(args.out, f"{name}.safetensors")
        onnx_path = os.path.join(args.out, f"{name}.onnx")
        save_ds2rt_model(model, name, model_path)
        export_onnx(model, model_path, onnx_path, args.ds2rt)
        del model
        plan_path = ds2rt_plan(args, model_path)
        err = agreement(args, name, plan_path, onnx_path)
        hidden = MODELS[name][3]
        for batch, seconds in shapes:
            n = min(args.max_iterations, iterations_for(batch, seconds, hidden))
            d_ms, d_rss = ds2rt_latency(args, plan_path, batch, seconds, n)
            o_ms, o_rss, o_base = (float("nan"),) * 3
            if not args.no_ort:
                o_ms, o_rss, o_base = ort_latency(args, onnx_path, batch, seconds, n)
            row = {"model": name, "batch": batch, "seconds": seconds, "iterations": n, "ds2rt_ms": d_ms,
                   "ort_ms": o_ms, "ds2rt_peak_mib": d_rss, "ort_peak_mib": o_rss, "ort_baseline_mib": o_base,
                   "rel_l2": err, "precision": args.precision, "threads": args.threads}
            rows.append(row)
            audio = batch * seconds
            print(f"| {name} | {batch} x {seconds:g} | {d_ms:.1f} | {o_ms:.1f} | {o_ms / d_ms:.2f}x | "
                  f"{audio / d_ms * 1e3:.1f} | {audio / o_ms * 1e3:.1f} | {d_rss:.0f} | {o_rss:.0f} ({o_base:.0f}) | "
                  f"{err:.1e} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
