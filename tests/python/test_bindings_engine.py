"""ds2rt's Python bindings: NetworkDefinition (every layer, against numpy references), Builder,
Engine (plans), ExecutionContext (numpy in and out, the GIL released while running) and errors."""
import json
import threading
import time

import numpy as np
import pytest

ds2rt = pytest.importorskip("ds2rt", reason="the ds2rt package is not installed (pip install . from the repo root)")

rng = np.random.default_rng(7)


def randn(*shape, scale=0.5):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def run(net, **inputs):
    return ds2rt.Builder().build(net).create_context(num_threads=1).run(inputs)


def conv2d_reference(x, w, b, stride, padding):
    n, c, f, t = x.shape
    o, _, kf, kt = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    fo, to = (x.shape[2] - kf) // stride[0] + 1, (x.shape[3] - kt) // stride[1] + 1
    y = np.zeros((n, o, fo, to), np.float64)
    for i in range(fo):
        for j in range(to):
            patch = x[:, :, i * stride[0]:i * stride[0] + kf, j * stride[1]:j * stride[1] + kt]
            y[:, :, i, j] = np.einsum("ncij,ocij->no", patch, w) + b
    return y


def lstm_reference(x, lengths, w_ih, w_hh, b_ih, b_hh):
    """PyTorch's LSTM (gates i, f, g, o) over T x N x I, each utterance to its own length."""
    t_max, n, _ = x.shape
    h_size = w_hh.shape[1]
    y = np.zeros((t_max, n, h_size))
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for b in range(n):
        h, c = np.zeros(h_size), np.zeros(h_size)
        for t in range(lengths[b]):
            i, f, g, o = np.split(w_ih @ x[t, b] + b_ih + w_hh @ h + b_hh, 4)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            y[t, b] = h
    return y


def test_convolution_batch_norm_activation_and_masks_match_numpy():
    x, w, b = randn(2, 2, 9, 12), randn(3, 2, 3, 5), randn(3)
    scale, shift, mean, var = randn(3) + 1, randn(3), randn(3), np.abs(randn(3)) + 0.5
    net = ds2rt.NetworkDefinition()
    inp = net.add_image_input("x", channels=2, features=9)
    lengths = net.add_lengths_input("lengths")
    out_lengths = net.add_lengths_transform("out_lengths", lengths, kernel=5, stride=2, padding=2)
    y = net.add_convolution("conv", inp, weight=w, bias=b, stride=(2, 2), padding=(1, 2))
    assert net.shape(y) == [-1, 3, 5, -1] and net.layout(y) == ds2rt.TensorLayout.IMAGE
    y = net.add_batch_norm("bn", y, scale=scale, bias=shift, mean=mean, variance=var, epsilon=1e-3)
    y = net.add_activation("clip", y, ds2rt.ActivationType.CLIP, min=0, max=0.5)
    y = net.add_sequence_mask("mask", y, out_lengths)
    net.mark_output(y, "y")
    net.mark_output(out_lengths)
    assert net.name(out_lengths) == "out_lengths" and net.layer_count == 5 and "conv" in net.describe()

    out = run(net, x=x, lengths=np.array([12, 7], np.int64))  # int64 lengths are fine
    expected = conv2d_reference(x, w, b, (2, 2), (1, 2))
    expected = (expected - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-3) * scale[:, None, None] + \
        shift[:, None, None]
    expected = np.clip(expected, 0, 0.5)
    assert out["out_lengths"].tolist() == [6, 4]
    expected[1, :, :, 4:] = 0
    np.testing.assert_allclose(out["y"], expected, atol=1e-5)


def test_every_activation_and_the_fused_activation_argument():
    x = randn(3, 2, 4, scale=2)
    net = ds2rt.NetworkDefinition()
    inp = net.add_sequence_input("x", features=4)
    kinds = {ds2rt.ActivationType.RELU: lambda v: np.maximum(v, 0), ds2rt.ActivationType.TANH: np.tanh,
             ds2rt.ActivationType.SIGMOID: lambda v: 1 / (1 + np.exp(-v))}
    for kind in kinds:
        net.mark_output(net.add_activation(kind.name, inp, kind), kind.name)
    w = randn(5, 4)
    fused = ds2rt.ActivationDesc(ds2rt.ActivationType.CLIP, min=-0.1, max=0.2)
    assert fused.apply(1.0) == pytest.approx(0.2)
    net.mark_output(net.add_fully_connected("fc", inp, weight=w, activation=fused), "fc")
    out = run(net, x=x)
    for kind, f in kinds.items():
        np.testing.assert_allclose(out[kind.name], f(x), atol=1e-6)
    np.testing.assert_allclose(out["fc"], np.clip(x @ w.T, -0.1, 0.2), atol=1e-5)


