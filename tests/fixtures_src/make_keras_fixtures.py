#!/usr/bin/env python3
"""Keras fixtures for the Keras importer (tests/unit/keras_import_test.cpp).

Small DS2-style Keras models with random weights, saved by Keras itself (.keras and legacy .h5),
plus for each a padded batch of mixed lengths (garbage in the padding) and, per utterance, the
model's output on that utterance alone (batch 1, its own length): a model without masking runs
over the padding, so that is the honest reference for a batched engine.

    python3 tests/fixtures_src/make_keras_fixtures.py --out tests/data/keras

Needs tensorflow-cpu (Keras 3), tf_keras (Keras 2, for one legacy .h5), numpy and h5py; see README.md for the
versions used.
"""
import argparse
import json
import os
import struct

import h5py
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import keras  # noqa: E402
from keras import layers  # noqa: E402

F = 16       # frequency bins
CLASSES = 8  # output classes (blank included)


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        dtype = {np.float32: "F32", np.int32: "I32"}[array.dtype.type]
        blob = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def deflate_archive(path):
    """Keras stores the entries of a .keras zip uncompressed; deflated they take a third of the space
    in the repository, and Keras (and ds2rt) read them alike."""
    import zipfile
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in entries:
            dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def randomize_batch_norms(model, rng):
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            values = []
            for w in layer.weights:
                n, path = w.shape, getattr(w, "path", w.name)  # Keras 3: path; Keras 2: name
                if "variance" in path:
                    values.append(rng.uniform(0.5, 1.5, n))
                elif "gamma" in path:
                    values.append(rng.uniform(0.5, 1.5, n))
                else:
                    values.append(rng.normal(0, 0.2, n))
            layer.set_weights([v.astype(np.float32) for v in values])


def randomize_biases(model, rng):
    # Keras starts biases at zero (and the LSTM forget bias at one): random ones test their layout.
    for w in model.weights:
        if getattr(w, "path", w.name).split(":")[0].endswith("bias"):
            w.assign(rng.normal(0, 0.3, w.shape).astype(np.float32))


def bigru_concat(keras=keras):
    """The keras.io "CTC ASR" DeepSpeech2-like model, small: 'same' convs with stride 2 in time."""
    layers = keras.layers
    x_in = layers.Input((None, F), name="input")
    x = layers.Reshape((-1, F, 1), name="expand_dim")(x_in)
    x = layers.Conv2D(4, [11, 9], strides=[2, 2], padding="same", use_bias=False, name="conv_1")(x)
    x = layers.BatchNormalization(name="conv_1_bn")(x)
    x = layers.ReLU(name="conv_1_relu")(x)
    x = layers.Conv2D(4, [11, 5], strides=[1, 2], padding="same", use_bias=False, name="conv_2")(x)
    x = layers.BatchNormalization(name="conv_2_bn")(x)
    x = layers.ReLU(name="conv_2_relu")(x)
    x = layers.Reshape((-1, x.shape[-2] * x.shape[-1]))(x)
    for i in range(2):
        gru = layers.GRU(16, activation="tanh", recurrent_activation="sigmoid", use_bias=True, return_sequences=True,
                         reset_after=True, name=f"gru_{i + 1}")
        x = layers.Bidirectional(gru, name=f"bidirectional_{i + 1}", merge_mode="concat")(x)
        x = layers.Dropout(0.5)(x)
    x = layers.Dense(16, name="dense_1")(x)
    x = layers.ReLU(name="dense_1_relu")(x)
    x = layers.Dropout(0.5)(x)
    out = layers.Dense(CLASSES, activation="softmax")(x)
    return keras.Model(x_in, out, name="DeepSpeech_2")


