"""train/accented.py: English phones become a foreign voice's phones with the English timing and F0,
and phone pairs the voice never recorded are mended (voicing, stand-ins, an inserted vowel or pause).
Pure functions; festival itself is not needed."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train"))
accented = pytest.importorskip("accented")


def names(phones):
    return [p[0] for p in phones]


def test_each_english_phone_becomes_the_languages_keeping_time_and_f0():
    segments = [("pau", 0.2, False, []), ("ay", 0.2, True, [(0.05, 100.0), (0.15, 120.0)]), ("th", 0.1, False, [])]
    out = accented.to_language(segments, "czech", 2.0)
    assert names(out) == ["#", "a", "j", "t"]
    assert [p[1] for p in out] == pytest.approx([0.2, 0.1, 0.1, 0.1])
    # each F0 target lands in the piece holding it, its offset from that piece's start, scaled
    assert out[1][2] == [(pytest.approx(0.05), 200.0)]
    assert out[2][2] == [(pytest.approx(0.05), 240.0)]
    assert sum(p[1] for p in out) == pytest.approx(sum(s[1] for s in segments))


def test_italian_marks_stressed_vowels_and_gives_a_dropped_h_to_its_neighbour():
    segments = [("pau", 0.1, False, []), ("hh", 0.05, False, []), ("aa", 0.2, True, []), ("ih", 0.1, False, [])]
    out = accented.to_language(segments, "italian", 1.0)
    assert names(out) == ["#", "a1", "i"]
    assert out[0][1] == pytest.approx(0.15)  # the h's time went to the pause before it


def test_unknown_phones_pass_through_unchanged():
    out = accented.to_language([("b", 0.05, False, [])], "finnish", 1.0)
    assert names(out) == ["b"]


def test_a_missing_pair_is_mended_by_voicing_then_stand_ins_then_a_vowel():
    czech = {(a, b) for a in ["#", "a", "k", "e", "u"] for b in ["#", "a", "k", "e", "i"]}
    czech |= {("g", "a"), ("a", "g"), ("e", "g"), ("v", "i"), ("e", "v")}
    seg = lambda *ps: [[p, 0.05, []] for p in ps]
    # Czech devoices a final stop: g before a pause becomes k
    assert names(accented.mend(seg("#", "a", "g", "#"), "czech", czech)) == ["#", "a", "k", "#"]
    # u before i was never recorded: u's stand-in v joins both neighbours
    assert names(accented.mend(seg("e", "u", "i"), "czech", czech)) == ["e", "v", "i"]
    # no stand-in fits: a short e between them
    assert names(accented.mend(seg("a", "k", "g", "a"), "czech", czech))[2:5] == ["e", "g", "a"]
    # nothing fits at all: left alone for festival's own fallback
    assert names(accented.mend(seg("z~", "z~"), "czech", czech)) == ["z~", "z~"]
    # a pair that exists is never touched
    assert names(accented.mend(seg("#", "k", "a", "#"), "czech", czech)) == ["#", "k", "a", "#"]


def test_every_voice_names_a_language_with_a_phone_map():
    for voice, (language, mean_f0, index) in accented.VOICES.items():
        assert language in accented.LANGUAGES, voice
        assert 50 < mean_f0 < 400
        assert index.startswith(language + "/")


def test_a_missing_voice_names_its_package(tmp_path):
    with pytest.raises(RuntimeError, match="czech_ph.*installed"):
        accented.diphones("czech_ph", str(tmp_path))


def test_voice_folders_include_what_a_language_shares_and_refuse_unknown_voices():
    assert accented.voice_folders(["suo_fi_lj_diphone", "czech_ph"]) == [
        "czech/czech_ph", "finnish/suo_fi_lj_diphone", "finnish/suopuhe.common"]
    with pytest.raises(SystemExit, match="unknown accented voice.*bogus"):
        accented.voice_folders(["czech_ph", "bogus"])
