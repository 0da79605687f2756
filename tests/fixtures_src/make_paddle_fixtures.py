#!/usr/bin/env python3
"""Golden fixtures for the PaddleSpeech DeepSpeech2 importer (tests/data/paddle/).

Builds, with paddle.nn and random weights, the module tree of PaddleSpeech's DeepSpeech2
(paddlespeech/s2t/models/ds2/deepspeech2.py: CRNNEncoder + CTCDecoder, so the same state_dict
names), saves it with paddle.save as <name>/model.pdparams, runs a mixed-length batch whose padding
holds garbage through Paddle itself (nn.LSTM / nn.GRU get the lengths as sequence_length, as
PaddleSpeech passes them) and stores inputs and outputs in <name>/io.safetensors:
  input [N, 1, D, T] f32 (ds2rt's features layout; Paddle ran on its transpose N x T x D),
  input_lengths [N] i32, probs [N, T', V] f32, output_lengths [N] i32.
It also writes, for the reader and error tests: malformed.pdparams (a layer norm weight of the wrong
shape, pickle protocol 2), missing.pdparams (no decoder.ctc_lo, protocol 3), arrays.pdparams (other
element types, Fortran order, big-endian data) and forbidden.pdparams (a pickle calling os.system).

    /work/venvs/paddle/bin/python tests/fixtures_src/make_paddle_fixtures.py --out tests/data/paddle
"""
import argparse
import json
import os
import pickle
import struct

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

CONFIGS = {
    # name: rnn, direction, rnn layers, hidden, fc sizes, conv channels, feature bins D, vocabulary
    "offline_bigru": dict(gru=True, direction="bidirect", layers=2, hidden=12, fc=[16], channels=4, bins=13, vocab=7),
    "online_lstm": dict(gru=False, direction="forward", layers=2, hidden=10, fc=[], channels=3, bins=13, vocab=6),
}
T, LENGTHS = 41, [41, 30, 17]


