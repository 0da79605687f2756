#!/usr/bin/env python3
"""PyTorch checkpoint fixtures for ds2rt's checkpoint importer (tests/unit/pytorch_import_test.cpp).

Every file is written by PyTorch itself (torch.save) unless said otherwise:

  gru_uni_l2_h12_ctx3.ckpt   a PyTorch-Lightning checkpoint as deepspeech.pytorch writes it: a dict with
                             'epoch', 'global_step', 'pytorch-lightning_version', 'state_dict' (the
                             LightningModule's own state_dict: no 'model.' prefix), 'optimizer_states',
                             'lr_schedulers', 'callbacks', 'loops', 'hparams_name' and 'hyper_parameters'
                             = {labels, model_cfg, precision, optim_cfg, spect_cfg} where the configs are
                             omegaconf DictConfig objects of deepspeech.pytorch's dataclasses and
                             rnn_type / window are deepspeech_pytorch.enums values. Weights float16.
  lstm_bi_l2_h8.pth          a plain state_dict (OrderedDict of tensors), float16: the architecture has to
                             be inferred from tensor names and shapes.
  <name>.io.safetensors      a mixed-length batch with garbage in its padding and PyTorch's outputs
                             (same contract as tests/data/parity/*/io.safetensors).
  tensors.pth                assorted tensors (every dtype, non-contiguous views, storage offsets, shared
                             storages, 0-d and empty tensors, a Parameter, nested containers), protocol 2
  tensors_p4.pth             the same with pickle protocol 4 (STACK_GLOBAL, MEMOIZE, FRAME)
  tensors_legacy.pt          the same in the legacy (non-zip) format (_use_new_zipfile_serialization=False)
  tensors_expected.safetensors  each of those tensors, contiguous, under its path ("nested.list.0")
  tensors_big_endian.pth     three of them in a zip archive rewritten as a big-endian machine writes it
                             (byteorder "big", byte-swapped storages; crafted with zipfile)
  v2_package.pt              legacy format, the pre-Lightning deepspeech.pytorch (v2) package dict
                             ({'version', 'hidden_size', 'hidden_layers', 'rnn_type': 'lstm', 'audio_conf',
                             'labels', 'bidirectional', 'state_dict'}) with an empty state_dict
  evil_*.pt[h]               checkpoints whose pickle references os.system / posix.system, builtins.eval,
                             __builtin__.exec, subprocess.Popen (torch.save of objects with __reduce__, or
                             a hand-written pickle in a torch-layout zip); whole_module.pth pickles an
                             nn.Linear itself
  corrupt_pickle.pth, missing_storage.pth, torchscript.pt, legacy_tar.pt
                             malformed or unsupported files (random bytes for data.pkl; a storage entry
                             removed; torch.jit.save; a tar archive like PyTorch < 0.4 wrote)

Needs torch, safetensors and omegaconf (pip install omegaconf: only for the .ckpt's hyper-parameters).
deepspeech_pytorch itself is not needed: stand-ins of its enums and config dataclasses are registered
under their real module names, so the pickles name exactly what deepspeech.pytorch's would.
The model comes from make_parity_fixtures.py (deepspeech.pytorch's module tree).

Committed files were made with torch 2.15.0+cu132 (CPU), omegaconf 2.3.0, safetensors 0.8.0, Python 3.11.7.
A rerun is byte-identical except for the legacy-format files (their storage keys are memory addresses)
and torchscript.pt.

Usage:  python3 tests/fixtures_src/make_pytorch_checkpoints.py --out tests/data/pytorch
"""
import argparse
import collections
import dataclasses
import enum
import io
import math
import os
import pickle
import sys
import tarfile
import types
import zipfile
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_parity_fixtures import LABELS, WINDOW_SIZE, WINDOW_STRIDE, DeepSpeech, init_params  # noqa: E402


# --------------------------------------------------------------------------
# Stand-ins for deepspeech_pytorch.enums and deepspeech_pytorch.configs.*, under the real module
# names (pickle records module + qualified name only).
# --------------------------------------------------------------------------
def _module(name):
    module = types.ModuleType(name)
    sys.modules[name] = module
    return module


