#!/usr/bin/env python3
"""ONNX import fixtures for ds2rt: DeepSpeech2 models exported by torch.onnx.export itself.

For each config, <out>/<name>/ holds
  model.onnx       the model exported with the legacy TorchScript exporter (dynamo=False,
                   opset 17), dynamic batch and time axes, inputs "features" N x 1 x F x T
                   (float32) and "lengths" N (int32), outputs "probs" N x T' x C and
                   "output_lengths" N (int32); metadata_props "ds2rt.config" (the JSON config).
  io.safetensors   features (padded frames zero), lengths, probs, output_lengths: PyTorch's output.

The module tree is deepspeech.pytorch's (the classes of make_parity_fixtures.py), with an
ONNX-friendly forward: the masks come from the lengths through tensor ops, and the recurrent
layers use pack_padded_sequence(enforce_sorted=True), which the exporter turns into the ONNX
recurrent operators' sequence_lens (the batch is sorted by length, longest first, and mixed).
To keep the files at tens of KB the convolutions have 4 channels instead of 32 (the importer
does not depend on the channel count); everything else is as deepspeech.pytorch.

Usage:  python3 tests/fixtures_src/make_onnx_fixtures.py --out tests/data/onnx
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_parity_fixtures as ds2  # noqa: E402  (the deepspeech.pytorch module tree)

CHANNELS = 4
# name, rnn_type, bidirectional, hidden_layers, hidden_size, lookahead_context, T, seed
CONFIGS = [
    ("lstm_bi_l2_h16", "lstm", True, 2, 16, None, 37, 2001),
    ("gru_uni_l2_h16_ctx3", "gru", False, 2, 16, 3, 41, 2002),
]
SAMPLE_RATE = 8000
N = 3


class BatchRNN(ds2.BatchRNN):
    def forward(self, x, lengths):
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=True)
        y, _ = self.rnn(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y)
        if self.bidirectional:
            t, n = y.shape[0], y.shape[1]
            y = y.view(t, n, 2, -1).sum(2)
        return y


def make_model(rnn_type, bi, layers, hidden, ctx):
    model = ds2.DeepSpeech(rnn_type, hidden, layers, bi, ctx, SAMPLE_RATE, len(ds2.LABELS))
    # The same module tree with CHANNELS convolution channels.
    c = CHANNELS
    model.conv.seq_module[0] = nn.Conv2d(1, c, kernel_size=(41, 11), stride=(2, 2), padding=(20, 5))
    model.conv.seq_module[1] = nn.BatchNorm2d(c)
    model.conv.seq_module[3] = nn.Conv2d(c, c, kernel_size=(21, 11), stride=(2, 1), padding=(10, 5))
    model.conv.seq_module[4] = nn.BatchNorm2d(c)
    rnn_cls = ds2.RNN_TYPES[rnn_type]
    f = int(math.floor(SAMPLE_RATE * ds2.WINDOW_SIZE / 2) + 1)
    f = int(math.floor((f + 2 * 20 - 41) / 2 + 1))
    f = int(math.floor((f + 2 * 10 - 21) / 2 + 1))
    rnns = [BatchRNN(f * c, hidden, rnn_cls, bi, batch_norm=False)]
    rnns += [BatchRNN(hidden, hidden, rnn_cls, bi, batch_norm=True) for _ in range(layers - 1)]
    model.rnns = nn.Sequential(*rnns)
    return model


def make_one(out_dir, name, rnn_type, bi, layers, hidden, ctx, T, seed):
    print(f"=== {name}")
    torch.manual_seed(seed)
    model = make_model(rnn_type, bi, layers, hidden, ctx)
    gen = torch.Generator().manual_seed(seed + 7)
    ds2.init_params(model, gen)
    model.eval()

    n_bins = int(math.floor(SAMPLE_RATE * ds2.WINDOW_SIZE / 2) + 1)
    lengths = torch.tensor([T, T - 8, T - 19], dtype=torch.int32)  # sorted, mixed
    x = torch.randn(N, 1, n_bins, T, generator=gen)
    pad = torch.arange(T)[None, :] >= lengths[:, None].long()
    x = x.masked_fill(pad[:, None, None, :], 0.0)
    with torch.no_grad():
        probs, out_lens = model(x, lengths)

    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(model, (x, lengths), path, dynamo=False, opset_version=17,
                      input_names=["features", "lengths"], output_names=["probs", "output_lengths"],
                      dynamic_axes={"features": {0: "N", 3: "T"}, "lengths": {0: "N"},
                                    "probs": {0: "N", 1: "T'"}, "output_lengths": {0: "N"}})
    import onnx
    proto = onnx.load(path)
    model_cfg = {"rnn_type": rnn_type, "hidden_size": hidden, "hidden_layers": layers}
    if not bi:
        model_cfg["lookahead_context"] = ctx
    cfg = {"format": "ds2rt.deepspeech2", "version": 1, "model_cfg": model_cfg, "bidirectional": bi,
           "labels": ds2.LABELS,
           "spect_cfg": {"sample_rate": SAMPLE_RATE, "window_size": ds2.WINDOW_SIZE,
                         "window_stride": ds2.WINDOW_STRIDE, "window": "hamming"}}
    onnx.helper.set_model_props(proto, {"ds2rt.config": json.dumps(cfg)})
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    print("ops:", sorted({n.op_type for n in proto.graph.node}))

    try:  # informational: ONNX Runtime agrees with PyTorch
        import onnxruntime as ort
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        p, ol = sess.run(None, {"features": x.numpy(), "lengths": lengths.numpy()})
        print("onnxruntime vs torch max abs diff:", abs(p - probs.numpy()).max(), (ol == out_lens.numpy()).all())
    except ImportError:
        pass
    save_file({"features": x.contiguous(), "lengths": lengths.contiguous(), "probs": probs.contiguous(),
               "output_lengths": out_lens.int().contiguous()}, os.path.join(d, "io.safetensors"))
    print(f"probs {list(probs.shape)} output_lengths {out_lens.tolist()} size {os.path.getsize(path)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data/onnx")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import onnx
    print(f"torch {torch.__version__}  onnx {onnx.__version__}  python {sys.version.split()[0]}")
    for c in CONFIGS:
        make_one(args.out, *c)


if __name__ == "__main__":
    main()
