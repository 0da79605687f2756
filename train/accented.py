"""English spoken by recorded speakers of other languages: festival's Czech, Italian, Finnish and Hindi diphone voices.

Debian has recorded English voices of only five people, too few for a model to learn what a new speaker
sounds like. Its festival voices of other languages are nine more recorded people (women, men, a child;
the Hindi, Marathi and Telugu voices share one speaker and one diphone set). They cannot read English,
so an English voice's front end (kal_diphone: words -> phones, durations, F0) plans the utterance, each
English phone becomes the nearest phone of the voice's language (as a speaker of that language would say
it: TH -> t, W -> v or u, T and D retroflex in Hindi, ...), and the voice speaks that phone string with the
English timing and intonation, its F0 moved to the voice's own range: accented English in a real person's
voice. Where the voice has no recording of a phone pair (its language never joins them, e.g. Czech has no
voiced stop before a pause), the pair is mended the way such a speaker would: voicing assimilated, a phone
swapped for its nearest relative, a short vowel inserted, else a short pause.
"""
import glob
import os
import re
import subprocess

FRONT_END = "kal_diphone"
FRONT_END_F0 = 105.0  # kal_diphone's mean F0 (Hz)

# English (festival's radio phone set) -> the voice's phones; a list splits the English phone's duration.
CZECH = {"aa": ["a:"], "ae": ["e"], "ah": ["a"], "ao": ["o:"], "aw": ["a", "u"], "ax": ["e"], "ay": ["a", "j"],
         "eh": ["e"], "er": ["e", "r"], "ey": ["e", "j"], "ih": ["i"], "iy": ["i:"], "ow": ["o", "u"],
         "oy": ["o", "j"], "uh": ["u"], "uw": ["u:"], "ch": ["c~"], "jh": ["dz~"], "sh": ["s~"], "zh": ["z~"],
         "th": ["t"], "dh": ["d"], "ng": ["n*"], "hh": ["h"], "w": ["u"], "y": ["j"], "el": ["e", "l"],
         "em": ["e", "m"], "en": ["e", "n"]}
ITALIAN = {"aa": ["a"], "ae": ["E"], "ah": ["a"], "ao": ["O"], "aw": ["a", "w"], "ax": ["e"], "ay": ["a", "j"],
           "eh": ["E"], "er": ["e", "r"], "ey": ["e", "j"], "ih": ["i"], "iy": ["i"], "ow": ["o", "w"],
           "oy": ["O", "j"], "uh": ["u"], "uw": ["u"], "ch": ["tS"], "jh": ["dZ"], "sh": ["S"], "zh": ["Z"],
           "th": ["t"], "dh": ["d"], "ng": ["ng"], "hh": [], "w": ["w"], "y": ["j"], "el": ["e", "l"],
           "em": ["e", "m"], "en": ["e", "n"]}
FINNISH = {"aa": ["a:"], "ae": ["@"], "ah": ["a"], "ao": ["o:"], "aw": ["a", "u"], "ax": ["e"], "ay": ["a", "i"],
           "eh": ["e"], "er": ["e", "r"], "ey": ["e", "i"], "ih": ["i"], "iy": ["i:"], "ow": ["o", "u"],
           "oy": ["o", "i"], "uh": ["u"], "uw": ["u:"], "ch": ["t", "S"], "jh": ["d", "S"], "sh": ["S"],
           "zh": ["S"], "th": ["T"], "dh": ["d"], "ng": ["N"], "hh": ["h"], "w": ["w"], "y": ["j"], "z": ["s"],
           "el": ["e", "l"], "em": ["e", "m"], "en": ["e", "n"]}
HINDI = {"aa": ["aa"], "ae": ["eh"], "ah": ["a"], "ao": ["aw"], "aw": ["a", "uh"], "ax": ["a"], "ay": ["a", "y"],
         "eh": ["eh"], "er": ["a", "r"], "ey": ["ee"], "ih": ["ih"], "iy": ["iy"], "ow": ["oo"], "oy": ["aw", "y"],
         "uh": ["uh"], "uw": ["uw"], "t": ["T"], "d": ["D"], "jh": ["j"], "z": ["zh"], "ng": ["n"], "hh": ["h"],
         "el": ["a", "l"], "em": ["a", "m"], "en": ["a", "n"]}