def install_deepspeech_pytorch_standins():
    _module("deepspeech_pytorch")
    _module("deepspeech_pytorch.configs")
    enums = _module("deepspeech_pytorch.enums")
    train_config = _module("deepspeech_pytorch.configs.train_config")

    class SpectrogramWindow(enum.Enum):
        hamming = "hamming"
        hann = "hann"
        blackman = "blackman"
        bartlett = "bartlett"

    class RNNType(enum.Enum):
        lstm = nn.LSTM
        rnn = nn.RNN
        gru = nn.GRU

    for cls in (SpectrogramWindow, RNNType):
        cls.__module__ = enums.__name__
        cls.__qualname__ = cls.__name__
        setattr(enums, cls.__name__, cls)

    @dataclasses.dataclass
    class SpectConfig:
        sample_rate: int = 16000
        window_size: float = .02
        window_stride: float = .01
        window: SpectrogramWindow = SpectrogramWindow.hamming

    @dataclasses.dataclass
    class DataConfig:
        train_path: str = "data/train_manifest.csv"
        val_path: str = "data/val_manifest.csv"
        batch_size: int = 64
        labels_path: str = "labels.json"
        spect: SpectConfig = dataclasses.field(default_factory=SpectConfig)

    @dataclasses.dataclass
    class BiDirectionalConfig:
        rnn_type: RNNType = RNNType.lstm
        hidden_size: int = 1024
        hidden_layers: int = 5

    @dataclasses.dataclass
    class UniDirectionalConfig(BiDirectionalConfig):
        lookahead_context: int = 20

    @dataclasses.dataclass
    class AdamConfig:
        learning_rate: float = 1.5e-4
        learning_anneal: float = 0.99
        weight_decay: float = 1e-5
        eps: float = 1e-8
        betas: tuple = (0.9, 0.999)

    @dataclasses.dataclass
    class DeepSpeechConfig:
        optim: Any = None
        model: Any = None
        data: DataConfig = dataclasses.field(default_factory=DataConfig)
        seed: int = 123456
        load_auto_checkpoint: bool = False

    for cls in (SpectConfig, DataConfig, BiDirectionalConfig, UniDirectionalConfig, AdamConfig, DeepSpeechConfig):
        cls.__module__ = train_config.__name__
        cls.__qualname__ = cls.__name__
        setattr(train_config, cls.__name__, cls)
    return enums, train_config


# --------------------------------------------------------------------------
def make_model(rnn_type, bi, layers, hidden, ctx, sr, seed):
    torch.manual_seed(seed)
    model = DeepSpeech(rnn_type, hidden, layers, bi, ctx, sr, len(LABELS))
    init_params(model, torch.Generator().manual_seed(seed + 7))  # BN statistics; every value fp16-exact
    return model.eval()


def half_state_dict(model):
    return collections.OrderedDict(
        (k, v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items())


def write_io(model, path, sr, T, seed):
    """A mixed-length batch (padding = garbage) and PyTorch's outputs on it (padding zeroed)."""
    gen = torch.Generator().manual_seed(seed)
    bins = int(math.floor(sr * WINDOW_SIZE / 2) + 1)
    lengths = torch.tensor([T - 7, T, 15], dtype=torch.int32)
    x = torch.randn(len(lengths), 1, bins, T, generator=gen)
    pad = (torch.arange(T)[None, :] >= lengths[:, None].long())[:, None, None, :].expand_as(x)
    clean = x.masked_fill(pad, 0.0)
    garbage = torch.where(pad, 1e3 * torch.randn(x.shape, generator=gen), clean)
    with torch.no_grad():
        logits, out_lengths = model.logits(clean, lengths)
    save_file({"input": garbage.contiguous(), "input_lengths": lengths,
               "probs": F.softmax(logits, -1).contiguous(), "log_probs": F.log_softmax(logits, -1).contiguous(),
               "output_lengths": out_lengths.int()}, path)


def reload_check(path, model):
    """torch.load (weights_only=False: the .ckpt holds omegaconf objects) gives back the same weights."""
    loaded = torch.load(path, map_location="cpu", weights_only=False)
    sd = loaded.get("state_dict", loaded)
    for k, v in model.state_dict().items():
        assert torch.equal(sd[k].to(v.dtype), v), k


def make_lightning_checkpoint(out, enums, train_config):
    from omegaconf import OmegaConf

    name, sr, T = "gru_uni_l2_h12_ctx3", 8000, 40
    model = make_model("gru", False, 2, 12, 3, sr, seed=2001)
    cfg = OmegaConf.structured(train_config.DeepSpeechConfig)
    cfg.model = OmegaConf.structured(train_config.UniDirectionalConfig(
        rnn_type=enums.RNNType.gru, hidden_size=12, hidden_layers=2, lookahead_context=3))
    cfg.optim = OmegaConf.structured(train_config.AdamConfig)
    cfg.data.spect.sample_rate = sr
    # DeepSpeech.__init__ calls save_hyperparameters(); Lightning stores dict(model.hparams).
    hyper_parameters = {"labels": list(LABELS), "model_cfg": cfg.model, "precision": 32,
                        "optim_cfg": cfg.optim, "spect_cfg": cfg.data.spect}
    weight = model.lookahead[0].conv.weight
    checkpoint = {
        "epoch": 3, "global_step": 1200, "pytorch-lightning_version": "1.9.5",
        "state_dict": half_state_dict(model),
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4, "completed": 3}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'wer', 'mode': 'min'}": {
            "monitor": "wer", "best_model_score": torch.tensor(41.5), "best_model_path": "/models/epoch=2.ckpt",
            "best_k_models": {"/models/epoch=2.ckpt": torch.tensor(41.5)}, "dirpath": "/models"}},
        "optimizer_states": [{"state": {0: {"step": torch.tensor(1200.0), "exp_avg": torch.zeros_like(weight).half(),
                                            "exp_avg_sq": torch.zeros_like(weight).half()}},
                              "param_groups": [{"lr": 1.5e-4, "betas": (0.9, 0.999), "eps": 1e-8,
                                                "weight_decay": 1e-5, "amsgrad": False, "params": [0]}]}],
        "lr_schedulers": [{"gamma": 0.99, "base_lrs": [1.5e-4], "last_epoch": 3, "_step_count": 4}],
        "hparams_name": "kwargs",
        "hyper_parameters": hyper_parameters,
    }
    path = os.path.join(out, name + ".ckpt")
    torch.save(checkpoint, path)
    reload_check(path, model)
    write_io(model, os.path.join(out, name + ".io.safetensors"), sr, T, seed=2002)
    print("wrote", path)