class Conv2dSubsampling4Pure(nn.Layer):
    def __init__(self, idim, odim):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2D(1, odim, 3, 2), nn.ReLU(), nn.Conv2D(odim, odim, 3, 2), nn.ReLU())
        # Unused by DeepSpeech2's forward, but in its state_dict (Conv2dSubsampling4.out).
        self.out = nn.Sequential(nn.Linear(odim * (((idim - 1) // 2 - 1) // 2), odim))
        self.output_dim = ((idim - 1) // 2 - 1) // 2 * odim

    def forward(self, x, x_len):
        x = self.conv(x.unsqueeze(1))
        x = x.transpose([0, 2, 1, 3]).reshape([0, 0, -1])
        return x, ((x_len - 1) // 2 - 1) // 2


class CRNNEncoder(nn.Layer):
    def __init__(self, c):
        super().__init__()
        self.conv = Conv2dSubsampling4Pure(c["bins"], c["channels"])
        size = c["hidden"] * (2 if c["direction"] == "bidirect" else 1)
        self.rnn, self.layernorm_list, self.fc_layers_list = nn.LayerList(), nn.LayerList(), nn.LayerList()
        for i in range(c["layers"]):
            rnn_in = self.conv.output_dim if i == 0 else size
            kind = nn.GRU if c["gru"] else nn.LSTM
            self.rnn.append(kind(input_size=rnn_in, hidden_size=c["hidden"], num_layers=1, direction=c["direction"]))
            self.layernorm_list.append(nn.LayerNorm(size))
        for n in c["fc"]:
            self.fc_layers_list.append(nn.Linear(size, n))
            size = n
        self.output_dim = size

    def forward(self, x, x_lens):
        x, x_lens = self.conv(x, x_lens)
        for rnn, norm in zip(self.rnn, self.layernorm_list):
            x, _ = rnn(x, None, x_lens)
            x = norm(x)
        for fc in self.fc_layers_list:
            x = F.relu(fc(x))
        return x, x_lens


class CTCDecoder(nn.Layer):
    def __init__(self, odim, enc_n_units):
        super().__init__()
        self.ctc_lo = nn.Linear(enc_n_units, odim)


class DeepSpeech2Model(nn.Layer):
    def __init__(self, c):
        super().__init__()
        self.encoder = CRNNEncoder(c)
        self.decoder = CTCDecoder(c["vocab"], self.encoder.output_dim)

    def forward(self, audio, audio_len):
        eouts, eouts_len = self.encoder(audio, audio_len)
        return F.softmax(self.decoder.ctc_lo(eouts), axis=2), eouts_len


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        dtype = {"float32": "F32", "int32": "I32"}[str(array.dtype)]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        blobs.append(array.tobytes())
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def make(name, c, out, seed):
    paddle.seed(seed)
    rng = np.random.default_rng(seed)
    model = DeepSpeech2Model(c)
    model.eval()
    for norm in model.encoder.layernorm_list:  # not the default ones/zeros, so both are tested
        norm.weight.set_value(rng.uniform(0.5, 1.5, norm.weight.shape).astype("float32"))
        norm.bias.set_value(rng.normal(0, 0.2, norm.bias.shape).astype("float32"))
    # A larger projection so the probabilities are not all near 1/V.
    model.decoder.ctc_lo.weight.set_value(model.decoder.ctc_lo.weight.numpy() * 4)

    feats = rng.normal(0, 1, (len(LENGTHS), T, c["bins"])).astype("float32")
    for b, length in enumerate(LENGTHS):
        feats[b, length:] = rng.normal(0, 50, (T - length, c["bins"]))  # garbage in the padding
    lengths = np.array(LENGTHS, dtype="int64")
    with paddle.no_grad():
        probs, out_lengths = model(paddle.to_tensor(feats), paddle.to_tensor(lengths))
        probs, out_lengths = probs.numpy(), out_lengths.numpy().astype("int32")
        # Each utterance alone (no padding) must give its row of the batch on valid frames.
        for b, length in enumerate(LENGTHS):
            alone, _ = model(paddle.to_tensor(feats[b:b + 1, :length]), paddle.to_tensor(lengths[b:b + 1]))
            diff = np.abs(alone.numpy()[0] - probs[b, :out_lengths[b]]).max()
            assert diff < 1e-5, (name, b, diff)

    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    state = model.state_dict()
    paddle.save(state, os.path.join(d, "model.pdparams"))
    save_safetensors(os.path.join(d, "io.safetensors"), {
        "input": feats.transpose(0, 2, 1)[:, None],  # N x 1 x D x T
        "input_lengths": lengths.astype("int32"),
        "probs": probs,
        "output_lengths": out_lengths,
    })
    print(name, "output lengths", out_lengths.tolist(), "probs", probs.shape, "keys:", list(state.keys()))
    return state


class _Forbidden:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="tests/data/paddle")
    args = parser.parse_args()
    states = {name: make(name, c, args.out, seed) for seed, (name, c) in enumerate(CONFIGS.items(), start=1)}
    # A parameter of the wrong shape (the first layer norm's weight one element short).
    bad = {k: v.numpy() for k, v in states["online_lstm"].items()}
    bad["encoder.layernorm_list.0.weight"] = bad["encoder.layernorm_list.0.weight"][:-1]
    with open(os.path.join(args.out, "malformed.pdparams"), "wb") as f:
        pickle.dump(bad, f, protocol=2)  # protocol 2, as older paddle.save wrote
    missing = {k: v for k, v in bad.items() if not k.startswith("decoder.")}
    missing["encoder.layernorm_list.0.weight"] = missing["encoder.layernorm_list.1.weight"]
    with open(os.path.join(args.out, "missing.pdparams"), "wb") as f:
        pickle.dump(missing, f, protocol=3)
    # Arrays the reader must rebuild exactly: other types, Fortran order, big-endian data.
    arrays = {
        "f64_fortran": np.asfortranarray(np.arange(6, dtype="float64").reshape(2, 3)),
        "f32_big_endian": np.array([1.5, -2.0, 3.25], dtype=">f4"),
        "i64": np.array([[-1, 2], [3, 1 << 40]], dtype="int64"),
        "f16": np.array([0.5, -1.0], dtype="float16"),
        "bool": np.array([True, False, True]),
        "scalar": np.array(7, dtype="int32"),
    }
    with open(os.path.join(args.out, "arrays.pdparams"), "wb") as f:
        pickle.dump(arrays, f, protocol=4)
    with open(os.path.join(args.out, "forbidden.pdparams"), "wb") as f:
        pickle.dump({"encoder.conv.conv.0.weight": _Forbidden()}, f, protocol=4)
    print("paddle", paddle.__version__, "numpy", np.__version__)


if __name__ == "__main__":
    main()
