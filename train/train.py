#!/usr/bin/env python3
"""Trains a DeepSpeech2 (deepspeech.pytorch's architecture and state_dict names) on a manifest of 16 kHz WAVs.

The model is the one in tests/fixtures_src/make_parity_fixtures.py (imported, not copied): conv front end ->
stacked GRU/LSTM (bidirectional outputs summed; sequence-wise BN between layers) -> [lookahead] -> BN + FC.
Features are computed on the device by train/features.py, exactly as ds2rt computes them.

Training: all audio in memory (int16, on the device), batches bucketed by length (a budget of audio seconds
per batch), bf16 autocast on CUDA, CTC loss in fp32 (zero_infinity), AdamW with a one-cycle learning rate
scheduled on TRAINING TIME (--total-minutes), optional SpecAugment masks, greedy CER on a held-out slice
printed as it goes. --minutes bounds this invocation; it saves OUT/last.pt (full state) and stops cleanly,
and the next invocation resumes from it. OUT/model.ckpt is the importable checkpoint (Lightning-style dict
{'state_dict', 'hyper_parameters': {labels, model_cfg, spect_cfg, precision}}), rewritten at every save.
"""
import argparse
import json
import math
import os
import sys
import time
import wave
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures_src"))
from make_parity_fixtures import LABELS, DeepSpeech  # noqa: E402  (deepspeech.pytorch's module tree)
import features as feats  # noqa: E402

CHAR = {c: i for i, c in enumerate(LABELS)}