def make_plain_state_dict(out):
    name, sr, T = "lstm_bi_l2_h8", 8000, 40
    model = make_model("lstm", True, 2, 8, None, sr, seed=3001)
    path = os.path.join(out, name + ".pth")
    torch.save(half_state_dict(model), path)
    reload_check(path, model)
    write_io(model, os.path.join(out, name + ".io.safetensors"), sr, T, seed=3002)
    print("wrote", path)


# --------------------------------------------------------------------------
def tensor_zoo():
    g = torch.Generator().manual_seed(4001)
    base = torch.randn(6, 5, generator=g)
    shared = torch.arange(24, dtype=torch.float32)
    zoo = collections.OrderedDict()
    zoo["f32"] = torch.randn(3, 4, generator=g)
    zoo["f16_transposed"] = torch.randn(4, 3, generator=g).half().t()
    zoo["bf16"] = torch.randn(5, generator=g).bfloat16()
    zoo["f64"] = torch.randn(2, 3, generator=g).double()
    zoo["i64"] = torch.arange(-3, 5, dtype=torch.int64).view(2, 4)
    zoo["i32"] = torch.tensor([[-7, 8], [2**31 - 1, -2**31]], dtype=torch.int32)
    zoo["u8"] = torch.tensor([0, 1, 255], dtype=torch.uint8)
    zoo["i8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    zoo["bool"] = torch.tensor([True, False, True])
    zoo["slice"] = base[1:, 2:]             # storage offset 7, strides (5, 1)
    zoo["every_other"] = base[::2, ::3]     # strides (10, 3)
    zoo["expanded"] = torch.randn(3, 1, generator=g).expand(3, 4)  # stride 0
    zoo["shared_a"] = shared.view(4, 6)
    zoo["shared_b"] = shared[6:18].view(3, 4)  # a second view of the same storage
    zoo["scalar"] = torch.tensor(7, dtype=torch.int64)
    zoo["empty"] = torch.zeros(0, 3)
    zoo["param"] = nn.Parameter(torch.randn(2, 2, generator=g))
    zoo["nested"] = {"list": [torch.randn(2, generator=g), 1, 2.5, "text", None, True, b"raw"],
                     "tuple": (torch.ones(1),), "int_keys": {0: torch.zeros(2)}}
    return zoo


def flatten(prefix, value, out):
    if isinstance(value, torch.Tensor):
        out[prefix] = value.detach().contiguous().clone()
    elif isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            flatten(f"{prefix}.{i}", v, out)
    return out


def make_tensor_files(out):
    zoo = tensor_zoo()
    torch.save(zoo, os.path.join(out, "tensors.pth"))
    torch.save(zoo, os.path.join(out, "tensors_p4.pth"), pickle_protocol=4)
    torch.save(zoo, os.path.join(out, "tensors_legacy.pt"), _use_new_zipfile_serialization=False)
    save_file(flatten("", zoo, {}), os.path.join(out, "tensors_expected.safetensors"))
    for f in ("tensors.pth", "tensors_p4.pth", "tensors_legacy.pt"):
        back = flatten("", torch.load(os.path.join(out, f), weights_only=False), {})
        expected = flatten("", zoo, {})
        assert back.keys() == expected.keys() and all(torch.equal(back[k], expected[k]) for k in back), f

    # Big-endian: what torch.save writes on a big-endian machine ("byteorder" = "big", each storage's
    # elements byte-swapped). Crafted by rewriting a little-endian archive entry by entry.
    small = collections.OrderedDict((k, zoo[k]) for k in ("f32", "i64", "f16_transposed"))
    buffer = io.BytesIO()
    torch.save(small, buffer)
    src = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    storage_sizes = {"0": 4, "1": 8, "2": 2}  # keys in the order torch.save meets the storages: f32, i64, f16
    with zipfile.ZipFile(os.path.join(out, "tensors_big_endian.pth"), "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            leaf = info.filename.split("/", 1)[1]
            if leaf == "byteorder":
                data = b"big"
            elif leaf.startswith("data/"):
                size = storage_sizes[leaf[5:]]
                data = b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))
            write_entry(dst, info.filename, data)


