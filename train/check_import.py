#!/usr/bin/env python3
"""Checks a trained checkpoint end to end through ds2rt: converts it (ds2rt convert), transcribes the first N
files of a manifest with ds2rt (greedy) and with the PyTorch model (train/features.py + the same weights),
and compares the transcripts and CERs. Identical transcripts on (nearly) all files means the importer, the
features and the engine reproduce what was trained.

  python3 train/check_import.py MODEL.ckpt MANIFEST.csv [--n 40] [--ds2rt build/tools/ds2rt]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train as T  # noqa: E402
import features as feats  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("manifest")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--ds2rt", default=os.path.join(HERE, "..", "build", "tools", "ds2rt"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    mc = ck["hyper_parameters"]["model_cfg"]
    model = T.build_model({**mc, "lookahead_context": mc.get("lookahead_context")})
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck["state_dict"].items()})
    model.eval()
    rows = T.read_manifest(args.manifest)[: args.n]
    audio = [T.read_wav(w) for w, _ in rows]
    lengths = torch.tensor([len(a) for a in audio])
    starts = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
    flat = torch.from_numpy(np.concatenate(audio))
    with torch.no_grad():
        torch_hyps = []
        for i in range(len(rows)):  # one at a time: no padding effects
            x, fr = feats.features(flat, starts[i:i + 1], lengths[i:i + 1])
            z, ol = model.logits(x, fr)
            torch_hyps += T.greedy(z, ol)
    tmp = tempfile.mkdtemp(prefix="ds2rt_import_")
    st = os.path.join(tmp, "model.safetensors")
    subprocess.run([args.ds2rt, "convert", args.ckpt, st], check=True, capture_output=True)
    out = subprocess.run([args.ds2rt, "transcribe", st, *[w for w, _ in rows], "-t", str(args.threads)], check=True,
                         capture_output=True, text=True).stdout
    ds_hyps = {}
    for line in out.splitlines():
        path, _, text = line.partition("\t")
        ds_hyps[os.path.abspath(path)] = text.strip()
    if len(rows) == 1:
        ds_hyps = {os.path.abspath(rows[0][0]): out.strip()}
    same = 0
    e_t = e_d = chars = 0
    for (w, ref), th in zip(rows, torch_hyps):
        dh = ds_hyps.get(os.path.abspath(w), "<missing>")
        same += dh == th
        e_t += T.edit_distance(th, ref)
        e_d += T.edit_distance(dh, ref)
        chars += len(ref)
        if dh != th:
            print(f"differs: {os.path.basename(w)}\n  torch: {th}\n  ds2rt: {dh}")
    print(f"{same}/{len(rows)} transcripts identical; greedy CER torch {e_t / chars:.4f}, ds2rt {e_d / chars:.4f}")


if __name__ == "__main__":
    main()
