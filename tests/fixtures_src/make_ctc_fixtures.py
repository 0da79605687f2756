#!/usr/bin/env python3
"""Reference fixtures for ds2rt's CTC decoder, language model and error rates.

What it makes (all small, all committed):
  tests/data/lm/tiny.arpa         trigram backoff LM (absolute discounting) of a toy corpus, with <unk>
  tests/data/lm/bigram.arpa       bigram LM of another toy corpus, without <unk>
  tests/data/lm/kenlm_scores.json log10 sentence scores from the `kenlm` module on both files
  tests/data/ctc/beam_nolm.json   random peaked posteriors + pyctcdecode's beams, no LM
  tests/data/ctc/beam_lm.json     posteriors spelling noisy sentences + pyctcdecode's beams with tiny.arpa
  tests/data/ctc/wer_jiwer.json   sample strings + jiwer's WER / CER and edit counts

Posteriors are stored as integers per frame that sum to exactly 10000 (probability = k / 10000),
so the same numbers reach both decoders: pyctcdecode gets them as float64 probabilities (its
row-sum check sees 1 and it takes logs of the clipped values, as ds2rt does); ds2rt reads them
as float32 (a relative difference below 1e-7, hence the score tolerance of the tests).

Needs: numpy<2, pyctcdecode 0.5.0, kenlm 0.3.0, jiwer 4.0.0 (PyPI). Committed files were made
with Python 3.11.7, numpy 1.26.4, pyctcdecode 0.5.0, kenlm 0.3.0, jiwer 4.0.0.

Usage:  python3 tests/fixtures_src/make_ctc_fixtures.py [--data tests/data]
"""
import argparse
import collections
import json
import math
import os

import numpy as np

