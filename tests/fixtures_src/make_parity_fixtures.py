#!/usr/bin/env python3
"""Golden parity fixtures for ds2rt (DeepSpeech2 inference engine).

What it makes: for each config in CONFIGS, a folder <out>/<name>/ with
  model.safetensors  the full state_dict of a randomly initialised DeepSpeech2
                     model whose state_dict keys are identical to
                     deepspeech.pytorch (SeanNaren, deepspeech_pytorch/model.py).
                     Floating tensors are stored as float16 (every value was
                     rounded to fp16 before the model ran, so fp16 -> fp32 is
                     exact); num_batches_tracked is int64. Header metadata
                     "ds2rt.config" holds the JSON model/front-end config.
  io.safetensors     input [N,1,F,T] f32 (padded frames hold LARGE garbage),
                     input_lengths [N] i32 (unsorted), probs [N,T',C] f32,
                     log_probs [N,T',C] f32, output_lengths [N] i32.
The reference outputs are computed in fp32 on CPU, in eval() mode, on the
input with its padded frames set to 0 (what deepspeech.pytorch's loader gives).

The model below is an independent re-implementation of the reference
architecture (no pytorch_lightning / warpctc needed). The one deliberate
difference: pack_padded_sequence(..., enforce_sorted=False), so that unsorted
batches work (the reference uses the default enforce_sorted=True and would
raise on them; for sorted batches the two are identical).

Committed files were made with: torch 2.15.0+cu132 (run on CPU), numpy 2.4.6,
safetensors 0.8.0, Python 3.11.7. A rerun with the same versions is byte-identical.
(The script prints its torch version.)

Usage:  python3 tests/fixtures_src/make_parity_fixtures.py --out tests/data/parity
See tests/fixtures_src/README.md for the tensor contract.
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

LABELS = ["_", "'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)] + [" "]
WINDOW_SIZE = 0.02
WINDOW_STRIDE = 0.01
RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

# name, rnn_type, bidirectional, hidden_layers, hidden_size, lookahead_context, sample_rate, T, seed
CONFIGS = [
    ("lstm_bi_l2_h32", "lstm", True, 2, 32, None, 16000, 50, 1001),
    ("gru_bi_l3_h24", "gru", True, 3, 24, None, 8000, 57, 1002),
    ("rnn_bi_l1_h16", "rnn", True, 1, 16, None, 8000, 44, 1003),
    ("lstm_uni_l2_h16_ctx3", "lstm", False, 2, 16, 3, 8000, 53, 1004),
    ("gru_uni_l1_h24_ctx2", "gru", False, 1, 24, 2, 8000, 48, 1005),
    ("rnn_uni_l3_h16_ctx4", "rnn", False, 3, 16, 4, 8000, 47, 1006),
]
N = 4


# --------------------------------------------------------------------------
# Model (same module tree / state_dict keys as deepspeech.pytorch)
# --------------------------------------------------------------------------
class SequenceWise(nn.Module):
    """Apply `module` to a T x N x H tensor viewed as (T*N) x H."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        t, n = x.shape[0], x.shape[1]
        y = self.module(x.reshape(t * n, -1))
        return y.reshape(t, n, -1)


class MaskConv(nn.Module):
    """Run seq_module; after every module zero time frames t >= lengths[i]."""

    def __init__(self, seq_module):
        super().__init__()
        self.seq_module = seq_module

    def forward(self, x, lengths):
        for m in self.seq_module:
            x = m(x)
            t = torch.arange(x.shape[-1], device=x.device)
            keep = t[None, :] < lengths.to(x.device).long()[:, None]  # N x T
            x = x * keep[:, None, None, :].to(x.dtype)
        return x, lengths


class BatchRNN(nn.Module):
    def __init__(self, input_size, hidden_size, rnn_cls, bidirectional, batch_norm):
        super().__init__()
        self.bidirectional = bidirectional
        self.batch_norm = SequenceWise(nn.BatchNorm1d(input_size)) if batch_norm else None
        self.rnn = rnn_cls(input_size=input_size, hidden_size=hidden_size,
                           bidirectional=bidirectional, bias=True)

    def forward(self, x, lengths):
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        y, _ = self.rnn(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y)  # T = max(lengths), pad value 0
        if self.bidirectional:
            t, n = y.shape[0], y.shape[1]
            y = y.view(t, n, 2, -1).sum(2)
        return y


class Lookahead(nn.Module):
    def __init__(self, n_features, context):
        super().__init__()
        assert context > 0
        self.context = context
        self.conv = nn.Conv1d(n_features, n_features, kernel_size=context,
                              groups=n_features, bias=False)

    def forward(self, x):  # T x N x H
        x = x.permute(1, 2, 0)  # N x H x T
        x = F.pad(x, (0, self.context - 1))
        x = self.conv(x)
        return x.permute(2, 0, 1).contiguous()