# Per language: pause phone, vowel inserted to break an impossible pair, voicing pairs, a phone's stand-ins
# (nearest first), and whether stressed vowels take a "1" (the Italian voices record stress).
LANGUAGES = {
    "czech": dict(map=CZECH, pause="#", schwa="e", stress_mark=False,
                  voicing={"b": "p", "d": "t", "g": "k", "z": "s", "v": "f", "z~": "s~", "dz~": "c~", "d~": "t~",
                           "dz": "c", "h": "ch"},
                  alternatives={"u": ["v"], "i:": ["i"], "u:": ["u"], "a:": ["a"], "o:": ["o"], "e:": ["e"],
                                "n*": ["n"], "j": ["i"]}),
    "italian": dict(map=ITALIAN, pause="#", schwa="e", stress_mark=True,
                    voicing={"b": "p", "d": "t", "g": "k", "z": "s", "v": "f", "Z": "S", "dZ": "tS", "dz": "ts"},
                    alternatives={"w": ["u"], "j": ["i"], "ng": ["n"], "E": ["e"], "O": ["o"]}),
    "finnish": dict(map=FINNISH, pause="#", schwa="e", stress_mark=False,
                    voicing={"b": "p", "d": "t", "g": "k", "v": "f"},
                    alternatives={"w": ["u", "v"], "T": ["t"], "@": ["e"], "a:": ["a"], "i:": ["i"], "u:": ["u"],
                                  "o:": ["o"], "N": ["n"], "S": ["s"]}),
    "hindi": dict(map=HINDI, pause="pau", schwa="a", stress_mark=False,
                  voicing={"b": "p", "D": "T", "g": "k", "zh": "sh", "v": "f", "j": "ch"},
                  alternatives={"T": ["td"], "D": ["dh"], "th": ["tth", "T"], "dh": ["ddh", "D"], "w": ["v", "uh"],
                                "ee": ["eh"], "oo": ["oh"], "aw": ["oh"], "zh": ["j"], "y": ["ih"]}),
}
# voice -> (language, its own mean F0 in Hz as its intonation model makes it, its diphone index file)
VOICES = {
    "czech_ph": ("czech", 136, "czech/czech_ph/group/ph.group"),
    "czech_machac": ("czech", 75, "czech/czech_machac/group/*.group"),
    "czech_dita": ("czech", 221, "czech/czech_dita/group/*.group"),
    "czech_krb": ("czech", 257, "czech/czech_krb/group/*.group"),
    "pc_diphone": ("italian", 111, "italian/pc_diphone/group/*.group"),
    "lp_diphone": ("italian", 205, "italian/lp_diphone/group/*.group"),
    "hy_fi_mv_diphone": ("finnish", 75, "finnish/hy_fi_mv_diphone/group/*.group"),
    "suo_fi_lj_diphone": ("finnish", 150, "finnish/suo_fi_lj_diphone/group/*.group"),
    "hindi_NSK_diphone": ("hindi", 120, "hindi/hindi_NSK_diphone/group/*.group"),
}
# Folders (under festival's voices/) a language's voices load besides their own.
SHARED_FOLDERS = {"finnish": ["finnish/suopuhe.common"]}


def voice_folders(names):
    """The folders under festival's voices/ that these voices need (for packing a relocated festival)."""
    unknown = sorted(set(names) - set(VOICES))
    if unknown:
        raise SystemExit(f"unknown accented voice(s) {','.join(unknown)}; known: {','.join(sorted(VOICES))}")
    folders = set()
    for name in names:
        language, _, index = VOICES[name]
        folders.add("/".join(index.split("/")[:2]))
        folders.update(SHARED_FOLDERS.get(language, []))
    return sorted(folders)