def make_v2_package(out):
    package = {"version": "0.0.1", "hidden_size": 8, "hidden_layers": 2, "rnn_type": "lstm",
               "audio_conf": {"window_size": .02, "window_stride": .01, "window": "hamming", "sample_rate": 8000,
                              "noise_dir": None, "noise_prob": 0.4, "noise_levels": (0.0, 0.5)},
               "labels": list(LABELS), "bidirectional": True, "state_dict": collections.OrderedDict(),
               "epoch": 70, "avg_loss": 12.5}
    torch.save(package, os.path.join(out, "v2_package.pt"), _use_new_zipfile_serialization=False)


# --------------------------------------------------------------------------
class Reducer:
    """Pickles as a call of `function(*args)`: what a malicious checkpoint does."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def write_entry(archive, name, data):
    """A STORED entry with a fixed timestamp, so reruns are byte-identical."""
    archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def torch_layout_zip(path, data_pkl, storages=()):
    """A zip archive laid out as torch.save lays it out, holding a hand-written data.pkl."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        write_entry(z, "archive/data.pkl", data_pkl)
        write_entry(z, "archive/byteorder", b"little")
        for key, data in storages:
            write_entry(z, f"archive/data/{key}", data)
        write_entry(z, "archive/version", b"3\n")


def make_malicious(out):
    import builtins
    import subprocess
    weights = {"conv.seq_module.0.bias": torch.zeros(32)}
    # GLOBAL 'os system' + REDUCE, hand-written (Python itself would name it posix.system on Linux).
    os_system = b"\x80\x02}q\x00X\x05\x00\x00\x00evil!q\x01cos\nsystem\nq\x02X\x04\x00\x00\x00trueq\x03\x85q\x04Rq\x05s."
    torch_layout_zip(os.path.join(out, "evil_os_system.pth"), os_system)
    torch.save({"state_dict": weights, "x": Reducer(os.system, "true")}, os.path.join(out, "evil_posix_system.pt"))
    torch.save({"state_dict": weights, "x": Reducer(builtins.eval, "1+1")}, os.path.join(out, "evil_eval_legacy.pt"),
               _use_new_zipfile_serialization=False)
    torch.save({"state_dict": weights, "x": Reducer(builtins.exec, "pass")}, os.path.join(out, "evil_exec.pth"))
    torch.save({"state_dict": weights, "x": Reducer(subprocess.Popen, ["true"])},
               os.path.join(out, "evil_subprocess.pth"), pickle_protocol=4)
    torch.save(nn.Linear(2, 2), os.path.join(out, "whole_module.pth"))


def make_malformed(out):
    gen = torch.Generator().manual_seed(5001)
    torch_layout_zip(os.path.join(out, "corrupt_pickle.pth"),
                     bytes(torch.randint(0, 256, (512,), generator=gen, dtype=torch.uint8).tolist()))
    buffer = io.BytesIO()
    torch.save({"a": torch.ones(2), "b": torch.zeros(3)}, buffer)
    src = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile(os.path.join(out, "missing_storage.pth"), "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            if not info.filename.endswith("/data/1"):
                write_entry(dst, info.filename, src.read(info.filename))
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), os.path.join(out, "torchscript.pt"))
    # PyTorch < 0.4 wrote a tar archive with 'sys_info', 'pickle', 'storages' and 'tensors' members.
    with tarfile.open(os.path.join(out, "legacy_tar.pt"), "w", format=tarfile.PAX_FORMAT) as tar:
        for member in ("sys_info", "pickle", "storages", "tensors"):
            data = pickle.dumps({"protocol_version": 1001} if member == "sys_info" else [], protocol=2)
            info = tarfile.TarInfo(member)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data/pytorch")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}  python {sys.version.split()[0]}")
    os.makedirs(args.out, exist_ok=True)
    enums, train_config = install_deepspeech_pytorch_standins()
    make_lightning_checkpoint(args.out, enums, train_config)
    make_plain_state_dict(args.out)
    make_tensor_files(args.out)
    make_v2_package(args.out)
    make_malicious(args.out)
    make_malformed(args.out)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"all fixtures written and checked: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