LABELS = ["_", "'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)] + [" "]
BLANK, SPACE = 0, len(LABELS) - 1

TINY_CORPUS = """THE CAT SAT ON THE MAT
THE CAT SAT ON THE HAT
THE DOG SAT ON THE LOG
A CAT ATE THE RAT
THE RAT SAT ON A MAT
THE DOG ATE THE CAT'S HAT
A DOG AND A CAT
THE CAT AND THE DOG SAT
HELLO WORLD
SPEECH RECOGNITION IS HARD
IT IS HARD TO RECOGNIZE SPEECH
IT IS EASY TO WRECK A NICE BEACH"""

BIGRAM_CORPUS = """GOOD MORNING
GOOD NIGHT
GOOD MORNING WORLD
NIGHT AND DAY"""


# ---------------------------------------------------------------------------- language models


def build_backoff_lm(sentences, order, discount=0.5, with_unk=True):
    """Absolute-discounting backoff LM: {n: {ngram: (log10 p, log10 backoff)}}, normalised."""
    counts = [collections.Counter() for _ in range(order + 1)]
    for s in sentences:
        words = ["<s>"] + s.split() + ["</s>"]
        for n in range(1, order + 1):
            for i in range(len(words) - n + 1):
                counts[n][tuple(words[i:i + n])] += 1
    vocab = sorted(w for (w,) in counts[1] if w != "<s>") + (["<unk>"] if with_unk else [])
    total = sum(counts[1][(w,)] for w in vocab) + len(vocab)
    prob = {1: {(w,): (counts[1][(w,)] + 1) / total for w in vocab}}
    for n in range(2, order + 1):
        context_total = collections.Counter()
        for gram, c in counts[n].items():
            context_total[gram[:-1]] += c
        prob[n] = {gram: (c - discount) / context_total[gram[:-1]] for gram, c in counts[n].items()}

    backoff = {}

    def model(gram):  # P(gram[-1] | gram[:-1]) as the finished model computes it
        if len(gram) == 1:
            return prob[1][gram]
        if gram in prob[len(gram)]:
            return prob[len(gram)][gram]
        return backoff.get(gram[:-1], 1.0) * model(gram[1:])

    for n in range(2, order + 1):
        follows = collections.defaultdict(list)
        for gram in prob[n]:
            follows[gram[:-1]].append(gram)
        for ctx, grams in follows.items():
            backoff[ctx] = (1 - sum(prob[n][g] for g in grams)) / (1 - sum(model(g[1:]) for g in grams))
    table = {n: {g: (math.log10(p), math.log10(backoff.get(g, 1.0))) for g, p in prob[n].items()}
             for n in prob}
    table[1][("<s>",)] = (-99.0, math.log10(backoff[("<s>",)]))
    return table


def write_arpa(table, path):
    order = max(table)
    lines = ["\\data\\"] + [f"ngram {n}={len(table[n])}" for n in range(1, order + 1)] + [""]
    for n in range(1, order + 1):
        lines.append(f"\\{n}-grams:")
        for gram in sorted(table[n]):
            p, bo = table[n][gram]
            # Backoffs on every lower-order line: pyctcdecode reads only 3-field unigram lines as vocabulary.
            tail = f"\t{bo:.6f}" if n < order else ""
            lines.append(f"{p:.6f}\t{' '.join(gram)}{tail}")
        lines.append("")
    lines.append("\\end\\")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def kenlm_scores(kenlm, paths):
    sentences = ["THE CAT SAT ON THE MAT", "THE CAT SAT ON THE LOG", "A DOG ATE THE HAT",
                 "THE ZEBRA SAT", "ZEBRA", "", "SPEECH IS HARD TO WRECK", "THE THE THE",
                 "GOOD MORNING WORLD", "NIGHT AND DAY", "GOOD GOOD NIGHT", "MORNING ZEBRA DAY"]
    out = []
    for name, path in paths.items():
        model = kenlm.Model(path)
        for s in sentences:
            for bos, eos in ((True, True), (False, False), (True, False)):
                out.append({"lm": name, "sentence": s, "bos": bos, "eos": eos,
                            "log10": float(model.score(s, bos=bos, eos=eos))})
    return out


# ---------------------------------------------------------------------------- posteriors


def quantize(probs):
    """Rows of integers summing to exactly 10000."""
    q = np.floor(probs * 10000).astype(np.int64)
    q[np.arange(len(q)), probs.argmax(axis=1)] += 10000 - q.sum(axis=1)
    return q


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def random_peaked(rng, frames):
    """Noise plus a peak on a random label per frame; often a rival peak too."""
    logits = rng.normal(0.0, 1.0, size=(frames, len(LABELS)))
    for t in range(frames):
        r = rng.random()
        label = BLANK if r < 0.4 else SPACE if r < 0.55 else int(rng.integers(1, SPACE))
        logits[t, label] += rng.uniform(1.5, 6.0)
        if rng.random() < 0.5:
            logits[t, int(rng.integers(0, len(LABELS)))] += rng.uniform(1.0, 5.0)
    return quantize(softmax(logits))


CONFUSIONS = {"C": "KS", "K": "C", "A": "E", "E": "AI", "O": "U", "T": "D", "D": "T", "S": "Z",
              "M": "N", "N": "M", "H": "", "I": "EY"}


def spelled(rng, sentence):
    """Frames that spell `sentence` with some blur: each label 1-3 frames, blanks between,
    and a rival label (an acoustically confusable one) now and then."""
    path = []
    for ch in sentence:
        label = LABELS.index(ch)
        path += [label] * int(rng.integers(1, 3))
        path += [BLANK] * int(rng.integers(0 if (not path or path[-1] != label) else 1, 3))
    logits = rng.normal(0.0, 0.7, size=(len(path), len(LABELS)))
    for t, label in enumerate(path):
        logits[t, label] += rng.uniform(2.5, 5.0)
        rivals = CONFUSIONS.get(LABELS[label], "")
        if rivals and rng.random() < 0.6:
            rival = LABELS.index(rivals[int(rng.integers(0, len(rivals)))])
            logits[t, rival] += logits[t, label] - rng.uniform(-0.8, 1.2)
    return quantize(softmax(logits))


# ---------------------------------------------------------------------------- pyctcdecode


def run_pyctcdecode(decoder, q, settings):
    probs = q.astype(np.float64) / 10000.0
    hotwords = [w for w, _ in settings.get("hotwords", [])]
    weight = settings["hotwords"][0][1] if hotwords else 10.0
    beams = decoder.decode_beams(probs, beam_width=settings["beam_width"],
                                 beam_prune_logp=settings["beam_prune_logp"],
                                 token_min_logp=settings["token_min_logp"],
                                 hotwords=hotwords or None, hotword_weight=weight)
    return [{"text": text, "logit_score": float(logit), "score": float(combined),
             "word_frames": [[w, int(s), int(e)] for w, (s, e) in frames]}
            for text, _, frames, logit, combined in beams]


MAX_EXPECTED_BEAMS = 10  # the N-best lists checked: the best ten of pyctcdecode's output


class Fixture:
    """Cases sharing posterior matrices: each matrix is stored once."""

    def __init__(self):
        self.posteriors, self.cases = [], []

    def add_posteriors(self, q):
        self.posteriors.append(q.tolist())
        return len(self.posteriors) - 1

    def add_case(self, name, index, settings, decoder):
        q = np.array(self.posteriors[index])
        expected = run_pyctcdecode(decoder, q, settings)[:MAX_EXPECTED_BEAMS]
        self.cases.append({"name": name, "posteriors": index, **settings, "expected": expected})

    def json(self, **extra):
        return {"labels": LABELS, **extra, "posteriors": self.posteriors, "cases": self.cases}


def beam_cases_without_lm(pyctcdecode):
    decoder = pyctcdecode.build_ctcdecoder(LABELS)
    fixture = Fixture()
    for seed in range(6):
        rng = np.random.default_rng(1000 + seed)
        index = fixture.add_posteriors(random_peaked(rng, int(rng.integers(15, 40))))
        for width in (1, 4, 16, 64):
            settings = {"beam_width": width, "beam_prune_logp": -10.0, "token_min_logp": -5.0}
            fixture.add_case(f"random{seed}_w{width}", index, settings, decoder)
    rng = np.random.default_rng(2000)
    for i, (prune, floor) in enumerate(((-4.0, -3.0), (-20.0, -8.0), (-2.0, -12.0))):
        index = fixture.add_posteriors(random_peaked(rng, 30))
        settings = {"beam_width": 32, "beam_prune_logp": prune, "token_min_logp": floor}
        fixture.add_case(f"pruning{i}", index, settings, decoder)
    for i, words in enumerate((["CAT", "HAT"], ["BEACH"])):
        text = "KAT SAT ON DE HET" if i == 0 else "WRECK A NISE BEECH"
        index = fixture.add_posteriors(spelled(rng, text))
        settings = {"beam_width": 16, "beam_prune_logp": -10.0, "token_min_logp": -5.0,
                    "hotwords": [[w, 6.0] for w in words]}
        fixture.add_case(f"hotwords{i}", index, settings, decoder)
    return fixture


def beam_cases_with_lm(pyctcdecode, arpa):
    sentences = ["THE CAT SAT ON THE MAT", "A DOG ATE THE RAT", "IT IS HARD TO RECOGNIZE SPEECH",
                 "THE DOG SAT ON THE HAT", "WRECK A NICE BEACH", "THE ZEBRA SAT ON A MAT"]
    settings_list = [(0.5, 1.5, True), (1.0, 0.5, True), (2.0, -1.0, True), (0.8, 2.0, False)]
    fixture = Fixture()
    rng = np.random.default_rng(3000)
    for i, sentence in enumerate(sentences):
        index = fixture.add_posteriors(spelled(rng, sentence))
        for j, (alpha, beta, boundary) in enumerate(settings_list):
            if (i + j) % 2:
                continue
            decoder = pyctcdecode.build_ctcdecoder(LABELS, kenlm_model_path=arpa, alpha=alpha, beta=beta,
                                                   lm_score_boundary=boundary)
            width = (8, 32)[(i + j) % 4 // 2]
            settings = {"beam_width": width, "beam_prune_logp": -10.0, "token_min_logp": -5.0,
                        "alpha": alpha, "beta": beta, "lm_score_boundary": boundary}
            fixture.add_case(f"lm_sentence{i}_a{alpha}_b{beta}", index, settings, decoder)
    decoder = pyctcdecode.build_ctcdecoder(LABELS, kenlm_model_path=arpa)
    index = fixture.add_posteriors(spelled(rng, "THE ZEBRA ATE A KAT"))
    settings = {"beam_width": 16, "beam_prune_logp": -10.0, "token_min_logp": -5.0, "alpha": 0.5, "beta": 1.5,
                "lm_score_boundary": True, "hotwords": [["ZEBRA", 8.0], ["KAT", 8.0]]}
    fixture.add_case("lm_hotwords", index, settings, decoder)
    return fixture


# ---------------------------------------------------------------------------- error rates


WER_PAIRS = [
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("the cat sat on the mat", "the cat sit on mat"),
    ("the cat sat on the mat", "a cat sat on on the mat today"),
    ("hello world", ""),
    ("", "hello"),
    ("  leading and   inner   spaces ", "leading and inner spaces"),
    ("speech recognition is hard", "wreck a nice beach"),
    ("a b c d e f", "f e d c b a"),
    ("héllo wörld", "hello world"),
    ("it's the cat's hat", "its the cats hat"),
    ("one two three four five", "one three five seven"),
    ("xyz", "xyzzy"),
]


def wer_cases(jiwer):
    out = []
    for ref, hyp in WER_PAIRS:
        w = jiwer.process_words(ref, hyp)
        c = jiwer.process_characters(ref, hyp)
        out.append({"reference": ref, "hypothesis": hyp, "wer": float(w.wer), "cer": float(c.cer),
                    "word_errors": w.substitutions + w.deletions + w.insertions,
                    "word_reference_length": w.hits + w.substitutions + w.deletions,
                    "char_errors": c.substitutions + c.deletions + c.insertions,
                    "char_reference_length": c.hits + c.substitutions + c.deletions})
    corpus = jiwer.process_words([r for r, _ in WER_PAIRS if r], [h for r, h in WER_PAIRS if r])
    return {"pairs": out, "corpus_wer_nonempty_references": float(corpus.wer)}


def dump(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data"))
    args = parser.parse_args()
    import jiwer
    import kenlm
    import pyctcdecode

    lm_dir, ctc_dir = os.path.join(args.data, "lm"), os.path.join(args.data, "ctc")
    os.makedirs(lm_dir, exist_ok=True)
    os.makedirs(ctc_dir, exist_ok=True)
    tiny, bigram = os.path.join(lm_dir, "tiny.arpa"), os.path.join(lm_dir, "bigram.arpa")
    write_arpa(build_backoff_lm(TINY_CORPUS.splitlines(), 3), tiny)
    write_arpa(build_backoff_lm(BIGRAM_CORPUS.splitlines(), 2, with_unk=False), bigram)
    dump(kenlm_scores(kenlm, {"tiny.arpa": tiny, "bigram.arpa": bigram}), os.path.join(lm_dir, "kenlm_scores.json"))
    dump(beam_cases_without_lm(pyctcdecode).json(), os.path.join(ctc_dir, "beam_nolm.json"))
    dump(beam_cases_with_lm(pyctcdecode, tiny).json(lm="tiny.arpa"), os.path.join(ctc_dir, "beam_lm.json"))
    dump(wer_cases(jiwer), os.path.join(ctc_dir, "wer_jiwer.json"))


if __name__ == "__main__":
    main()