ITALIAN_VOWELS = {"i", "e", "E", "a", "o", "O", "u"}

_DIPHONES = {}  # voice -> set of (left, right) pairs it has recordings of


def festival_command(festival, lib):
    """festival reading a script on stdin; `lib`: its library folder (init.scm, voices/), empty for its own.
    (text2wave cannot take --libdir, which a relocated festival needs.)"""
    return [festival] + (["--libdir", lib, "--datadir", lib] if lib else []) + ["--pipe"]


def diphones(voice, lib):
    """The voice's recorded phone pairs, from the index at the head of its grouped diphone file."""
    if voice not in _DIPHONES:
        pattern = os.path.join(lib or "/usr/share/festival", "voices", VOICES[voice][2])
        files = glob.glob(pattern)
        if not files:
            raise RuntimeError(f"no diphone index for festival voice {voice} ({pattern}): is its package installed?")
        pairs = set()
        with open(files[0], "rb") as f:
            count = None
            for line in f:
                line = line.decode("latin-1").strip()
                if line.startswith("NumEntries"):
                    count = int(line.split()[1])
                elif line == "EST_Header_End":
                    break
            for _ in range(count or 0):
                name = f.readline().decode("latin-1").split()[0]
                left, _, right = name.partition("-")
                pairs.add((left, right))
        _DIPHONES[voice] = pairs
    return _DIPHONES[voice]


# The Text utterance type's modules up to the F0 targets (no waveform: only the plan is read), then one line
# per segment: name, duration, syllable stress, then (position in the segment, F0) pairs.
_PLAN = """(voice_{front})
(Parameter.set 'Duration_Stretch {stretch:.3f})
(set! u (Utterance Text "{text}"))
(mapcar (lambda (module) (module u))
  (list Initialize Text Token_POS Token POS Phrasify Word Pauses Intonation PostLex Duration Int_Targets))
(mapcar (lambda (s)
  (let ((start (item.feat s 'segment_start)) (tr (item.relation s 'Target)))
    (format t "SEG %s %f %s" (item.name s) (item.feat s 'segment_duration) (item.feat s 'R:SylStructure.parent.stress))
    (if tr (mapcar (lambda (tg) (format t " %f %f" (- (item.feat tg 'pos) start) (item.feat tg 'f0))) (item.daughters tr)))
    (format t "\\n")))
  (utt.relation.items u 'Segment))
"""


def plan(text, stretch, festival, lib):
    """The English front end's segments: [(phone, duration, stressed, [(offset, f0), ...])]."""
    p = subprocess.run(festival_command(festival, lib), capture_output=True,
                       input=_PLAN.format(front=FRONT_END, stretch=stretch, text=text).encode())
    segments = []
    for line in p.stdout.decode(errors="replace").splitlines():
        if not line.startswith("SEG "):
            continue
        fields = line.split()
        numbers = [float(x) for x in fields[4:]]
        segments.append((fields[1], float(fields[2]), fields[3] == "1", list(zip(numbers[::2], numbers[1::2]))))
    if p.returncode != 0 or not segments:
        raise RuntimeError(f"festival's English front end planned nothing for {text!r}: "
                           f"{p.stderr.decode(errors='replace')[-300:]}")
    return segments


def to_language(segments, language, f0_scale):
    """English segments -> [[phone, duration, [(offset, f0)]]] in the language's phones."""
    spec = LANGUAGES[language]
    out = []
    for name, duration, stressed, targets in segments:
        phones = [spec["pause"]] if name == "pau" else spec["map"].get(name, [name])
        if not phones:  # a sound the language lacks and drops (Italian h): its time goes to the previous phone
            if out:
                out[-1][1] += duration
            continue
        piece = duration / len(phones)
        for i, phone in enumerate(phones):
            if spec["stress_mark"] and stressed and phone in ITALIAN_VOWELS:
                phone += "1"
            lo, hi = i * piece, (i + 1) * piece if i + 1 < len(phones) else float("inf")
            mine = [(pos - lo, f0 * f0_scale) for pos, f0 in targets if lo <= pos < hi]
            out.append([phone, piece, mine])
    return out


