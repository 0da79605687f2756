"""Reruns the references behind ds2rt's committed CTC fixtures (pyctcdecode, kenlm, jiwer) and
checks they still give what tests/data holds; the C++ suite checks ds2rt against the same files.

Run:  python3 -m pytest tests/python/test_ctc_crosscheck.py
Needs numpy<2, pyctcdecode 0.5.0, kenlm 0.3.0 and jiwer 4.0.0 from PyPI; each test is skipped,
saying which module is missing, where they are not installed.
"""
import importlib.util
import json
import os
import tempfile

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DATA = os.path.join(ROOT, "tests", "data")


def reference(name):
    return pytest.importorskip(name, reason=f"the reference module '{name}' is not installed (pip install {name})")


@pytest.fixture(scope="module")
def fixtures():
    reference("numpy")
    spec = importlib.util.spec_from_file_location("make_ctc_fixtures",
                                                  os.path.join(ROOT, "tests", "fixtures_src", "make_ctc_fixtures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed(relative):
    with open(os.path.join(DATA, relative)) as f:
        return json.load(f)


def assert_same_beams(fresh, stored):
    assert [c["name"] for c in fresh["cases"]] == [c["name"] for c in stored["cases"]]
    assert fresh["posteriors"] == stored["posteriors"]
    for new, old in zip(fresh["cases"], stored["cases"]):
        assert [b["text"] for b in new["expected"]] == [b["text"] for b in old["expected"]], new["name"]
        for a, b in zip(new["expected"], old["expected"]):
            assert a["score"] == pytest.approx(b["score"], abs=1e-9), new["name"]
            assert a["logit_score"] == pytest.approx(b["logit_score"], abs=1e-9), new["name"]
            assert a["word_frames"] == b["word_frames"], new["name"]


def test_arpa_files_are_reproduced(fixtures):
    with tempfile.TemporaryDirectory() as tmp:
        for name, corpus, order, unk in (("tiny.arpa", fixtures.TINY_CORPUS, 3, True),
                                         ("bigram.arpa", fixtures.BIGRAM_CORPUS, 2, False)):
            path = os.path.join(tmp, name)
            fixtures.write_arpa(fixtures.build_backoff_lm(corpus.splitlines(), order, with_unk=unk), path)
            with open(path) as fresh, open(os.path.join(DATA, "lm", name)) as stored:
                assert fresh.read() == stored.read()


def test_kenlm_scores(fixtures):
    kenlm = reference("kenlm")
    paths = {name: os.path.join(DATA, "lm", name) for name in ("tiny.arpa", "bigram.arpa")}
    fresh = fixtures.kenlm_scores(kenlm, paths)
    stored = committed("lm/kenlm_scores.json")
    assert [(e["sentence"], e["log10"]) for e in fresh] == [(e["sentence"], e["log10"]) for e in stored]


def test_pyctcdecode_without_lm(fixtures):
    pyctcdecode = reference("pyctcdecode")
    assert_same_beams(fixtures.beam_cases_without_lm(pyctcdecode).json(), committed("ctc/beam_nolm.json"))


def test_pyctcdecode_with_kenlm(fixtures):
    pyctcdecode = reference("pyctcdecode")
    reference("kenlm")
    fresh = fixtures.beam_cases_with_lm(pyctcdecode, os.path.join(DATA, "lm", "tiny.arpa")).json(lm="tiny.arpa")
    assert_same_beams(fresh, committed("ctc/beam_lm.json"))


def test_jiwer(fixtures):
    jiwer = reference("jiwer")
    assert fixtures.wer_cases(jiwer) == committed("ctc/wer_jiwer.json")