class DeepSpeech(nn.Module):
    def __init__(self, rnn_type, hidden_size, hidden_layers, bidirectional,
                 lookahead_context, sample_rate, num_classes):
        super().__init__()
        self.bidirectional = bidirectional
        self.conv = MaskConv(nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=(41, 11), stride=(2, 2), padding=(20, 5)),
            nn.BatchNorm2d(32),
            nn.Hardtanh(0, 20),
            nn.Conv2d(32, 32, kernel_size=(21, 11), stride=(2, 1), padding=(10, 5)),
            nn.BatchNorm2d(32),
            nn.Hardtanh(0, 20),
        ))
        f = int(math.floor(sample_rate * WINDOW_SIZE / 2) + 1)
        f = int(math.floor((f + 2 * 20 - 41) / 2 + 1))
        f = int(math.floor((f + 2 * 10 - 21) / 2 + 1))
        rnn_input_size = f * 32
        rnn_cls = RNN_TYPES[rnn_type]
        self.rnns = nn.Sequential(
            BatchRNN(rnn_input_size, hidden_size, rnn_cls, bidirectional, batch_norm=False),
            *[BatchRNN(hidden_size, hidden_size, rnn_cls, bidirectional, batch_norm=True)
              for _ in range(hidden_layers - 1)])
        self.lookahead = None if bidirectional else nn.Sequential(
            Lookahead(hidden_size, lookahead_context), nn.Hardtanh(0, 20))
        self.fc = nn.Sequential(SequenceWise(nn.Sequential(
            nn.BatchNorm1d(hidden_size),
            nn.Linear(hidden_size, num_classes, bias=False))))

    def get_seq_lens(self, lengths):
        L = lengths
        for m in self.conv.modules():
            if type(m) is nn.Conv2d:
                L = (L + 2 * m.padding[1] - m.dilation[1] * (m.kernel_size[1] - 1) - 1) // m.stride[1] + 1
        return L.int()

    def logits(self, x, lengths):
        """Returns (logits N x T' x C, output_lengths int32)."""
        out_lens = self.get_seq_lens(lengths.int())
        x, _ = self.conv(x, out_lens)
        n, c, f, t = x.shape
        x = x.reshape(n, c * f, t).permute(2, 0, 1).contiguous()  # T x N x (C*F)
        for rnn in self.rnns:
            x = rnn(x, out_lens)
        if self.lookahead is not None:
            x = self.lookahead(x)
        x = self.fc(x)
        return x.transpose(0, 1), out_lens

    def forward(self, x, lengths):
        z, out_lens = self.logits(x, lengths)
        return (F.softmax(z, dim=-1) if not self.training else z), out_lens


