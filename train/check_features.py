#!/usr/bin/env python3
"""Proves train/features.py (the torch features train.py learns on) equal ds2rt's inference features.

Synthesises WAVs (espeak-ng, several lengths incl. odd ones, plus a near-silent and a very short one) or takes
--wav files, computes ds2rt's features with a small helper linked against build/libds2rt.a
(train/ds2rt_features.cpp, compiled here on first use) and train/features.py's, on utterances batched
together with others of different lengths (as in training, so padding/reflection per utterance is tested),
and checks max |a - b| / max(|b|) < 1e-4 and the frame counts. Exit status 0 when all pass.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import features as feats  # noqa: E402


def build_helper(build_dir):
    exe = os.path.join(build_dir, "ds2rt_features")
    src = os.path.join(HERE, "ds2rt_features.cpp")
    lib = os.path.join(build_dir, "libds2rt.a")
    if os.path.exists(exe) and os.path.getmtime(exe) >= max(os.path.getmtime(src), os.path.getmtime(lib)):
        return exe
    libs = subprocess.run(["pkg-config", "--libs", "sndfile", "soxr", "fftw3f", "libzip"], capture_output=True,
                          text=True, check=True).stdout.split()
    subprocess.run(["g++", "-std=c++20", "-O1", "-I" + os.path.join(ROOT, "include"), src, lib, *libs, "-ldnnl",
                    "-fopenmp", "-lz", "-o", exe], check=True)
    return exe


def write_wav(path, samples):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def read_wav(path):
    with wave.open(path, "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--wav", nargs="*", default=[], help="16 kHz mono int16 WAVs (default: synthesise some)")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    exe = build_helper(args.build_dir)
    tmp = tempfile.mkdtemp(prefix="ds2rt_feat_")
    wavs = list(args.wav)
    if not wavs:
        for i, (voice, text) in enumerate([("en-us+m3", "The quick brown fox jumps over the lazy dog."),
                                           ("en-gb+f2", "Hello world"), ("en-029", "One two three four five six.")]):
            raw = os.path.join(tmp, f"raw{i}.wav")
            subprocess.run(["espeak-ng", "-v", voice, "-w", raw, text], check=True)
            out = os.path.join(tmp, f"s{i}.wav")
            subprocess.run(["sox", raw, "-r", "16000", "-b", "16", "-c", "1", out, "trim", "0", f"={1.0 + 0.37 * i + 0.0001 * i}"
                            ], check=True)
            wavs.append(out)
        rng = np.random.default_rng(0)
        write_wav(os.path.join(tmp, "quiet.wav"), rng.integers(-3, 4, 4321))  # near silence
        write_wav(os.path.join(tmp, "short.wav"), rng.integers(-20000, 20000, 170))  # shorter than the 160-sample reflect padding + window
        write_wav(os.path.join(tmp, "loud.wav"), np.clip(rng.normal(0, 20000, 16161), -32768, 32767))
        wavs += [os.path.join(tmp, n) for n in ("quiet.wav", "short.wav", "loud.wav")]
    audio = [read_wav(w) for w in wavs]
    lengths = torch.tensor([len(a) for a in audio])
    starts = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
    flat = torch.from_numpy(np.concatenate(audio).astype(np.int16))
    got, frames = feats.features(flat, starts, lengths)  # all in one padded batch
    worst = 0.0
    ok = True
    for i, w in enumerate(wavs):
        ref_path = os.path.join(tmp, f"ref{i}.npy")
        subprocess.run([exe, w, ref_path], check=True)
        ref = np.load(ref_path)
        n = int(frames[i])
        mine = got[i, 0, :, :n].numpy()
        pad_zero = bool((got[i, 0, :, n:] == 0).all())
        if ref.shape != mine.shape:
            print(f"FAIL {os.path.basename(w)}: shape ds2rt {ref.shape}, torch {mine.shape}")
            ok = False
            continue
        rel = float(np.max(np.abs(mine - ref)) / np.max(np.abs(ref)))
        worst = max(worst, rel)
        status = "ok" if rel < args.tol and pad_zero else "FAIL"
        ok &= status == "ok"
        print(f"{status} {os.path.basename(w)}: {len(audio[i])} samples, {ref.shape[0]} bins x {ref.shape[1]} frames, "
              f"max rel diff {rel:.2e}, padding zero {pad_zero}")
    print(f"{'PASS' if ok else 'FAIL'}: worst relative difference {worst:.2e} (tolerance {args.tol:g})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
