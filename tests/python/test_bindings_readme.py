"""Runs the Python examples of python/README.md as written, in order, from the repository root (the
PyTorch one is skipped without torch)."""
import os
import re
from pathlib import Path

import pytest

ds2rt = pytest.importorskip("ds2rt", reason="the ds2rt package is not installed (pip install . from the repo root)")

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "python" / "README.md").read_text(), re.S)


def test_the_readme_has_its_examples():
    assert len(BLOCKS) >= 5
    text = "\n".join(BLOCKS)
    for needed in ("state_dict", "GateLayout.KERAS", "ds2rt.transcribe(", "lm="):
        assert needed in text


@pytest.fixture(scope="module")
def namespace():
    cwd = os.getcwd()
    os.chdir(ROOT)
    yield {"__name__": "readme"}
    os.chdir(cwd)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(namespace, index, capsys):
    code = BLOCKS[index]
    if re.search(r"^import torch", code, re.M):
        pytest.importorskip("torch", reason="the PyTorch example needs torch")
        checkpoint = ROOT / "tests" / "data" / "pytorch" / "lstm_bi_l2_h8.pth"
        if not checkpoint.exists():
            pytest.skip(f"{checkpoint.relative_to(ROOT)} is not in this checkout")
    exec(compile(code, f"python/README.md example {index + 1}", "exec"), namespace)