def test_sequence_layers_match_numpy():
    t, n, h = 6, 2, 4
    x, lengths = randn(t, n, h), np.array([6, 4], np.int32)
    look, w, b = randn(h, 3), randn(5, h), randn(5)
    net = ds2rt.NetworkDefinition()
    inp = net.add_sequence_input("x", features=h)
    lens = net.add_lengths_input("lengths")
    y = net.add_lookahead("lookahead", inp, lens, weight=look)
    y = net.add_fully_connected("fc", y, weight=w, bias=b)
    net.mark_output(net.add_batch_major("probs", net.add_softmax("softmax", y)), "probs")
    net.mark_output(net.add_log_softmax("log_softmax", y), "log_probs")
    out = run(net, x=x, lengths=lengths)

    masked = x.copy()
    masked[4:, 1] = 0
    padded = np.concatenate([masked, np.zeros((2, n, h), np.float32)])
    ahead = sum(look[:, k] * padded[k:k + t] for k in range(3))
    logits = ahead @ w.T + b
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(out["log_probs"][:, 0], log_probs[:, 0], atol=1e-5)
    np.testing.assert_allclose(out["log_probs"][:4, 1], log_probs[:4, 1], atol=1e-5)
    np.testing.assert_allclose(out["probs"][0], np.exp(log_probs[:, 0]), atol=1e-6)  # N x T x C


def test_rnn_weights_whole_per_gate_and_against_a_reference():
    t, n, i, h = 5, 2, 3, 4
    x, lengths = randn(t, n, i), np.array([5, 3], np.int32)
    w_ih, w_hh, b_ih, b_hh = randn(4 * h, i), randn(4 * h, h), randn(4 * h), randn(4 * h)

    whole = ds2rt.RNNDesc(cell=ds2rt.RNNCell.LSTM, hidden_size=h)
    whole.set_weights(0, 0, ds2rt.GateLayout.PYTORCH, w_ih, w_hh, b_ih, b_hh)
    per_gate = ds2rt.RNNDesc(cell=ds2rt.RNNCell.LSTM, hidden_size=h, num_layers=1)
    for k, gate in enumerate([ds2rt.Gate.INPUT, ds2rt.Gate.FORGET, ds2rt.Gate.CELL, ds2rt.Gate.OUTPUT]):
        rows = slice(k * h, (k + 1) * h)
        per_gate.set_gate(0, 0, gate, w_ih[rows], w_hh[rows], b_ih[rows], b_hh[rows])
    keras = ds2rt.RNNDesc(cell=ds2rt.RNNCell.LSTM, hidden_size=h)
    to_keras = lambda a, axis=0: ds2rt.from_canonical_gates(a, ds2rt.RNNCell.LSTM, ds2rt.GateLayout.KERAS, axis)  # noqa
    keras.set_weights(0, 0, ds2rt.GateLayout.KERAS, to_keras(w_ih), to_keras(w_hh), to_keras(b_ih + b_hh))
    assert whole.directions == 1 and len(whole.weights) == 1 and whole.weights[0].input_weight.shape == (4 * h, i)

    net = ds2rt.NetworkDefinition()
    inp = net.add_sequence_input("x", features=i)
    lens = net.add_lengths_input("lengths")
    for name, desc in (("whole", whole), ("per_gate", per_gate), ("keras", keras)):
        net.mark_output(net.add_rnn(name, inp, lens, desc), name)
    out = run(net, x=x, lengths=lengths)
    expected = lstm_reference(x, lengths, w_ih, w_hh, b_ih, b_hh)
    for name in ("whole", "per_gate", "keras"):
        np.testing.assert_allclose(out[name], expected, atol=1e-5, err_msg=name)