# --------------------------------------------------------------------------
def expected_keys(cfg_bi, layers, uni):
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    keys = ["conv.seq_module.0.weight", "conv.seq_module.0.bias"]
    keys += [f"conv.seq_module.1.{s}" for s in bn]
    keys += ["conv.seq_module.3.weight", "conv.seq_module.3.bias"]
    keys += [f"conv.seq_module.4.{s}" for s in bn]
    sfx = ["", "_reverse"] if cfg_bi else [""]
    for i in range(layers):
        if i > 0:
            keys += [f"rnns.{i}.batch_norm.module.{s}" for s in bn]
        for r in sfx:
            keys += [f"rnns.{i}.rnn.{p}_l0{r}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    if uni:
        keys += ["lookahead.0.conv.weight"]
    keys += [f"fc.0.module.0.{s}" for s in bn] + ["fc.0.module.1.weight"]
    return keys


def init_params(model, gen):
    """Default init already done by the constructor; set BN stats and round to fp16."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
        # Default init gives nearly uniform posteriors (0.006..0.11); a larger output layer makes
        # them peaked like a trained model's, so a wrong frame or class shows up in the error.
        model.fc[0].module[1].weight.mul_(8.0)
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())


def make_one(out_dir, name, rnn_type, bi, layers, hidden, ctx, sr, T, seed):
    print(f"=== {name}: {rnn_type} bi={bi} L={layers} H={hidden} ctx={ctx} sr={sr} T={T}")
    torch.manual_seed(seed)  # PyTorch default init of conv/rnn/linear/lookahead
    n_bins = int(math.floor(sr * WINDOW_SIZE / 2) + 1)
    model = DeepSpeech(rnn_type, hidden, layers, bi, ctx, sr, len(LABELS))
    gen = torch.Generator().manual_seed(seed + 7)
    init_params(model, gen)
    model.eval()

    sd = model.state_dict()
    keys = list(sd.keys())
    print("keys:", keys)
    assert keys == expected_keys(bi, layers, not bi), "state_dict keys differ from reference"

    model_cfg = {"rnn_type": rnn_type, "hidden_size": hidden, "hidden_layers": layers}
    if not bi:
        model_cfg["lookahead_context"] = ctx
    cfg = {"format": "ds2rt.deepspeech2", "version": 1, "model_cfg": model_cfg,
           "bidirectional": bi, "labels": LABELS,
           "spect_cfg": {"sample_rate": sr, "window_size": WINDOW_SIZE,
                         "window_stride": WINDOW_STRIDE, "window": "hamming"}}
    to_save = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    assert all(v.dtype == torch.int64 for k, v in to_save.items() if k.endswith("num_batches_tracked"))
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    save_file(to_save, os.path.join(d, "model.safetensors"), metadata={"ds2rt.config": json.dumps(cfg)})

    # Reload from the file into a fresh model: proves the file alone reproduces the outputs.
    loaded = load_file(os.path.join(d, "model.safetensors"))
    model2 = DeepSpeech(rnn_type, hidden, layers, bi, ctx, sr, len(LABELS))
    model2.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in loaded.items()})
    model2.eval()
    for k in sd:
        assert torch.equal(model2.state_dict()[k], sd[k]), k
    model = model2

    # Inputs: unsorted lengths, one full-length utterance so T' == conv output width.
    lengths = torch.tensor([T - 9, T, T - 23, 17], dtype=torch.int32)
    assert int(lengths.max()) == T
    x_clean = torch.randn(N, 1, n_bins, T, generator=gen)
    pad = torch.arange(T)[None, :] >= lengths[:, None].long()  # N x T
    pad4 = pad[:, None, None, :].expand_as(x_clean)
    x_clean = x_clean.masked_fill(pad4, 0.0)
    garbage = 1e3 * torch.randn(N, 1, n_bins, T, generator=gen)
    x_garbage = torch.where(pad4, garbage, x_clean)

    with torch.no_grad():
        logits, out_lens = model.logits(x_clean, lengths)
        probs, out_lens2 = model(x_clean, lengths)
        assert torch.equal(out_lens, out_lens2)
        log_probs = F.log_softmax(logits, dim=-1)
        Tp = probs.shape[1]
        assert Tp == int(model.get_seq_lens(torch.tensor([T]))[0]) == int(out_lens.max())
        print(f"input {list(x_clean.shape)} lengths {lengths.tolist()} -> probs {list(probs.shape)} "
              f"output_lengths {out_lens.tolist()}")

        # Each utterance alone (batch 1, own length, no padding) == its batch row on valid frames.
        max_err = 0.0
        for i in range(N):
            L = int(lengths[i])
            p1, ol1 = model(x_clean[i:i + 1, :, :, :L], lengths[i:i + 1])
            assert int(ol1[0]) == int(out_lens[i]) == p1.shape[1]
            e = (p1[0] - probs[i, :int(out_lens[i])]).abs().max().item()
            max_err = max(max_err, e)
        print(f"batch vs single max abs diff (probs, valid frames): {max_err:.3e}")
        assert max_err < 1e-5

        # Informational: the garbage padding really would change the reference output
        # if not zeroed (the model itself does not mask its input).
        pg, _ = model(x_garbage, lengths)
        gdiff = max((pg[i, :int(out_lens[i])] - probs[i, :int(out_lens[i])]).abs().max().item()
                    for i in range(N))
        print(f"unzeroed-garbage effect on valid frames (must be zeroed by the engine): {gdiff:.3e}")

        # Informational: fp32 vs fp64 reference, a guide for C++ tolerances.
        m64 = DeepSpeech(rnn_type, hidden, layers, bi, ctx, sr, len(LABELS)).double().eval()
        m64.load_state_dict({k: (v.double() if v.is_floating_point() else v) for k, v in sd.items()})
        z64, _ = m64.logits(x_clean.double(), lengths)
        p64 = F.softmax(z64, -1)
        lp64 = F.log_softmax(z64, -1)
        vmask = (torch.arange(Tp)[None, :] < out_lens[:, None].long())[..., None]
        dp = ((p64 - probs.double()).abs() * vmask).max().item()
        dlp = ((lp64 - log_probs.double()).abs() * vmask).max().item()
        print(f"fp32 vs fp64 max abs diff (valid frames): probs {dp:.3e} log_probs {dlp:.3e}")

    io = {"input": x_garbage.float().contiguous(),
          "input_lengths": lengths.int().contiguous(),
          "probs": probs.float().contiguous(),
          "log_probs": log_probs.float().contiguous(),
          "output_lengths": out_lens.int().contiguous()}
    save_file(io, os.path.join(d, "io.safetensors"))
    return keys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data/parity")
    ap.add_argument("--only", default=None, help="comma-separated config names")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}  python {sys.version.split()[0]}")
    only = set(args.only.split(",")) if args.only else None
    for c in CONFIGS:
        if only is None or c[0] in only:
            make_one(args.out, *c)
    print("all fixtures written and checked")


if __name__ == "__main__":
    main()
