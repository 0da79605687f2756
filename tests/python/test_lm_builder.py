"""The LM builder (`ds2rt lm build`, ds2rt.build_lm): the ARPA it writes loads in KenLM's Python
module, which scores sentences as ds2rt's LanguageModel does, and under KenLM every context's
probabilities over the vocabulary sum to one. Also the bundled-model lookup of ds2rt.transcribe."""
import math
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

ds2rt = pytest.importorskip("ds2rt", reason="the ds2rt package is not installed (pip install . from the repo root)")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
MODEL = DATA / "parity" / "lstm_bi_l2_h32" / "model.safetensors"  # random weights, 16 kHz
WAV = DATA / "audio" / "hello_16k.wav"
CLI = Path(os.environ.get("DS2RT_CLI", ROOT / os.environ.get("BUILD_DIR", "build") / "tools" / "ds2rt"))
WORDS = "THE A CAT DOG SAT ON MAT LOG AND IS IT HELLO WORLD OPEN DOOR DON'T RAT HAT BIG SMALL".split()


def kenlm():
    return pytest.importorskip("kenlm", reason="the kenlm module is not installed (pip install kenlm)")


def corpus(sentences, seed):
    """Zipf-like word frequencies, so that the higher orders have repeated n-grams."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    return "".join(" ".join(rng.choices(WORDS, weights, k=rng.randint(1, 10))) + "\n" for _ in range(sentences))


def unigrams(arpa):
    lines = Path(arpa).read_text().split("\\1-grams:\n")[1].split("\n\n")[0].splitlines()
    return [line.split("\t")[1] for line in lines]


def ngrams(arpa, n):
    section = Path(arpa).read_text().split(f"\\{n}-grams:\n")[1].split("\n\n")[0]
    return [line.split("\t")[1].split(" ") for line in section.splitlines() if line]


def held_out():
    sentences = corpus(40, seed=99).splitlines()
    return sentences + ["", "ZEBRA", "THE ZEBRA SAT ON THE MAT", "HELLO HELLO HELLO WORLD"]


def test_cli_lm_scores_equal_kenlm(tmp_path):
    if not CLI.exists():
        pytest.skip(f"no ds2rt program at {CLI} (build it, or set DS2RT_CLI)")
    model = kenlm()
    text = tmp_path / "train.txt"
    text.write_text(corpus(400, seed=1).lower())
    arpa = tmp_path / "lm.arpa"
    subprocess.run([str(CLI), "lm", "build", str(text), str(arpa), "--order", "3", "--prune", "0,0,1",
                    "--case", "upper"], check=True, capture_output=True)
    ours = ds2rt.LanguageModel.load_arpa(arpa)
    theirs = model.Model(str(arpa))
    assert theirs.order == ours.order == 3
    for sentence in held_out():
        for bos, eos in ((True, True), (True, False), (False, True)):
            assert ours.sentence_score(sentence, bos, eos) == pytest.approx(
                theirs.score(sentence, bos=bos, eos=eos), abs=1e-4), (sentence, bos, eos)


@pytest.mark.parametrize("order,prune,max_ngrams", [(2, None, 0), (3, [0, 1, 1], 0), (4, None, 0),
                                                    (4, [0, 0, 1], 0), (3, None, 150)])
def test_kenlm_distributions_sum_to_one(tmp_path, order, prune, max_ngrams):
    # (KenLM reads bigram models and up; ds2rt's unigram models are checked by the C++ suite.)
    lm = kenlm()
    text = tmp_path / "train.txt"
    text.write_text(corpus(300, seed=order))
    arpa = tmp_path / "lm.arpa"
    stats = ds2rt.build_lm(text, arpa, order=order, prune=prune, max_ngrams=max_ngrams)
    assert stats.sentences == 300 and len(stats.ngrams) == order
    if max_ngrams:
        assert sum(stats.ngrams) <= max_ngrams
    model = lm.Model(str(arpa))
    ours = ds2rt.LanguageModel.load_arpa(arpa)
    vocabulary = [w for w in unigrams(arpa) if w != "<s>"]

    def state_after(words):
        state = lm.State()
        if words and words[0] == "<s>":
            model.BeginSentenceWrite(state)
            words = words[1:]
        else:
            model.NullContextWrite(state)
        for w in words:
            out = lm.State()
            model.BaseScore(state, w, out)
            state = out
        return state

    contexts = [[]] + [g for n in range(1, order) for g in ngrams(arpa, n) if g[-1] not in ("</s>", "<unk>")]
    for context in contexts:
        state = state_after(context)
        total = 0.0
        for w in vocabulary:
            total += 10 ** model.BaseScore(state, w, lm.State())
        assert total == pytest.approx(1.0, abs=1e-4), context
    for sentence in held_out():
        assert ours.sentence_score(sentence) == pytest.approx(model.score(sentence), abs=1e-4), sentence


def test_build_lm_text_and_errors(tmp_path):
    text = corpus(50, seed=3)
    (tmp_path / "t.txt").write_text(text)
    ds2rt.build_lm(tmp_path / "t.txt", tmp_path / "lm.arpa", order=2)
    assert ds2rt.build_lm_text(text, order=2) == (tmp_path / "lm.arpa").read_text()
    lm = ds2rt.LanguageModel.parse_arpa(ds2rt.build_lm_text("hello world\nHELLO there", case="lower"))
    assert "hello" in lm and "HELLO" not in lm and lm.order == 3
    with pytest.raises(ds2rt.Error, match="cannot open text"):
        ds2rt.build_lm(tmp_path / "missing.txt", tmp_path / "x.arpa")
    with pytest.raises(ds2rt.Error, match="no words"):
        ds2rt.build_lm_text("\n  \n")
    with pytest.raises(ds2rt.Error, match="must not decrease"):
        ds2rt.build_lm_text(text, prune=[0, 2, 1])
    with pytest.raises(ds2rt.Error, match="case must be"):
        ds2rt.build_lm_text(text, case="title")
    with pytest.raises(ds2rt.Error, match="order must be 1 to 6"):
        ds2rt.build_lm_text(text, order=7)


def test_transcribe_uses_the_bundled_model(tmp_path, monkeypatch):
    expected = ds2rt.transcribe(WAV, model=MODEL).text
    with_lm = ds2rt.transcribe(WAV, model=MODEL, lm=DATA / "lm" / "tiny.arpa").text
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(MODEL, models / ds2rt.BUNDLED_MODEL_FILE)

    monkeypatch.setenv("DS2RT_MODEL", str(MODEL))  # a model file
    assert ds2rt.default_model_path() == MODEL
    assert ds2rt.transcribe(WAV).text == expected
    monkeypatch.setenv("DS2RT_MODEL", str(models))  # a directory holding the bundled file name
    assert ds2rt.transcribe(WAV).text == expected
    with pytest.raises(ds2rt.Error, match="no lm.arpa beside the model"):
        ds2rt.transcribe(WAV, lm="default")
    shutil.copy(DATA / "lm" / "tiny.arpa", models / ds2rt.BUNDLED_LM_FILE)
    assert ds2rt.find_bundled_model([]).lm == str(models / ds2rt.BUNDLED_LM_FILE)
    assert ds2rt.transcribe(WAV, lm="default").text == with_lm

    monkeypatch.setenv("DS2RT_MODEL", str(tmp_path / "nope"))
    with pytest.raises(ds2rt.Error, match="DS2RT_MODEL='.*nope' does not exist"):
        ds2rt.transcribe(WAV)
    monkeypatch.delenv("DS2RT_MODEL")
    assert ds2rt.find_bundled_model([str(tmp_path), str(models)]).model == str(models / ds2rt.BUNDLED_MODEL_FILE)
    with pytest.raises(ds2rt.Error, match=f"(?s)no bundled model found; looked for:.*{tmp_path / 'empty'}"):
        ds2rt.find_bundled_model([str(tmp_path / "empty")])


def test_readme_python_section_runs(monkeypatch, capsys):
    """The top-level README's Python examples, as written, from the repository root."""
    section = (ROOT / "README.md").read_text().split("\n## Python\n")[1].split("\n## ")[0]
    blocks = section.split("```python\n")[1:]
    assert blocks and any("build_lm" in b and "lm=" in b for b in blocks)
    monkeypatch.chdir(ROOT)
    for block in blocks:
        exec(compile(block.split("```")[0], "README.md Python section", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.strip()


def reference_kneser_ney(text, order, prune=(), fallback=(0.5, 1.0, 1.5)):
    """A direct transcription of interpolated modified Kneser-Ney (lm_builder.h's conventions):
    {n-gram tuple: (log10 P, log10 backoff)} for the kept n-grams, written independently of the C++."""
    from collections import Counter
    raw = [Counter() for _ in range(order)]
    for line in text.splitlines():
        words = ["<s>"] + line.split() + ["</s>"]
        if len(words) == 2:
            continue
        for n in range(1, order + 1):
            for i in range(len(words) - n + 1):
                raw[n - 1][tuple(words[i:i + n])] += 1
    adjusted = [Counter() for _ in range(order)]
    adjusted[order - 1].update(raw[order - 1])
    for n in range(1, order):
        for g, c in raw[n - 1].items():
            adjusted[n - 1][g] = c if g[0] == "<s>" else 0
        for g in raw[n]:
            adjusted[n - 1][g[1:]] += 1
    adjusted[0][("<s>",)] = 0
    adjusted[0][("<unk>",)] += 0
    threshold = [0] + [prune[min(n, len(prune) - 1)] if prune else 0 for n in range(1, order)]
    kept = [set(adjusted[0])] + [{g for g, c in raw[n].items() if c > threshold[n]} for n in range(1, order)]
    discounts = []
    for n in range(order):
        t = Counter(a for a in adjusted[n].values() if 0 < a < 5)
        d = None
        if t[1] and t[2] and t[3]:
            y = t[1] / (t[1] + 2 * t[2])
            d = [k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3)]
            if not all(0 < d[k - 1] <= k for k in (1, 2, 3)):
                d = None
        discounts.append(d or list(fallback))
    D = lambda n, a: 0 if a == 0 else discounts[n][min(a, 3) - 1]  # noqa: E731
    denominator, left = Counter(), Counter()  # per context tuple (() for the unigrams)
    for n in range(order):
        for g, a in adjusted[n].items():
            denominator[g[:-1]] += a
            left[g[:-1]] += D(n, a) if g in kept[n] else a
    vocabulary = len(adjusted[0]) - 1
    prob = {}
    for n in range(order):
        for g in kept[n]:
            lower = 1 / vocabulary if n == 0 else prob[g[1:]]
            ctx = g[:-1]
            prob[g] = 0 if g == ("<s>",) else (adjusted[n][g] - D(n, adjusted[n][g]) + left[ctx] * lower) / denominator[ctx]
    return {g: (-99 if p == 0 else math.log10(p), math.log10(left[g] / denominator[g]) if denominator[g] else 0)
            for g, p in prob.items()}


@pytest.mark.parametrize("order,prune", [(2, ()), (3, ()), (4, (0, 1, 1)), (5, (0, 0, 1, 2))])
def test_probabilities_equal_a_direct_transcription_of_the_formulas(order, prune):
    text = corpus(500, seed=order + 10)
    arpa = ds2rt.build_lm_text(text, order=order, prune=list(prune))
    expected = reference_kneser_ney(text, order, prune)
    written = {}
    section = 0
    for line in arpa.splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            section = int(line[1:line.index("-")])
        elif section and line and not line.startswith("\\"):
            fields = line.split("\t")
            written[tuple(fields[1].split(" "))] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else 0.0)
    assert written.keys() == expected.keys()
    for g, (p, b) in expected.items():
        assert written[g][0] == pytest.approx(p, abs=1e-6), g
        if len(g) < order:
            assert written[g][1] == pytest.approx(b, abs=1e-6), g