# ---------------------------------------------------------------- data
def read_manifest(path):
    """deepspeech.pytorch CSV (wav_path,txt_path) or NeMo JSONL (audio_filepath, text); relative paths
    are relative to the manifest's folder. -> [(wav_path, transcript)]"""
    base = os.path.dirname(os.path.abspath(path))
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if path.endswith((".jsonl", ".json")):
                j = json.loads(line)
                wav, text = j["audio_filepath"], j["text"]
            else:
                wav, txt = line.split(",", 1)
                with open(txt if os.path.isabs(txt) else os.path.join(base, txt)) as t:
                    text = t.read()
            rows.append((wav if os.path.isabs(wav) else os.path.join(base, wav), text.strip()))
    return rows


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getframerate() == feats.SAMPLE_RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def load_corpus(manifest, limit=0, threads=16):
    """-> (flat int16 array, starts, lengths, transcripts); cached next to the manifest as .npz."""
    cache = manifest + (f".{limit}" if limit else "") + ".cache.npz"
    if os.path.exists(cache) and os.path.getmtime(cache) >= os.path.getmtime(manifest):
        z = np.load(cache)
        return z["flat"], z["starts"], z["lengths"], [str(t) for t in z["texts"]]
    rows = read_manifest(manifest)
    if limit:
        rows = rows[:limit]
    with ThreadPoolExecutor(threads) as ex:
        audio = list(ex.map(read_wav, [r[0] for r in rows]))
    lengths = np.array([len(a) for a in audio], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flat = np.concatenate(audio)
    texts = [r[1] for r in rows]
    np.savez(cache + ".tmp.npz", flat=flat, starts=starts, lengths=lengths, texts=np.array(texts))
    os.replace(cache + ".tmp.npz", cache)
    return flat, starts, lengths, texts


def encode(text):
    return [CHAR[c] for c in text if c in CHAR and c != "_"]


def make_batches(lengths, seconds, rng):
    """Buckets: sort by length, cut into batches of at most `seconds` of padded audio, shuffle batch order."""
    order = np.argsort(lengths + rng.integers(0, feats.HOP * 20, len(lengths)))  # jitter: new batches each epoch
    budget = seconds * feats.SAMPLE_RATE
    batches, cur, longest = [], [], 0
    for i in order:
        longest_new = max(longest, lengths[i])
        if cur and longest_new * (len(cur) + 1) > budget:
            batches.append(cur)
            cur, longest_new = [], lengths[i]
        cur.append(i)
        longest = longest_new
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


# ---------------------------------------------------------------- model
def build_model(cfg):
    return DeepSpeech(cfg["rnn_type"], cfg["hidden_size"], cfg["hidden_layers"], cfg["bidirectional"],
                      cfg.get("lookahead_context"), feats.SAMPLE_RATE, len(LABELS))


def hyper_parameters(cfg):
    model_cfg = {"rnn_type": cfg["rnn_type"], "hidden_size": cfg["hidden_size"],
                 "hidden_layers": cfg["hidden_layers"], "bidirectional": cfg["bidirectional"]}
    if not cfg["bidirectional"]:
        model_cfg["lookahead_context"] = cfg["lookahead_context"]
    return {"labels": list(LABELS), "model_cfg": model_cfg, "precision": 32,
            "spect_cfg": {"sample_rate": feats.SAMPLE_RATE, "window_size": feats.WINDOW_SIZE,
                          "window_stride": feats.WINDOW_STRIDE, "window": "hamming"}}


def spec_augment(x, frames, rng_t, freq_masks=2, freq_width=15, time_masks=2, time_frac=0.05):
    b, _, nb, t = x.shape
    dev = x.device
    keep = torch.ones(b, 1, nb, t, dtype=torch.bool, device=dev)
    f_idx = torch.arange(nb, device=dev)[None, :]
    t_idx = torch.arange(t, device=dev)[None, :]
    for _ in range(freq_masks):
        w = torch.randint(0, freq_width + 1, (b, 1), device=dev, generator=rng_t)
        f0 = (torch.rand(b, 1, device=dev, generator=rng_t) * (nb - w)).long()
        keep &= ~((f_idx >= f0) & (f_idx < f0 + w))[:, None, :, None]
    for _ in range(time_masks):
        w = (torch.rand(b, 1, device=dev, generator=rng_t) * time_frac * frames[:, None]).long()
        t0 = (torch.rand(b, 1, device=dev, generator=rng_t) * (frames[:, None] - w)).long()
        keep &= ~((t_idx >= t0) & (t_idx < t0 + w))[:, None, None, :]
    return x * keep


def greedy(log_probs, out_lens):
    best = log_probs.argmax(-1).cpu().numpy()
    texts = []
    for row, n in zip(best, out_lens.cpu().numpy()):
        prev, s = -1, []
        for k in row[:n]:
            if k != prev and k != 0:
                s.append(LABELS[k])
            prev = k
        texts.append(" ".join("".join(s).split()))  # runs of spaces count once, as ds2rt decodes
    return texts


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return prev[-1]


def evaluate(model, data, device, seconds, amp):
    flat, starts, lengths, texts = data
    model.eval()
    errs = chars = werrs = words = 0
    hyps = []
    with torch.no_grad():
        order = np.argsort(lengths)
        batches = make_batches(lengths[order], seconds, np.random.default_rng(0))
        for bidx in batches:
            idx = order[np.sort(bidx)]
            x, fr = feats.features(flat, torch.from_numpy(starts[idx]).to(device),
                                   torch.from_numpy(lengths[idx]).to(device))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits, out_lens = model.logits(x, fr)
            for i, h in zip(idx, greedy(logits.float(), out_lens)):
                ref = texts[i]
                errs += edit_distance(h, ref)
                chars += len(ref)
                werrs += edit_distance(h.split(), ref.split())
                words += len(ref.split())
                hyps.append((int(i), ref, h))
    model.train()
    return errs / max(chars, 1), werrs / max(words, 1), hyps


def rates_by_voice(manifest, hyps):
    """Greedy CER/WER per TTS engine (and per voice) from the NeMo manifest beside a CSV one, when there is one.
    hyps are (utterance index, reference, hypothesis); synthesize.py writes both manifests in the same order.
    (Until 2026-12-06 references were matched by text, which put a sentence spoken by two voices, ~300 of the
    2,000 test utterances, under the first voice's name: it moved errors from ked_diphone to espeak-ng.)"""
    jsonl = manifest[:-4] + ".jsonl" if manifest.endswith(".csv") else manifest
    if not os.path.exists(jsonl):
        return {}
    voices = [json.loads(line).get("voice", "?") for line in open(jsonl) if line.strip()]
    sums = {}
    for i, ref, hyp in hyps:
        v = voices[i] if i < len(voices) else "?"
        for key in (v.split(":")[0], v):
            e = sums.setdefault(key, [0, 0, 0, 0])
            e[0] += edit_distance(hyp, ref)
            e[1] += len(ref)
            e[2] += edit_distance(hyp.split(), ref.split())
            e[3] += len(ref.split())
    return {k: {"cer": round(e[0] / max(e[1], 1), 4), "wer": round(e[2] / max(e[3], 1), 4)} for k, e in sums.items()}


# ---------------------------------------------------------------- checkpoints
def save(path, obj):
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)


