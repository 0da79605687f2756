"""ds2rt's Python bindings for DeepSpeech2 models: parity with PyTorch's stored outputs through the
Python API, the same network built layer by layer in Python from the state_dict, configs, model
files and importers."""
from pathlib import Path

import numpy as np
import pytest

ds2rt = pytest.importorskip("ds2rt", reason="the ds2rt package is not installed (pip install . from the repo root)")

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURES = sorted(p.name for p in (DATA / "parity").iterdir() if (p / "model.safetensors").exists())
CELLS = {"lstm": ds2rt.RNNCell.LSTM, "gru": ds2rt.RNNCell.GRU, "rnn": ds2rt.RNNCell.RNN_TANH}


def max_valid_error(out, io, key="probs"):
    """Largest difference to PyTorch's output over the valid frames of each utterance."""
    return max(np.abs(out[key][n, :length] - io[key][n, :length]).max()
               for n, length in enumerate(io["output_lengths"]))


def run(network, io, optimize=True):
    engine = ds2rt.Builder(ds2rt.BuilderConfig(optimize=optimize)).build(network)
    return engine.create_context().run({"features": io["input"], "lengths": io["input_lengths"]})


def python_deepspeech2(w, config):
    """deepspeech.pytorch's DeepSpeech layer by layer, as DeepSpeech2Model.create_network builds it."""
    net = ds2rt.NetworkDefinition()
    x = net.add_image_input("features", channels=1, features=config.spect.frequency_bins)
    lengths = net.add_lengths_input("lengths")
    out_lengths = net.add_lengths_transform("output_lengths", lengths, kernel=11, stride=2, padding=5)
    x = net.add_sequence_mask("input_mask", x, lengths)

    def batch_norm(name, x, prefix):
        return net.add_batch_norm(name, x, scale=w[prefix + ".weight"], bias=w[prefix + ".bias"],
                                  mean=w[prefix + ".running_mean"], variance=w[prefix + ".running_var"])

    for i, (stride, padding) in enumerate([((2, 2), (20, 5)), ((2, 1), (10, 5))]):
        conv, bn = f"conv.seq_module.{3 * i}", f"conv.seq_module.{3 * i + 1}"
        x = net.add_convolution(conv, x, out_channels=32, kernel=w[conv + ".weight"].shape[2:], stride=stride,
                                padding=padding, weight=w[conv + ".weight"], bias=w[conv + ".bias"])
        x = net.add_sequence_mask(bn + ".mask", batch_norm(bn, x, bn), out_lengths)
        x = net.add_activation(f"hardtanh{i}", x, ds2rt.ActivationType.CLIP, min=0, max=20)
    x = net.add_reshape_to_sequence("reshape", x)
    direction = ds2rt.RNNDirection.BIDIRECTIONAL if config.bidirectional else ds2rt.RNNDirection.FORWARD
    for i in range(config.hidden_layers):
        p = f"rnns.{i}"
        if i > 0:
            x = batch_norm(p + ".batch_norm", x, p + ".batch_norm.module")
        rnn = ds2rt.RNNDesc(cell=CELLS[config.rnn_type], hidden_size=config.hidden_size, direction=direction,
                            merge=ds2rt.DirectionMerge.SUM)
        for d in range(rnn.directions):
            s = "_l0_reverse" if d else "_l0"
            rnn.set_weights(0, d, ds2rt.GateLayout.PYTORCH, w[f"{p}.rnn.weight_ih{s}"], w[f"{p}.rnn.weight_hh{s}"],
                            w[f"{p}.rnn.bias_ih{s}"], w[f"{p}.rnn.bias_hh{s}"])
        x = net.add_rnn(p + ".rnn", x, out_lengths, rnn)
    if not config.bidirectional:
        x = net.add_lookahead("lookahead", x, out_lengths, weight=w["lookahead.0.conv.weight"],
                              activation=ds2rt.ActivationDesc(ds2rt.ActivationType.CLIP, 0, 20))
    x = net.add_fully_connected("fc", batch_norm("fc.bn", x, "fc.0.module.0"), weight=w["fc.0.module.1.weight"])
    x = net.add_batch_major("batch_major", net.add_softmax("softmax", x))
    net.mark_output(net.add_sequence_mask("output_mask", x, out_lengths), "probs")
    net.mark_output(out_lengths)
    return net


@pytest.fixture(scope="module", params=FIXTURES)
def fixture(request):
    folder = DATA / "parity" / request.param
    return ds2rt.DeepSpeech2Model.load(folder / "model.safetensors"), ds2rt.WeightStore.load(folder / "io.safetensors")


@pytest.mark.parametrize("optimize", [True, False])
def test_parity_with_pytorch(fixture, optimize):
    model, io = fixture
    assert max_valid_error(run(model.create_network(), io, optimize), io) < 1e-4
    log = run(model.create_network(log_softmax=True), io, optimize)
    assert max_valid_error(log, io, "log_probs") < 1e-4
    np.testing.assert_array_equal(log["output_lengths"], io["output_lengths"])


def test_layer_by_layer_in_python_equals_create_network(fixture):
    model, io = fixture
    state_dict = ds2rt.WeightStore.load(model.weights.source).to_dict()  # name -> numpy (float16 here)
    ours = run(python_deepspeech2(state_dict, model.config), io)
    theirs = run(model.create_network(), io)
    np.testing.assert_allclose(ours["probs"], theirs["probs"], atol=1e-6)
    np.testing.assert_array_equal(ours["output_lengths"], theirs["output_lengths"])
    assert max_valid_error(ours, io) < 1e-4