def test_bidirectional_gru_stack_matches_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    x = randn(5, 2, 3)
    with torch.no_grad():
        expected = gru(torch.from_numpy(x))[0].numpy()
    desc = ds2rt.RNNDesc(cell=ds2rt.RNNCell.GRU, hidden_size=4, num_layers=2,
                         direction=ds2rt.RNNDirection.BIDIRECTIONAL, merge=ds2rt.DirectionMerge.CONCAT)
    sd = gru.state_dict()
    for layer in range(2):
        for d, suffix in enumerate(["", "_reverse"]):
            p = f"l{layer}{suffix}"
            desc.set_weights(layer, d, ds2rt.GateLayout.PYTORCH, sd[f"weight_ih_{p}"], sd[f"weight_hh_{p}"],
                             sd[f"bias_ih_{p}"], sd[f"bias_hh_{p}"])  # torch tensors straight in
    net = ds2rt.NetworkDefinition()
    y = net.add_rnn("gru", net.add_sequence_input("x", features=3), net.add_lengths_input("lengths"), desc)
    net.mark_output(y, "y")
    out = run(net, x=x, lengths=np.array([5, 5], np.int32))
    np.testing.assert_allclose(out["y"], expected, atol=1e-5)


def small_model(hidden=32, layers=2):
    config = ds2rt.DeepSpeech2Config(rnn_type="gru", hidden_size=hidden, hidden_layers=layers,
                                     labels=list("_ABC "), spect=ds2rt.SpectrogramConfig(sample_rate=8000))
    return ds2rt.DeepSpeech2Model.with_random_weights(config, seed=3)


def batch(frames=40, n=2, bins=81):
    x = rng.standard_normal((n, 1, bins, frames), dtype=np.float32)
    return {"features": x, "lengths": np.array([frames - 7 * k for k in range(n)], np.int32)}


def test_builder_engine_plans_and_contexts(tmp_path):
    network = small_model().create_network()
    config = ds2rt.BuilderConfig(device=ds2rt.Device.CPU, precision=ds2rt.Precision.FP32, optimize=False)
    config.validate()
    builder = ds2rt.Builder(config)
    assert builder.config.optimize is False and "cpu" in repr(builder.config)
    engine = builder.build(network)
    assert engine.input_names == ["features", "lengths"] and engine.output_names == ["probs", "output_lengths"]
    assert engine.config.device == ds2rt.Device.CPU and "total parameters" in engine.describe()
    optimized = ds2rt.Builder().build(network)
    assert any("folded" in line for line in optimized.build_report)

    inputs = batch()
    expected = engine.create_context().run(inputs)
    engine.save(tmp_path / "m.plan")
    for other in (ds2rt.Engine.load(tmp_path / "m.plan"), ds2rt.Engine.deserialize(optimized.serialize()),
                  optimized):
        out = other.create_context(num_threads=1).run(inputs)
        np.testing.assert_allclose(out["probs"], expected["probs"], atol=1e-5)
        np.testing.assert_array_equal(out["output_lengths"], expected["output_lengths"])
        assert json.loads(other.metadata["ds2rt.labels"]) == small_model().config.labels  # the plan transcribes alone
    network.set_metadata("owner", "test")
    assert ds2rt.Engine.deserialize(ds2rt.Builder().build(network).serialize()).metadata["owner"] == "test"

    context = engine.create_context(profile=True)
    features = inputs["features"].copy()
    context.set_input("features", features)  # bound without a copy: changes before run() count
    context.set_input("lengths", inputs["lengths"])
    features[:] = 0
    context.run()
    zero = engine.create_context().run({"features": np.zeros_like(features), "lengths": inputs["lengths"]})
    np.testing.assert_allclose(context.output("probs"), zero["probs"], atol=1e-6)
    assert {t.layer for t in context.layer_timings} and context.last_run_stats.compute_ms > 0


