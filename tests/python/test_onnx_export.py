"""ds2rt.export_onnx: the ONNX file of every parity fixture model passes onnx.checker (with shape
inference), runs in ONNX Runtime and gives ds2rt's own CPU output and PyTorch's stored reference
output (tests/data/parity: a mixed-length batch whose padding holds large garbage), within a
relative L2 error of 1e-4; bad options and unwritable paths raise ds2rt.Error."""
from pathlib import Path

import numpy as np
import pytest

ds2rt = pytest.importorskip("ds2rt", reason="the ds2rt package is not installed (pip install . from the repo root)")
onnx = pytest.importorskip("onnx", reason="the onnx package is not installed (pip install onnx): ONNX export tests skipped")
ort = pytest.importorskip(
    "onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime): ONNX export tests skipped")

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURES = sorted(p.name for p in (DATA / "parity").iterdir() if (p / "model.safetensors").exists())
OPTIONS = {
    "default": {},
    "int64_log_softmax_opset13": {"int64_lengths": True, "log_softmax": True, "opset": 13},
}


def relative_l2(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


def valid_frames(x, lengths):
    """The frames of each utterance up to its length, concatenated (PyTorch's output has no mask)."""
    return np.concatenate([x[n, :length] for n, length in enumerate(lengths)])


def run_ort(path, inputs):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


@pytest.fixture(scope="module", params=FIXTURES)
def fixture(request):
    folder = DATA / "parity" / request.param
    return ds2rt.DeepSpeech2Model.load(folder / "model.safetensors"), ds2rt.WeightStore.load(folder / "io.safetensors")


@pytest.mark.parametrize("option_set", OPTIONS)
def test_onnx_runtime_matches_ds2rt_and_pytorch(fixture, option_set, tmp_path):
    model, io = fixture
    options = OPTIONS[option_set]
    log = options.get("log_softmax", False)
    key = "log_probs" if log else "probs"
    path = tmp_path / "model.onnx"
    ds2rt.export_onnx(model, path, **options)

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == options.get("opset", 17)
    assert {p.key: p.value for p in proto.metadata_props}["ds2rt.config"] == model.config.to_json()
    assert [i.name for i in proto.graph.input] == ["features", "lengths"]
    assert [o.name for o in proto.graph.output] == [key, "output_lengths"]

    lengths_type = np.int64 if options.get("int64_lengths") else np.int32
    features = np.ascontiguousarray(io["input"], dtype=np.float32)
    lengths = io["input_lengths"].astype(lengths_type)
    out = run_ort(path, {"features": features, "lengths": lengths})
    assert out["output_lengths"].dtype == lengths_type
    np.testing.assert_array_equal(out["output_lengths"], io["output_lengths"])

    engine = ds2rt.Builder(ds2rt.BuilderConfig(device=ds2rt.Device.CPU)).build(model.create_network(log_softmax=log))
    ours = engine.create_context().run({"features": features, "lengths": io["input_lengths"]})
    assert out[key].shape == ours[key].shape
    # The whole tensor: ds2rt and the ONNX graph both zero every frame past an utterance's length.
    assert relative_l2(out[key], ours[key]) < 1e-4
    for n, length in enumerate(io["output_lengths"]):
        assert not out[key][n, length:].any(), f"utterance {n}: frames past its length {length} are not zero"
    reference = valid_frames(io[key], io["output_lengths"])
    assert relative_l2(valid_frames(out[key], io["output_lengths"]), reference) < 1e-4


def test_one_utterance_and_other_batch_sizes(tmp_path):
    """N and T are dynamic: the same file runs a single utterance and a batch of another shape."""
    model = ds2rt.DeepSpeech2Model.load(DATA / "parity" / "lstm_uni_l2_h16_ctx3" / "model.safetensors")
    path = tmp_path / "model.onnx"
    ds2rt.export_onnx(model, path)
    engine = ds2rt.Builder(ds2rt.BuilderConfig(device=ds2rt.Device.CPU)).build(model.create_network())
    rng = np.random.default_rng(3)
    bins = model.config.spect.frequency_bins
    for lengths in ([57], [40, 13, 33]):
        features = rng.standard_normal((len(lengths), 1, bins, max(lengths))).astype(np.float32)
        lengths = np.array(lengths, np.int32)
        out = run_ort(path, {"features": features, "lengths": lengths})
        ours = engine.create_context().run({"features": features, "lengths": lengths})
        np.testing.assert_array_equal(out["output_lengths"], ours["output_lengths"])
        assert relative_l2(out["probs"], ours["probs"]) < 1e-4


def test_errors(tmp_path):
    model = ds2rt.DeepSpeech2Model.load(DATA / "parity" / "rnn_bi_l1_h16" / "model.safetensors")
    with pytest.raises(ds2rt.Error, match="opset 12 is not supported"):
        ds2rt.export_onnx(model, tmp_path / "model.onnx", opset=12)
    unwritable = tmp_path / "no-such-folder" / "model.onnx"
    with pytest.raises(ds2rt.Error, match="cannot create"):
        ds2rt.export_onnx(model, unwritable)
    assert not list(tmp_path.iterdir())