def bilstm_sum_valid():
    """'valid' conv padding (any length is exact), BiLSTM summed, TimeDistributed(Dense), Softmax."""
    x_in = layers.Input((None, F))
    x = layers.Reshape((-1, F, 1))(x_in)
    x = layers.Conv2D(3, [5, 4], strides=[2, 2], padding="valid", use_bias=True)(x)
    x = layers.BatchNormalization(epsilon=1e-5)(x)
    x = layers.ReLU(max_value=20.0)(x)
    x = layers.Reshape((-1, x.shape[-2] * x.shape[-1]))(x)
    x = layers.Bidirectional(layers.LSTM(12, return_sequences=True), merge_mode="sum")(x)
    x = layers.BatchNormalization()(x)
    x = layers.TimeDistributed(layers.Dense(CLASSES))(x)
    out = layers.Softmax()(x)
    return keras.Model(x_in, out)


def gru_uni():
    """A Sequential model: 'same' conv with stride 1 (any length is exact), GRU reset_after=False, SimpleRNN."""
    return keras.Sequential([
        layers.Input((None, F)),
        layers.Reshape((-1, F, 1)),
        layers.Conv2D(2, [3, 3], strides=[1, 2], padding="same", activation="tanh"),
        layers.Reshape((-1, 2 * F // 2)),
        layers.GRU(12, return_sequences=True, reset_after=False),
        layers.SimpleRNN(8, return_sequences=True),
        layers.Dense(CLASSES, activation="softmax"),
    ])


def unknown_layer():
    x_in = layers.Input((None, F))
    x = layers.LayerNormalization(name="norm")(x_in)
    x = layers.Conv1D(4, 3, name="conv1d")(x)
    out = layers.Dense(CLASSES, activation="softmax")(x)
    return keras.Model(x_in, out)


def make_batch(lengths, rng, T):
    x = rng.normal(0, 1, (len(lengths), T, F)).astype(np.float32)
    for b, length in enumerate(lengths):
        x[b, length:] = rng.normal(0, 10, (T - length, F))  # garbage past each utterance's end
    return x


def make_io(model, lengths, x):
    io = {"features": np.ascontiguousarray(x.transpose(0, 2, 1)[:, None]),  # ds2rt: N x 1 x F x T
          "lengths": np.array(lengths, np.int32)}
    out_lengths = []
    for b, length in enumerate(lengths):
        y = model(x[b:b + 1, :length], training=False).numpy()
        io[f"probs.{b}"] = y[0].astype(np.float32)
        out_lengths.append(y.shape[1])
    io["output_lengths"] = np.array(out_lengths, np.int32)
    return io


def write_malformed_without_keras(out):
    """Malformed files that need no Keras: a .keras zip without its weights, a weights-only HDF5 file."""
    import zipfile
    with zipfile.ZipFile(os.path.join(out, "bigru_concat.keras")) as src, \
            zipfile.ZipFile(os.path.join(out, "no_weights_entry.keras"), "w") as dst:
        for name in ("metadata.json", "config.json"):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            dst.writestr(info, src.read(name), compress_type=zipfile.ZIP_DEFLATED)
    with h5py.File(os.path.join(out, "weights_only.h5"), "w") as f:  # as model.save_weights writes
        f.create_dataset("layers/dense/vars/0", data=np.zeros((2, 2), np.float32))


def write_config_variants(out):
    """gru_uni.keras with one setting changed in config.json that ds2rt must refuse clearly."""
    import zipfile

    def variant(name, edit):
        with zipfile.ZipFile(os.path.join(out, "gru_uni.keras")) as src, \
                zipfile.ZipFile(os.path.join(out, name), "w") as dst:
            for entry in src.namelist():
                data = src.read(entry)
                if entry == "config.json":
                    config = json.loads(data)
                    edit({layer["class_name"]: layer["config"] for layer in config["config"]["layers"]})
                    data = json.dumps(config).encode()
                info = zipfile.ZipInfo(entry, date_time=(2020, 1, 1, 0, 0, 0))
                dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)

    variant("go_backwards.keras", lambda layers: layers["GRU"].update(go_backwards=True))
    variant("elu_dense.keras", lambda layers: layers["Dense"].update(activation="elu"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "data", "keras"))
    parser.add_argument("--only-keras2", action="store_true", help="only the Keras 2 (tf_keras) legacy .h5 fixture")
    args = parser.parse_args()
    out = args.out
    if args.only_keras2:
        return keras2_fixture(out)
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(1234)
    rng = np.random.default_rng(1234)

    specs = [("bigru_concat", bigru_concat, ".keras", [40, 26, 14], 40),
             ("bilstm_sum_valid", bilstm_sum_valid, ".h5", [37, 40, 23], 40),
             ("gru_uni", gru_uni, ".keras", [33, 40, 18], 40)]
    for name, make, ext, lengths, T in specs:
        model = make()
        randomize_batch_norms(model, rng)
        randomize_biases(model, rng)
        path = os.path.join(out, name + ext)
        model.save(path)
        if ext == ".keras":
            deflate_archive(path)
        reloaded = keras.models.load_model(path)
        x = make_batch(lengths, rng, T)
        io = make_io(model, lengths, x)
        again = make_io(reloaded, lengths, x)
        for b in range(len(lengths)):
            assert np.allclose(io[f"probs.{b}"], again[f"probs.{b}"], atol=1e-6), "reloaded model differs"
        write_safetensors(os.path.join(out, name + ".io.safetensors"), io)
        print(name, ext, os.path.getsize(path), "bytes; output lengths", list(io["output_lengths"]))

    # Odd lengths through the stride-2 'same' convolution: TensorFlow pads them one frame earlier than even ones.
    model = keras.models.load_model(os.path.join(out, "bigru_concat.keras"))
    write_safetensors(os.path.join(out, "bigru_concat.odd.io.safetensors"), make_io(model, [39, 25], make_batch([39, 25], rng, 40)))

    # Malformed files.
    write_malformed_without_keras(out)
    write_config_variants(out)
    unknown_layer().save(os.path.join(out, "unknown_layer.keras"))
    deflate_archive(os.path.join(out, "unknown_layer.keras"))
    legacy = os.path.join(out, "bilstm_sum_valid.h5")
    with h5py.File(legacy, "r") as src, h5py.File(os.path.join(out, "no_weights.h5"), "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
    with h5py.File(legacy, "r") as src, h5py.File(os.path.join(out, "wrong_shape.h5"), "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        src.copy("model_weights", dst)
        group = dst["model_weights"]
        kernel = None

        def find(name, obj):
            nonlocal kernel
            if kernel is None and isinstance(obj, h5py.Dataset) and name.endswith("kernel") and "dense" in name:
                kernel = name
        group.visititems(find)
        data = group[kernel][()]
        del group[kernel]
        group[kernel] = np.zeros((data.shape[0] + 1, data.shape[1]), np.float32)
        print("wrong_shape.h5: replaced", kernel, data.shape)

    keras2_fixture(out)


def keras2_fixture(out):
    """The keras.io model saved by Keras 2 (the tf_keras package, as TensorFlow <= 2.15 saved .h5 files)."""
    import tf_keras
    tf_keras.utils.set_random_seed(2345)
    rng = np.random.default_rng(2345)
    model = bigru_concat(tf_keras)
    randomize_batch_norms(model, rng)
    randomize_biases(model, rng)
    path = os.path.join(out, "keras2_bigru_concat.h5")
    model.save(path)
    lengths = [40, 30, 12]
    x = make_batch(lengths, rng, 40)
    io = make_io(model, lengths, x)
    again = make_io(tf_keras.models.load_model(path), lengths, x)
    for b in range(len(lengths)):
        assert np.allclose(io[f"probs.{b}"], again[f"probs.{b}"], atol=1e-6), "reloaded model differs"
    write_safetensors(os.path.join(out, "keras2_bigru_concat.io.safetensors"), io)
    print("keras2_bigru_concat .h5", os.path.getsize(path), "bytes; output lengths", list(io["output_lengths"]))


if __name__ == "__main__":
    main()
