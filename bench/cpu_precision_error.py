#!/usr/bin/env python3
"""Output error of ds2rt's int8 and bf16 CPU engines against its fp32 engine, on the benchmark's own
random-weight DeepSpeech2 models (bench/cpu_vs_onnxruntime.py: deepspeech.pytorch's module tree,
make_parity_fixtures.init_params, peaked posteriors) at other seeds and sizes than the benchmark's.
Relative L2 of the probabilities, 2 utterances (3 s and 2.1 s) of random features.

    python3 bench/cpu_precision_error.py --ds2rt build-cpu/tools/ds2rt --model gru_bi --hidden 256 --seeds 1,2,3

(ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 in the environment shows a CPU without AMX.)
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cpu_vs_onnxruntime as bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ds2rt", default=os.path.join(HERE, "..", "build", "tools", "ds2rt"))
    ap.add_argument("--model", default="gru_bi", choices=sorted(bench.MODELS))
    ap.add_argument("--hidden", type=int, help="hidden size (default: the model's)")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from safetensors.numpy import load_file, save_file
    if args.hidden:
        rnn_type, bi, layers, _, ctx = bench.MODELS[args.model]
        bench.MODELS[args.model] = (rnn_type, bi, layers, args.hidden, ctx)
    with tempfile.TemporaryDirectory() as tmp:
        x = bench.features(2, 3, 7)
        inputs = os.path.join(tmp, "x.safetensors")
        save_file({"features": x, "lengths": np.array([300, 211], np.int32)}, inputs)
        for seed in (int(s) for s in args.seeds.split(",")):
            path = os.path.join(tmp, f"{args.model}_{seed}.safetensors")
            bench.save_ds2rt_model(bench.make_torch_model(args.model, seed), args.model, path)
            probs = {}
            for precision in ("fp32", "int8", "bf16"):
                out = os.path.join(tmp, f"out_{precision}.safetensors")
                subprocess.run([args.ds2rt, "run", path, "-i", inputs, "-o", out, "--precision", precision,
                                "-t", str(args.threads)], check=True, capture_output=True)
                probs[precision] = load_file(out)["probs"].astype(np.float64)
            ref = probs["fp32"]
            err = {p: np.linalg.norm(probs[p] - ref) / np.linalg.norm(ref) for p in ("int8", "bf16")}
            print(f"{args.model} hidden {bench.MODELS[args.model][3]} seed {seed}: int8 {err['int8']:.2e}, "
                  f"bf16 {err['bf16']:.2e} (relative L2 against fp32 ds2rt)", flush=True)


if __name__ == "__main__":
    main()
