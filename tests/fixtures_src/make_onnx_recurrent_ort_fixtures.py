#!/usr/bin/env python3
"""ONNX LSTM/GRU/RNN nodes with the options the ONNX project's own node tests leave out (clip, gate
functions with alpha/beta, a non-zero initial state, bidirectional with mixed sequence_lens), with
ONNX Runtime's outputs, in the node tests' folder layout (model.onnx + test_data_set_0/{input,output}_N.pb),
so the node-test harness (tests/unit/onnx_node_test.cpp) checks ds2rt against ONNX Runtime on them.

    pip install onnx onnxruntime numpy
    python3 tests/fixtures_src/make_onnx_recurrent_ort_fixtures.py tests/data/onnx/ort_recurrent
"""
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def make(root, name, op, gates, attrs, rng, directions=1, initial_h=False, outputs=("Y", "Y_h")):
    t, n, i, h = 5, 3, 4, 6
    inputs = {
        "X": rng.standard_normal((t, n, i)).astype(np.float32),
        "W": (rng.standard_normal((directions, gates * h, i)) * 0.8).astype(np.float32),
        "R": (rng.standard_normal((directions, gates * h, h)) * 0.8).astype(np.float32),
        "B": (rng.standard_normal((directions, 2 * gates * h)) * 0.5).astype(np.float32),
        "sequence_lens": np.array([5, 3, 4], dtype=np.int32),  # mixed lengths, the longest first
    }
    if initial_h:
        inputs["initial_h"] = rng.standard_normal((directions, n, h)).astype(np.float32)
    node_outputs = [o if o in outputs else "" for o in ("Y", "Y_h")]
    node = helper.make_node(op, list(inputs), node_outputs, hidden_size=h, **attrs)
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info(k, TensorProto.INT32 if k == "sequence_lens" else TensorProto.FLOAT, v.shape)
         for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs])
    folder = os.path.join(root, f"test_{name}")
    os.makedirs(os.path.join(folder, "test_data_set_0"))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), os.path.join(folder, "model.onnx"))
    results = ort.InferenceSession(os.path.join(folder, "model.onnx"), providers=["CPUExecutionProvider"]).run(None, inputs)
    for k, (key, value) in enumerate(inputs.items()):
        with open(os.path.join(folder, "test_data_set_0", f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(value, key).SerializeToString())
    for k, (key, value) in enumerate(zip(outputs, results)):
        with open(os.path.join(folder, "test_data_set_0", f"output_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(value, key).SerializeToString())


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/data/onnx/ort_recurrent"
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(20261125)
    make(root, "lstm_clip_ort", "LSTM", 4, {"clip": 0.7}, rng)
    make(root, "gru_clip_ort", "GRU", 3, {"clip": 0.5, "linear_before_reset": 1}, rng)
    make(root, "gru_initial_h_ort", "GRU", 3, {"linear_before_reset": 1}, rng, initial_h=True)
    make(root, "rnn_leakyrelu_ort", "RNN", 1, {"activations": ["LeakyRelu"], "activation_alpha": [0.1]}, rng)
    make(root, "lstm_affine_scaledtanh_ort", "LSTM", 4,
         {"activations": ["Sigmoid", "Affine", "ScaledTanh"], "activation_alpha": [0.5, 0.8],
          "activation_beta": [0.1, 1.2]}, rng)
    # Bidirectional: Y (T x D x N x H) as a graph output is not a layout ds2rt's layers produce, so Y_h only.
    make(root, "lstm_bidirectional_hardsigmoid_clip_ort", "LSTM", 4,
         {"direction": "bidirectional", "clip": 0.9,
          "activations": ["HardSigmoid", "Tanh", "Tanh", "HardSigmoid", "Tanh", "Tanh"],
          "activation_alpha": [0.3, 0.25], "activation_beta": [0.4, 0.45]}, rng, directions=2, outputs=("Y_h",))
    print(f"wrote {len(os.listdir(root))} node tests to {root} (onnxruntime {ort.__version__})")


if __name__ == "__main__":
    main()
