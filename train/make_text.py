#!/usr/bin/env python3
"""English sentences for the synthetic corpus, from freely licensed text in Debian packages.

Sources (both installed on the build machine):
  * fortunes (package fortune-mod / fortunes-min / fortunes: /usr/share/games/fortunes/*; the
    offensive 'off/' set is skipped),
  * package descriptions from `apt-cache dumpavail` (the Description fields of Debian's archive).
Each sentence is normalised to deepspeech.pytorch's English labels  _'ABCDEFGHIJKLMNOPQRSTUVWXYZ(space):
upper case, numbers spelled out, & % + @ spelled, everything else outside the label set removed;
split to 3..25 words; deduplicated; split train/test BY TEXT (a hash of the normalised text puts a
sentence in test; after dedup no test text occurs in train).

Writes to --out (default .work/text):
  train.txt  test.txt   one sentence a line
  lm.txt                LM training text (= train sentences only)
  words.txt             word list of the train sentences with counts ("WORD count"), most frequent first
"""
import argparse
import collections
import glob
import hashlib
import os
import re
import subprocess
import sys

ONES = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN FOURTEEN FIFTEEN " \
       "SIXTEEN SEVENTEEN EIGHTEEN NINETEEN".split()
TENS = "_ _ TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()
SCALES = [(10**12, "TRILLION"), (10**9, "BILLION"), (10**6, "MILLION"), (1000, "THOUSAND")]
ORD = {"ONE": "FIRST", "TWO": "SECOND", "THREE": "THIRD", "FIVE": "FIFTH", "EIGHT": "EIGHTH", "NINE": "NINTH",
       "TWELVE": "TWELFTH"}