def test_errors_carry_the_cpp_message(tmp_path):
    engine = ds2rt.Builder().build(small_model().create_network())
    context = engine.create_context()
    good = batch()
    with pytest.raises(ds2rt.Error, match="input 'features' must be float32"):
        context.run({**good, "features": good["features"].astype(np.float64)})
    with pytest.raises(ds2rt.Error, match="input 'features' must have rank 4"):
        context.run({**good, "features": good["features"][0]})
    with pytest.raises(ds2rt.Error, match="input 'features' has shape"):
        context.run({**good, "features": good["features"][:, :, :40]})
    with pytest.raises(ds2rt.Error, match="input 'lengths' was not set"):
        engine.create_context().run({"features": good["features"]})
    with pytest.raises(ds2rt.Error, match="no input 'nope'"):
        context.set_input("nope", good["lengths"])
    with pytest.raises(ds2rt.Error, match="missing.plan"):
        ds2rt.Engine.load(tmp_path / "missing.plan")
    (tmp_path / "bad.plan").write_bytes(b"not a plan at all" * 10)
    with pytest.raises(ds2rt.Error):
        ds2rt.Engine.load(tmp_path / "bad.plan")

    net = ds2rt.NetworkDefinition()
    x = net.add_image_input("x", channels=2, features=9)
    with pytest.raises(ds2rt.Error, match="conv1"):
        net.add_convolution("conv1", x, weight=randn(3, 5, 3, 3))  # 5 input channels for a 2-channel input
    rnn = ds2rt.RNNDesc(cell=ds2rt.RNNCell.LSTM, hidden_size=4)
    rnn.set_weights(0, 0, ds2rt.GateLayout.PYTORCH, randn(12, 3), randn(12, 4))  # 3 gates' rows for an LSTM
    with pytest.raises(ds2rt.Error, match="lstm1"):
        net.add_rnn("lstm1", net.add_sequence_input("s", features=3), net.add_lengths_input("lengths"), rnn)
    with pytest.raises(TypeError):
        net.add_convolution("conv2", x, weight="not an array")


def test_contexts_run_concurrently_and_release_the_gil():
    engine = ds2rt.Builder().build(small_model(hidden=128).create_network())
    inputs = batch(frames=600)
    expected = engine.create_context(num_threads=1).run(inputs)
    start = time.perf_counter()
    engine.create_context(num_threads=1).run(inputs)
    one_run = time.perf_counter() - start

    results, done = [None, None], threading.Event()

    def work(k):
        context = engine.create_context(num_threads=1)
        for _ in range(3):
            results[k] = context.run(inputs)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    # While the workers run, this thread keeps running Python: no pause as long as a run.
    longest_pause, last = 0.0, time.perf_counter()
    while any(thread.is_alive() for thread in threads):
        now = time.perf_counter()
        longest_pause, last = max(longest_pause, now - last), now
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_array_equal(result["probs"], expected["probs"])
    assert longest_pause < one_run / 2, f"main thread paused {longest_pause:.3f} s; one run takes {one_run:.3f} s"


def test_one_context_refuses_a_second_thread():
    engine = ds2rt.Builder().build(small_model(hidden=128).create_network())
    inputs = batch(frames=600)
    expected = engine.create_context(num_threads=1).run(inputs)
    context, results = engine.create_context(num_threads=1), []
    worker = threading.Thread(target=lambda: results.extend(context.run(inputs) for _ in range(3)))
    worker.start()
    refusals = 0
    while worker.is_alive():  # never two calls at once: the second is refused
        try:
            context.output("probs")
        except ds2rt.Error as error:
            refusals += "in use by another thread" in str(error)
    worker.join()
    assert refusals > 0 and len(results) == 3
    np.testing.assert_array_equal(results[-1]["probs"], expected["probs"])
    # The same context runs on this thread too (it ran on the worker before).
    np.testing.assert_array_equal(context.run(inputs)["probs"], expected["probs"])


def test_layer_norm_matches_numpy_with_and_without_lengths():
    x, scale, bias = randn(5, 2, 6, scale=2), randn(6) + 1, randn(6)
    net = ds2rt.NetworkDefinition()
    inp = net.add_sequence_input("x", features=6)
    lengths = net.add_lengths_input("lengths")
    net.mark_output(net.add_layer_norm("plain", inp, scale=scale, bias=bias, epsilon=1e-3), "plain_out")
    net.mark_output(net.add_layer_norm("masked", inp, lengths, scale=scale, bias=bias), "masked_out")
    out = run(net, x=x, lengths=np.array([5, 3], np.int32))

    def reference(eps):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * scale + bias
    np.testing.assert_allclose(out["plain_out"], reference(1e-3), atol=1e-5)
    expected = reference(1e-5)
    expected[3:, 1] = 0
    np.testing.assert_allclose(out["masked_out"], expected, atol=1e-5)