def test_config_and_model_files(tmp_path):
    spect = ds2rt.SpectrogramConfig(sample_rate=8000)
    assert (spect.fft_size, spect.frequency_bins, spect.window) == (160, 81, "hamming")
    config = ds2rt.DeepSpeech2Config(rnn_type="gru", hidden_size=16, hidden_layers=2, bidirectional=False,
                                     lookahead_context=3, labels=list("_AB "), spect=spect)
    config.validate()
    assert config.cell == ds2rt.RNNCell.GRU and config.rnn_input_size == 32 * 21
    again = ds2rt.DeepSpeech2Config.from_json(config.to_json())
    assert (again.rnn_type, again.hidden_layers, again.lookahead_context, again.labels, again.spect.sample_rate) == \
        ("gru", 2, 3, ["_", "A", "B", " "], 8000)

    model = ds2rt.DeepSpeech2Model.with_random_weights(config, seed=5)
    model.save(tmp_path / "m.safetensors")
    loaded = ds2rt.DeepSpeech2Model.load(tmp_path / "m.safetensors")
    assert loaded.config.to_json() == config.to_json()
    state_dict = model.weights.to_dict()
    assert "lookahead.0.conv.weight" in state_dict
    from_dict = ds2rt.DeepSpeech2Model(config, state_dict)  # a dict of arrays is a WeightStore
    io = {"input": np.random.default_rng(1).standard_normal((2, 1, 81, 30), dtype=np.float32),
          "input_lengths": np.array([30, 21], np.int32)}
    np.testing.assert_array_equal(run(from_dict.create_network(), io)["probs"],
                                  run(loaded.create_network(), io)["probs"])


def test_model_errors_name_the_tensor_or_file(tmp_path):
    config = ds2rt.DeepSpeech2Config(hidden_size=8, hidden_layers=1, labels=list("_AB "))
    weights = ds2rt.DeepSpeech2Model.with_random_weights(config).weights.to_dict()
    missing = dict(weights)
    del missing["fc.0.module.1.weight"]
    with pytest.raises(ds2rt.Error, match="fc.0.module.1.weight"):
        ds2rt.DeepSpeech2Model(config, missing).create_network()
    wrong = dict(weights, **{"conv.seq_module.0.bias": np.zeros(31, np.float32)})
    with pytest.raises(ds2rt.Error, match="conv.seq_module.0.bias"):
        ds2rt.DeepSpeech2Model(config, wrong).create_network()
    with pytest.raises(ds2rt.Error, match="rnns.7.rnn.weight_ih_l0"):
        ds2rt.DeepSpeech2Model(config, dict(weights, **{"rnns.7.rnn.weight_ih_l0": np.zeros(2)})).create_network()
    with pytest.raises(ds2rt.Error, match="no_such_model.safetensors"):
        ds2rt.DeepSpeech2Model.load(tmp_path / "no_such_model.safetensors")
    with pytest.raises(ds2rt.Error, match="hidden_size"):
        ds2rt.DeepSpeech2Config(hidden_size=0, labels=["_"]).validate()


@pytest.mark.skipif(not hasattr(ds2rt, "import_model"), reason="this build has no importers")
def test_importers():
    checkpoint = DATA / "pytorch" / "lstm_bi_l2_h8.pth"
    if not checkpoint.exists():
        pytest.skip(f"{checkpoint} is not present")
    imported = ds2rt.import_model(checkpoint, labels=list("_'ABCDEFGHIJKLMNOPQRSTUVWXYZ "), sample_rate=8000)
    assert imported.format and {o.field for o in imported.origins} >= {"rnn_type", "hidden_size"}
    assert imported.model.config.hidden_size == 8
    io = ds2rt.WeightStore.load(DATA / "pytorch" / "lstm_bi_l2_h8.io.safetensors")
    assert max_valid_error(run(imported.model.create_network(), io), io) < 1e-4
    assert ds2rt.supported_model_formats()
    with pytest.raises(ds2rt.Error):
        ds2rt.load_model(DATA / "pytorch" / "evil_os_system.pth")


def test_import_network_carries_labels_and_features():
    checkpoint = DATA / "pytorch" / "lstm_bi_l2_h8.pth"
    imported = ds2rt.import_network(checkpoint, log_softmax=True)
    assert "lstm, 2 layers of 8, bidirectional" in imported.architecture
    assert len(imported.labels) == 29 and imported.spect is not None
    engine = ds2rt.Builder().build(imported.network)
    assert "log_probs" in engine.output_names
    assert engine.tensor_shape("features")[2] == imported.spect.frequency_bins
    assert engine.tensor_shape("features")[3] == -1
    io = ds2rt.WeightStore.load(DATA / "pytorch" / "lstm_bi_l2_h8.io.safetensors")
    out = engine.create_context().run({"features": io["input"], "lengths": io["input_lengths"]})
    assert max_valid_error(out, io, "log_probs") < 1e-4
    with pytest.raises(ds2rt.Error, match="no input or output 'nope'"):
        engine.tensor_shape("nope")