def number_words(n):
    """Cardinal English words for a non-negative integer (British 'AND' omitted)."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " HUNDRED" + ("" if rest == 0 else " " + number_words(rest))
    for value, name in SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return number_words(head) + " " + name + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError


def ordinal_words(n):
    words = number_words(n).split()
    last = words[-1]
    if last in ORD:
        words[-1] = ORD[last]
    elif last.endswith("Y"):
        words[-1] = last[:-1] + "IETH"
    else:
        words[-1] = last + "TH"
    return " ".join(words)


def year_words(n):
    """1984 -> NINETEEN EIGHTY FOUR, 2005 -> TWO THOUSAND FIVE, 1900 -> NINETEEN HUNDRED."""
    if 1100 <= n <= 1999 or 2100 <= n <= 2099:
        hi, lo = divmod(n, 100)
        if lo == 0:
            return number_words(hi) + " HUNDRED"
        return number_words(hi) + (" OH " if lo < 10 else " ") + number_words(lo)
    return number_words(n)


def spell_number(match):
    text = match.group(0)
    digits = text.replace(",", "")
    m = re.fullmatch(r"(\d+)(st|nd|rd|th)", digits, re.I)
    if m:
        return " " + ordinal_words(int(m.group(1))) + " "
    if "." in digits:
        whole, frac = digits.split(".", 1)
        return " " + number_words(int(whole)) + " POINT " + " ".join(ONES[int(d)] for d in frac) + " "
    if len(digits) > 15:
        return " " + " ".join(ONES[int(d)] for d in digits) + " "
    n = int(digits)
    if len(digits) == 4 and "," not in text and 1100 <= n <= 2099:
        return " " + year_words(n) + " "
    return " " + number_words(n) + " "


SYMBOLS = {"&": " AND ", "%": " PERCENT ", "+": " PLUS ", "@": " AT ", "=": " EQUALS ", "$": " DOLLARS "}
ALLOWED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ")


def normalise(text):
    """One piece of raw text -> label-set text (may be empty)."""
    text = text.replace("\u2019", "'").replace("`", "'")
    text = re.sub(r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:st|nd|rd|th)?\b|\d+", spell_number, text)
    for sym, words in SYMBOLS.items():
        text = text.replace(sym, words)
    text = text.upper()
    text = re.sub(r"[-_/]", " ", text)
    text = "".join(c if c in ALLOWED else ("" if c.isalpha() or c == "\u00b4" else " ") for c in text)
    words = []
    for w in text.split():
        w = w.strip("'")
        if w:
            words.append(w)
    return " ".join(words)


def fortune_texts(root):
    for path in sorted(glob.glob(os.path.join(root, "*"))):
        if os.path.isdir(path) or "." in os.path.basename(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            raw = f.read()
        for entry in raw.split("\n%\n"):
            lines = [ln for ln in entry.splitlines() if not re.match(r"^\s*(--|\u2014)", ln)]  # drop attributions
            yield " ".join(lines)


def description_texts():
    try:
        out = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print("apt-cache dumpavail failed:", e, file=sys.stderr)
        return
    desc = []
    for line in out.splitlines():
        if line.startswith("Description:"):
            if desc:
                yield " ".join(desc)
            desc = [line[len("Description:"):].strip() + "."]
        elif desc and line.startswith(" "):
            s = line.strip()
            if s == ".":
                yield " ".join(desc)
                desc = [""]
            elif not s.startswith(("*", "-", "+")) or len(s) > 2:
                desc.append(s.lstrip("*-+ "))
        elif desc:
            yield " ".join(desc)
            desc = []
    if desc:
        yield " ".join(desc)


def sentences(text, min_words, max_words):
    """Splits raw text at sentence ends, normalises, and cuts long sentences into <= max_words pieces."""
    text = re.sub(r"\s+", " ", text)
    for piece in re.split(r"(?<=[.!?;:])\s+|\s+[-\u2014]{2,}\s+|[()\[\]{}<>\"|]", text):
        # URLs, e-mail addresses, file names and code read badly: skip pieces holding them.
        if re.search(r"://|www\.|\w@\w|\.\w+/|\w\.\w+\.\w|\\|::|#", piece):
            continue
        words = normalise(piece).split()
        if any(len(w) > 18 for w in words):
            continue
        while len(words) > max_words:
            cut = max_words if len(words) - max_words >= min_words else len(words) - min_words
            yield words[:cut]
            words = words[cut:]
        if len(words) >= min_words:
            yield words


def is_test(sentence, percent):
    h = int.from_bytes(hashlib.sha1(sentence.encode()).digest()[:4], "little")
    return h % 10000 < percent * 100


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=".work/text")
    ap.add_argument("--fortunes", default="/usr/share/games/fortunes")
    ap.add_argument("--no-descriptions", action="store_true")
    ap.add_argument("--min-words", type=int, default=3)
    ap.add_argument("--max-words", type=int, default=25)
    ap.add_argument("--test-percent", type=float, default=2.0, help="share of sentences (by text hash) held out")
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()
    if args.selftest:
        for n, want in [(0, "ZERO"), (13, "THIRTEEN"), (40, "FORTY"), (105, "ONE HUNDRED FIVE"),
                        (2001, "TWO THOUSAND ONE"), (1234567, "ONE MILLION TWO HUNDRED THIRTY FOUR THOUSAND "
                                                             "FIVE HUNDRED SIXTY SEVEN")]:
            assert number_words(n) == want, (n, number_words(n))
        assert normalise("In 1984, 3.5% of the 21st users & I didn't pay $10!") == \
            "IN NINETEEN EIGHTY FOUR THREE POINT FIVE PERCENT OF THE TWENTY FIRST USERS AND I DIDN'T PAY " \
            "DOLLARS TEN", normalise("In 1984, 3.5% of the 21st users & I didn't pay $10!")
        print("selftest ok")
        return

    seen = set()
    train, test = [], []
    counts = collections.Counter()
    sources = [("fortunes", fortune_texts(args.fortunes))]
    if not args.no_descriptions:
        sources.append(("descriptions", description_texts()))
    for name, texts in sources:
        before = len(seen)
        for text in texts:
            for words in sentences(text, args.min_words, args.max_words):
                s = " ".join(words)
                if s in seen:
                    continue
                seen.add(s)
                (test if is_test(s, args.test_percent) else train).append(s)
        counts[name] = len(seen) - before
    os.makedirs(args.out, exist_ok=True)
    test_set = set(test)
    assert not test_set.intersection(train)
    words = collections.Counter(w for s in train for w in s.split())
    for fname, lines in [("train.txt", train), ("test.txt", test), ("lm.txt", train)]:
        with open(os.path.join(args.out, fname), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "words.txt"), "w") as f:
        f.writelines(f"{w} {c}\n" for w, c in words.most_common())
    print(f"sentences: {dict(counts)}; train {len(train)}, test {len(test)}; "
          f"train words {sum(words.values())}, vocabulary {len(words)} -> {args.out}")


if __name__ == "__main__":
    main()
