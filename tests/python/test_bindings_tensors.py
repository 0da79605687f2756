"""ds2rt's Python bindings: arrays in and out (dtypes, zero-copy views, lifetimes), WeightStore and
gate layouts. Needs the package installed (pip install .; scripts/test-python.sh does it)."""
import gc
import re
from pathlib import Path

import numpy as np
import pytest

ds2rt = pytest.importorskip("ds2rt", reason="the ds2rt package is not installed (pip install . from the repo root)")

DATA = Path(__file__).resolve().parents[1] / "data"
DTYPES = [np.float32, np.float16, np.float64, np.int64, np.int32, np.int8, np.uint8, np.bool_]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_through_a_safetensors_file(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    ds2rt.WeightStore({"x": array, "scalar": np.array(3, dtype)}).save(tmp_path / "w.safetensors")
    loaded = ds2rt.WeightStore.load(tmp_path / "w.safetensors")
    assert loaded["x"].dtype == array.dtype and loaded["x"].shape == (2, 3, 4)
    np.testing.assert_array_equal(loaded["x"], array)
    assert loaded["scalar"].shape == () and loaded["scalar"] == np.array(3, dtype)


def test_arrays_go_in_without_a_copy_and_stay_alive():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    store = ds2rt.WeightStore({"a": array})
    view = store["a"]
    assert np.shares_memory(view, array)
    assert not view.flags.writeable  # a view of the caller's array: read-only from ds2rt's side
    del array, view
    gc.collect()
    np.testing.assert_array_equal(store["a"], np.arange(12, dtype=np.float32).reshape(3, 4))


def test_non_contiguous_arrays_and_lists_are_copied_in():
    array = np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2]
    store = ds2rt.WeightStore({"strided": array, "list": [[1, 2], [3, 4]]})
    np.testing.assert_array_equal(store["strided"], array)
    assert not np.shares_memory(store["strided"], array)
    assert store["list"].dtype == np.int64 and store["list"].tolist() == [[1, 2], [3, 4]]


def test_integer_types_without_a_ds2rt_type_are_widened():
    store = ds2rt.WeightStore({"i16": np.array([-3, 4], np.int16), "u32": np.array([7], np.uint32)})
    assert store["i16"].dtype == np.int32 and store["i16"].tolist() == [-3, 4]
    assert store["u32"].dtype == np.int64 and store["u32"].tolist() == [7]


def test_non_numeric_arrays_are_a_type_error():
    with pytest.raises(TypeError):
        ds2rt.WeightStore({"text": np.array(["a", "b"])})
    with pytest.raises(TypeError):
        ds2rt.transpose2d(np.zeros((2, 2), np.complex64))


def test_results_own_their_data_and_outlive_their_source(tmp_path):
    ds2rt.WeightStore({"x": np.ones((3, 2), np.float32)}).save(tmp_path / "w.safetensors")
    store = ds2rt.WeightStore.load(tmp_path / "w.safetensors")
    mapped = store["x"]  # views the memory-mapped file
    assert not mapped.flags.writeable
    del store
    gc.collect()
    np.testing.assert_array_equal(mapped, np.ones((3, 2)))
    converted = ds2rt.transpose2d(mapped)  # a new tensor: writable, owned by the array
    assert converted.flags.writeable and converted.shape == (2, 3)
    converted[0, 0] = 5


def test_weight_store_behaves_like_a_dict():
    store = ds2rt.WeightStore({"b": np.zeros(2, np.float32)}, metadata={"k": "v"})
    store["a"] = np.ones(3, np.float16)
    assert len(store) == 2 and list(store) == ["a", "b"] and store.keys() == ["a", "b"]
    assert "a" in store and "c" not in store
    assert set(store.to_dict()) == {"a", "b"}
    assert store.metadata == {"k": "v"}
    store.metadata = {"x": "y"}
    assert store.metadata == {"x": "y"}
    store.source = "my weights"
    with pytest.raises(KeyError, match="no tensor 'c' in my weights"):
        store["c"]
    np.testing.assert_array_equal(store.get_float("a", [3]), np.ones(3, np.float32))
    with pytest.raises(ds2rt.Error, match="'a'"):
        store.get_float("a", [4])


def test_torch_state_dict_goes_straight_in():
    torch = pytest.importorskip("torch")
    lstm = torch.nn.LSTM(4, 3)
    state_dict = lstm.state_dict()
    store = ds2rt.WeightStore({k: v.numpy() for k, v in state_dict.items()})
    np.testing.assert_array_equal(store["weight_ih_l0"], state_dict["weight_ih_l0"].numpy())
    direct = ds2rt.WeightStore(dict(state_dict))  # tensors themselves, through DLPack
    np.testing.assert_array_equal(direct["bias_hh_l0"], state_dict["bias_hh_l0"].numpy())
    bf16 = ds2rt.WeightStore({"w": torch.tensor([1.5, -2.0], dtype=torch.bfloat16)})
    assert bf16["w"].dtype == np.float32 and bf16["w"].tolist() == [1.5, -2.0]  # numpy has no bfloat16


def test_gate_layouts():
    cell, hidden = ds2rt.RNNCell.LSTM, 2
    assert ds2rt.gate_count(cell) == 4
    assert ds2rt.gate_order(cell, ds2rt.GateLayout.KERAS) == [ds2rt.Gate.INPUT, ds2rt.Gate.FORGET, ds2rt.Gate.CELL,
                                                              ds2rt.Gate.OUTPUT]
    blocks = {g: np.full((hidden, 3), i, np.float32) for i, g in enumerate("ifgo")}
    onnx = np.concatenate([blocks[g] for g in "iofg"])  # ONNX: i, o, f, c
    canonical = ds2rt.to_canonical_gates(onnx, cell, ds2rt.GateLayout.ONNX)
    np.testing.assert_array_equal(canonical, np.concatenate([blocks[g] for g in "ifgo"]))
    np.testing.assert_array_equal(ds2rt.from_canonical_gates(canonical, cell, ds2rt.GateLayout.ONNX), onnx)
    keras_kernel = np.concatenate([blocks[g] for g in "ifgo"]).T  # input x 4H, Keras order = canonical here
    np.testing.assert_array_equal(ds2rt.to_canonical_gates(keras_kernel, cell, ds2rt.GateLayout.KERAS, axis=1),
                                  keras_kernel)
    with pytest.raises(ds2rt.Error):
        ds2rt.to_canonical_gates(np.zeros((7, 3), np.float32), cell, ds2rt.GateLayout.ONNX)


def test_error_is_a_runtime_error_with_the_message():
    assert issubclass(ds2rt.Error, RuntimeError)
    with pytest.raises(ds2rt.Error, match="missing.safetensors"):
        ds2rt.WeightStore.load(DATA / "missing.safetensors")


def test_type_stubs_are_installed_and_cover_the_bindings():
    package = Path(ds2rt.__file__).parent
    assert (package / "py.typed").exists()
    stub = (package / "_ds2rt.pyi").read_text()
    public = [name for name in dir(ds2rt._ds2rt) if not name.startswith("_")]
    missing = [name for name in public if not re.search(rf"^((class|def) {name}\b|{name}: )", stub, re.M)]
    assert not missing, f"not in _ds2rt.pyi: {missing}"
    assert "def add_convolution(self, name: str, input: Tensor, *, weight: numpy.typing.ArrayLike" in stub


def test_python_scalars_keep_their_rank():
    store = ds2rt.WeightStore({"s": 2.5, "zero_d": np.array(4, np.int32)})
    assert store["s"].shape == () and store["s"] == 2.5 and store["zero_d"].shape == ()