def _unstressed(phone):
    return phone[:-1] if phone.endswith("1") and phone[:-1] in ITALIAN_VOWELS else phone


def _mend_pair(before, prev, nxt, spec, have):
    """Mends the unrecorded pair prev-nxt in place (`before`: the phone ahead of prev); returns a phone to
    insert between them, or None. The nearest stand-ins first: prev with its voicing matched to its
    neighbour, or another of prev's; then one of nxt's; then a short vowel, else a short pause."""
    voiced = {unvoiced: v for v, unvoiced in spec["voicing"].items()}
    lefts = [spec["voicing"].get(prev[0]), voiced.get(prev[0])] + spec["alternatives"].get(_unstressed(prev[0]), [])
    for left in lefts:
        if left and (before, left) in have and (left, nxt[0]) in have:
            prev[0] = left
            return None
    for right in spec["alternatives"].get(_unstressed(nxt[0]), []):
        if (prev[0], right) in have:
            nxt[0] = right
            return None
    for filler, length in ((spec["schwa"], 0.03), (spec["pause"], 0.02)):
        if (prev[0], filler) in have and (filler, nxt[0]) in have:
            return [filler, length, []]
    return None  # left to festival's own fallback (a default diphone)


def mend(phones, language, have):
    """Replaces or splits phone pairs the voice has no recording of; returns the mended list."""
    spec = LANGUAGES[language]
    out = [phones[0]]
    for nxt in phones[1:]:
        if (out[-1][0], nxt[0]) not in have:
            before = out[-2][0] if len(out) > 1 else spec["pause"]
            filler = _mend_pair(before, out[-1], nxt, spec, have)
            if filler:
                out.append(filler)
        out.append(nxt)
    return out


def _lisp(phones):
    parts = []
    for phone, duration, targets in phones:
        t = " ".join(f"({pos:.4f} {f0:.1f})" for pos, f0 in targets)
        parts.append(f"(\"{phone}\" {duration:.4f} {t})")
    return "(" + " ".join(parts) + ")"


def speak(voice, text, out_path, stretch, f0_factor, festival="festival", lib=""):
    """Writes a RIFF WAV of `voice` speaking English `text`; f0_factor moves its F0 around its own mean."""
    language, mean_f0, _ = VOICES[voice]
    segments = plan(text, stretch, festival, lib)
    phones = mend(to_language(segments, language, mean_f0 / FRONT_END_F0 * f0_factor), language,
                  diphones(voice, lib))
    script = (f"(voice_{voice})\n(set! u (utt.synth (eval (list 'Utterance 'Segments '{_lisp(phones)}))))\n"
              f"(utt.save.wave u \"{out_path}\" 'riff)\n")
    p = subprocess.run(festival_command(festival, lib), input=script.encode(), capture_output=True)
    if p.returncode != 0 or not os.path.exists(out_path):
        raise RuntimeError(f"festival voice {voice} wrote no audio: {p.stderr.decode(errors='replace')[-300:]}")
    return len(re.findall(r"using default diphone", p.stderr.decode(errors="replace")))


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="English text spoken by a festival voice of another language")
    ap.add_argument("voice", choices=sorted(VOICES))
    ap.add_argument("text")
    ap.add_argument("out")
    ap.add_argument("--stretch", type=float, default=1.0)
    ap.add_argument("--f0", type=float, default=1.0, help="F0 factor around the voice's own mean")
    ap.add_argument("--festival", default="festival")
    ap.add_argument("--festival-lib", default="", help="festival's library folder (empty: its own)")
    a = ap.parse_args()
    missing = speak(a.voice, a.text, a.out, a.stretch, a.f0, a.festival, a.festival_lib)
    print(f"{a.out}: {missing} phone pairs still missing")