def export_ckpt(model, cfg, step, epoch, path):
    state = {k: v.detach().float().cpu() if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    save(path, {"epoch": epoch, "global_step": step, "state_dict": state, "hyper_parameters": hyper_parameters(cfg)})


def lr_at(frac, max_lr, warmup=0.1, start_div=25.0, final_div=1e3):
    frac = min(max(frac, 0.0), 1.0)
    if frac < warmup:
        return max_lr / start_div + (max_lr - max_lr / start_div) * frac / warmup
    p = (frac - warmup) / (1 - warmup)
    return max_lr / final_div + (max_lr - max_lr / final_div) * 0.5 * (1 + math.cos(math.pi * p))


def load_init(path):
    """A checkpoint dict ({'state_dict', 'hyper_parameters'}) from a model.ckpt or a ds2rt .safetensors model.

    ds2rt's model files keep deepspeech.pytorch's tensor names and its config in the metadata, so the bundled
    models fine-tune without the checkpoints they came from (read here without the safetensors package)."""
    if not path.endswith(".safetensors"):
        return torch.load(path, map_location="cpu", weights_only=False)
    dtypes = {"F16": torch.float16, "F32": torch.float32, "BF16": torch.bfloat16, "I64": torch.int64}
    with open(path, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        data = bytearray(f.read())
    meta = header.pop("__metadata__", {})
    if "ds2rt.config" not in meta:
        raise SystemExit(f"{path}: no ds2rt.config metadata: not a ds2rt model file")
    state = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        flat = torch.frombuffer(data, dtype=dtypes[t["dtype"]], count=(end - begin) // dtypes[t["dtype"]].itemsize,
                                offset=begin) if end > begin else torch.empty(0, dtype=dtypes[t["dtype"]])
        state[name] = flat.reshape(t["shape"]).clone()
    config = json.loads(meta["ds2rt.config"])
    config["model_cfg"].setdefault("bidirectional", config.get("bidirectional", True))
    return {"state_dict": state, "hyper_parameters": config}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True, help="train manifest CSV (wav_path,TRANSCRIPT)")
    ap.add_argument("--val", required=True, help="held-out manifest CSV (progress CER and final CER)")
    ap.add_argument("--out", required=True, help="folder for last.pt, model.ckpt, log.jsonl")
    ap.add_argument("--rnn-type", default="gru", choices=["gru", "lstm"])
    ap.add_argument("--hidden-size", type=int, default=384)
    ap.add_argument("--hidden-layers", type=int, default=5)
    ap.add_argument("--unidirectional", action="store_true")
    ap.add_argument("--lookahead", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=8.0, help="training time of this invocation")
    ap.add_argument("--total-minutes", type=float, default=8.0, help="whole schedule (over resumes)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--clip", type=float, default=200.0)
    ap.add_argument("--batch-seconds", type=float, default=600.0, help="padded audio seconds per batch")
    ap.add_argument("--spec-augment", type=int, default=1)
    ap.add_argument("--vtlp", type=float, default=0.0, help="vocal tract length perturbation: each training "
                    "utterance's frequencies scaled by a factor in [1 / (1 + VTLP), 1 + VTLP] (0: off; e.g. 0.15)")
    ap.add_argument("--amp", type=int, default=0, help="bf16 autocast (1) or fp32 with TF32 (0)")
    ap.add_argument("--val-utts", type=int, default=300, help="held-out utterances for progress CER")
    ap.add_argument("--val-every", type=float, default=60.0, help="seconds between progress CERs")
    ap.add_argument("--save-every", type=float, default=120.0, help="seconds between checkpoints")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training utterances")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--init", default="", help="start from this model's weights and architecture (fine-tuning; a new "
                    "optimizer and schedule): a model.ckpt or a ds2rt .safetensors model such as models/*.safetensors; "
                    "ignored when OUT/last.pt exists")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.time()
    device = torch.device(args.device)
    amp = device.type == "cuda" and bool(args.amp)
    if device.type == "cuda":
        tf32 = os.environ.get("DS2_TF32", "1") == "1"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = False  # every batch has another length: no per-shape autotuning
    os.makedirs(args.out, exist_ok=True)
    last = os.path.join(args.out, "last.pt")
    resume = torch.load(last, map_location="cpu", weights_only=False) if os.path.exists(last) else None
    init = None if resume or not args.init else load_init(args.init)
    if resume:
        cfg = resume["cfg"]
    elif init:
        mc = init["hyper_parameters"]["model_cfg"]
        cfg = {"rnn_type": mc["rnn_type"], "hidden_size": mc["hidden_size"], "hidden_layers": mc["hidden_layers"],
               "bidirectional": mc["bidirectional"], "lookahead_context": mc.get("lookahead_context"),
               "total_minutes": args.total_minutes, "lr": args.lr, "init": args.init}
    else:
        cfg = {"rnn_type": args.rnn_type, "hidden_size": args.hidden_size, "hidden_layers": args.hidden_layers,
               "bidirectional": not args.unidirectional,
               "lookahead_context": None if not args.unidirectional else args.lookahead,
               "total_minutes": args.total_minutes, "lr": args.lr}
    total_s = cfg["total_minutes"] * 60.0
    log = open(os.path.join(args.out, "log.jsonl"), "a")

    def emit(**kv):
        kv["wall"] = round(time.time() - t_start, 1)
        print(json.dumps(kv), flush=True)
        log.write(json.dumps(kv) + "\n")
        log.flush()

    torch.manual_seed(args.seed)
    model = build_model(cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=args.weight_decay)
    state = {"step": 0, "epoch": 0, "trained_s": 0.0, "audio_s": 0.0, "batch_in_epoch": 0}
    if init:  # fp16 exports included: the weights go back to fp32 for training
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in init["state_dict"].items()})
    if resume:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        state = resume["state"]
    emit(event="start", cfg=cfg, params=n_params, resumed=bool(resume), **state, device=str(device),
         torch=torch.__version__)
    if state["trained_s"] >= total_s:
        emit(event="already_done")

    t0 = time.time()
    flat, starts, lengths, texts = load_corpus(args.train, args.limit)
    vflat, vstarts, vlengths, vtexts = load_corpus(args.val)
    nv = min(args.val_utts, len(vtexts))
    val = (torch.from_numpy(vflat).to(device), vstarts[:nv], vlengths[:nv], vtexts[:nv])
    dflat = torch.from_numpy(flat).to(device)
    targets = [torch.tensor(encode(t), dtype=torch.int32) for t in texts]
    emit(event="data", train_utts=len(texts), train_hours=round(lengths.sum() / feats.SAMPLE_RATE / 3600, 2),
         val_utts=nv, load_s=round(time.time() - t0, 1))

    if amp:  # bf16 autocast with packed cuDNN GRUs: probe once, fall back to fp32 (TF32) if unsupported
        try:
            idx = np.argsort(lengths)[:4]
            x, fr = feats.features(dflat, torch.from_numpy(starts[idx]).to(device), torch.from_numpy(lengths[idx]).to(device))
            with torch.autocast(device.type, dtype=torch.bfloat16):
                z, _ = model.logits(x, fr)
            z.float().sum().backward()
            opt.zero_grad(set_to_none=True)
        except Exception as e:  # noqa: BLE001  (any refusal: train in fp32 rather than not at all)
            amp = False
            emit(event="amp_off", reason=str(e)[:300])
    ctc = torch.nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
    gen = torch.Generator(device=device).manual_seed(args.seed + state["step"])
    budget = args.minutes * 60.0
    t_run = time.time()
    last_val = last_save = time.time()
    window_loss, window_n, window_audio, window_t = 0.0, 0, 0.0, time.time()
    model.train()
    tick = time.time()
    done = state["trained_s"] >= total_s
    while not done:
        batches = make_batches(lengths, args.batch_seconds, np.random.default_rng(args.seed * 1000 + state["epoch"]))
        while state["batch_in_epoch"] < len(batches):
            idx = np.array(batches[state["batch_in_epoch"]])
            lr = lr_at(state["trained_s"] / total_s, cfg["lr"])
            for g in opt.param_groups:
                g["lr"] = lr
            warp = None
            if args.vtlp > 0:  # log-uniform in [1 / (1 + vtlp), 1 + vtlp] for each utterance
                span = math.log1p(args.vtlp)
                warp = torch.exp((torch.rand(len(idx), device=device, generator=gen) * 2 - 1) * span)
            x, fr = feats.features(dflat, torch.from_numpy(starts[idx]).to(device),
                                   torch.from_numpy(lengths[idx]).to(device), warp=warp)
            if args.spec_augment:
                x = spec_augment(x, fr, gen)
            tg = [targets[i] for i in idx]
            tgt_lens = torch.tensor([len(t) for t in tg], dtype=torch.int32)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits, out_lens = model.logits(x, fr)
            log_probs = F.log_softmax(logits.float(), -1).transpose(0, 1)  # T x N x C, fp32
            # The CTC loss runs on the CPU: with PyTorch 2.11's CUDA ctc_loss (this T x N x C view,
            # concatenated int32 targets) no model learned on the H100 (loss stuck near 280, CER 1.0;
            # .contiguous() helped only partly), while the same runs with the loss on the CPU reached
            # CER 0.24 in 3 minutes (train/README.md). DS2_CTC=device|contiguous brings back the GPU loss.
            ctc_mode = os.environ.get("DS2_CTC", "cpu")
            if ctc_mode == "contiguous":
                log_probs = log_probs.contiguous()
            ctc_device = torch.device("cpu") if ctc_mode == "cpu" else device
            loss = ctc(log_probs.to(ctc_device), torch.cat(tg).to(ctc_device), out_lens.to(ctc_device),
                       tgt_lens.to(ctc_device)) / len(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            if torch.isfinite(loss) and torch.isfinite(grad_norm):  # one bad batch must not poison the weights
                opt.step()
            else:
                state["skipped"] = state.get("skipped", 0) + 1
            state["step"] += 1
            state["batch_in_epoch"] += 1
            audio = float(lengths[idx].sum()) / feats.SAMPLE_RATE
            state["audio_s"] += audio
            window_loss += loss.item()
            window_n += 1
            window_audio += audio
            if device.type == "cuda" and state["step"] % 10 == 0:
                torch.cuda.synchronize()
            now = time.time()
            state["trained_s"] += now - tick  # wall time of the loop (steps, progress CERs, saves)
            tick = now
            finished = state["trained_s"] >= total_s
            out_of_time = now - t_run >= budget
            if now - last_val >= args.val_every or finished or out_of_time:
                cer, wer, hyps = evaluate(model, val, device, args.batch_seconds, amp)
                emit(event="progress", step=state["step"], epoch=state["epoch"], lr=round(lr, 6),
                     loss=round(window_loss / max(window_n, 1), 3),
                     audio_s_per_s=round(window_audio / max(now - window_t, 1e-9), 1),
                     trained_min=round(state["trained_s"] / 60, 2), val_cer=round(cer, 4), val_wer=round(wer, 4),
                     example={"ref": hyps[0][1], "hyp": hyps[0][2]})
                window_loss, window_n, window_audio, window_t = 0.0, 0, 0.0, time.time()
                last_val = time.time()
            if time.time() - last_save >= args.save_every or finished or out_of_time:
                save(last, {"cfg": cfg, "model": model.state_dict(), "optimizer": opt.state_dict(), "state": state})
                export_ckpt(model, cfg, state["step"], state["epoch"], os.path.join(args.out, "model.ckpt"))
                last_save = time.time()
            if finished or out_of_time:
                done = True
                break
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
            emit(event="epoch", epoch=state["epoch"], step=state["step"])
    if state["trained_s"] >= total_s:
        cer, wer, hyps = evaluate(model, (val[0], vstarts, vlengths, vtexts), device, args.batch_seconds, amp)
        emit(event="final_by_voice", **rates_by_voice(args.val, hyps))
        emit(event="final", step=state["step"], trained_min=round(state["trained_s"] / 60, 2),
             audio_hours_seen=round(state["audio_s"] / 3600, 1), test_utts=len(vtexts), test_cer=round(cer, 4),
             test_wer=round(wer, 4))
        export_ckpt(model, cfg, state["step"], state["epoch"], os.path.join(args.out, "model.ckpt"))
    else:
        emit(event="paused", step=state["step"], trained_min=round(state["trained_s"] / 60, 2),
             remaining_min=round((total_s - state["trained_s"]) / 60, 2))


if __name__ == "__main__":
    main()
