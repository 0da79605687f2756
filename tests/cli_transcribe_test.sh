#!/usr/bin/env bash
# End-to-end checks of `ds2rt transcribe` and `ds2rt eval` on a parity model (random weights:
# the transcripts are gibberish, but deterministic) and the audio fixtures.
set -u
ds2rt=$1
data=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
failures=0
model=$data/parity/lstm_bi_l2_h32/model.safetensors
audio=$data/audio
lm=$data/lm/tiny.arpa
manifests=$data/transcribe

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_ok() {  # description, command... (stdout in $work/out, stderr in $work/err)
  local what=$1; shift
  if ! "$@" >"$work/out" 2>"$work/err"; then fail "$what"; cat "$work/out" "$work/err"; fi
}
expect_error() {  # description, exit status, expected message fragment, command...
  local what=$1 status=$2 fragment=$3; shift 3
  "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  if [ $rc -ne "$status" ] || ! grep -q -- "$fragment" "$work/out" "$work/err"; then
    fail "$what (exit $rc, wanted $status and a message with '$fragment')"; cat "$work/out" "$work/err"
  fi
}
py() { python3 -c "$@" || fail "python check: ${*: -1}"; }

# ---- text ------------------------------------------------------------------------------------
expect_ok "one file, text" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav"
[ "$(wc -l <"$work/out")" -eq 1 ] && ! grep -q $'\t' "$work/out" || fail "one file prints just its transcript"
single=$(cat "$work/out")
[ -n "$single" ] || fail "empty transcript"

expect_ok "directory, text" "$ds2rt" transcribe "$model" "$audio" -b 1
cp "$work/out" "$work/batch1.txt"
expected=$(find "$audio" -name '*.wav' -o -name '*.flac' -o -name '*.ogg' -o -name '*.opus' -o -name '*.mp3' | wc -l)
[ "$(wc -l <"$work/batch1.txt")" -eq "$expected" ] || fail "directory: one line per audio file ($expected)"
[ "$(grep -c $'^[^\t]*\t' "$work/batch1.txt")" -eq "$expected" ] || fail "directory: path<TAB>transcript lines"
grep -q "^$audio/hello_16k.wav"$'\t'"$single\$" "$work/batch1.txt" || fail "directory and single file agree"
# Audio below the model's rate is transcribed, with one warning naming the file and its rate.
[ "$(grep -c "warning" "$work/err")" -eq 1 ] && grep -q "warning: '$audio/hello_8k.wav': 8000 Hz audio, upsampled" "$work/err" ||
  { fail "directory: one warning, for the 8 kHz file"; cat "$work/err"; }

# ---- batching: sorted, padded batches give the transcripts of batch size 1 ---------------------
for b in 3 8 32; do
  expect_ok "batch size $b" "$ds2rt" transcribe "$model" "$audio" --batch-size "$b"
  cmp -s "$work/out" "$work/batch1.txt" || { fail "batch size $b changes transcripts"; diff "$work/out" "$work/batch1.txt"; }
done
expect_ok "beam, batch 1" "$ds2rt" transcribe "$model" "$audio" -b 1 --lm "$lm"
cp "$work/out" "$work/beam1.txt"
expect_ok "beam, batch 5" "$ds2rt" transcribe "$model" "$audio" -b 5 --lm "$lm"
cmp -s "$work/out" "$work/beam1.txt" || fail "batching changes beam search transcripts"

# ---- JSON --------------------------------------------------------------------------------------
expect_ok "json" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" "$audio/numbers_48k.wav" -f json -o "$work/r.json"
[ -s "$work/err" ] && { fail "json: no warnings for 16 and 48 kHz files"; cat "$work/err"; }
python3 -m json.tool "$work/r.json" >/dev/null || fail "json output does not parse"
py "
import json, sys
r = json.load(open('$work/r.json'))
assert isinstance(r, list) and len(r) == 2, r
for f in r:
    for key in ('file', 'text', 'duration', 'sample_rate', 'confidence', 'words', 'nbest', 'model', 'decoder'): assert key in f, key
    assert 'warning' not in f, f['warning']
    assert f['decoder']['type'] == 'greedy' and abs(f['decoder']['frame_seconds'] - 0.02) < 1e-12, f['decoder']
    assert f['decoder']['time_stride'] == 2
    assert ' '.join(w['word'] for w in f['words']) == f['text'] == f['nbest'][0]['text']
    last = 0
    for w in f['words']:
        assert last <= w['start'] < w['end'] <= f['duration'] + 1e-9 and 0 <= w['confidence'] <= 1, w
        last = w['end']
assert r[0]['text'] == '''$single'''
assert [f['sample_rate'] for f in r] == [16000, 48000], [f['sample_rate'] for f in r]
" "json fields"
expect_ok "json, 8 kHz file" "$ds2rt" transcribe "$model" "$audio/hello_8k.wav" -f json
py "
import json
f = json.loads(open('$work/out').read())[0]
assert f['sample_rate'] == 8000 and 'nothing above 4000 Hz' in f['warning'] and f['text'], f
" "json: the 8 kHz file's rate and warning"
# Digital silence is transcribed (whatever the model makes of it) with a warning saying so.
python3 -c "
import wave
w = wave.open('$work/silence.wav', 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
w.writeframes(bytes(32000))" || fail "making a silent file"
expect_ok "silent file" "$ds2rt" transcribe "$model" "$work/silence.wav"
grep -q "warning: '$work/silence.wav': the audio is silent (peak 0)" "$work/err" || { fail "silence: no warning"; cat "$work/err"; }
expect_ok "json with LM, hotword, nbest" "$ds2rt" transcribe "$model" "$audio/door_16k.wav" -f json --lm "$lm" \
  --alpha 0.8 --beta 2 --beam-width 16 --cutoff-top-n 10 --cutoff-prob 0.99 --hotword DOOR:5 --nbest 3
py "
import json
f = json.load(open('$work/out'))[0]
d = f['decoder']
assert d['type'] == 'beam' and d['beam_width'] == 16 and d['alpha'] == 0.8 and d['lm'].endswith('tiny.arpa'), d
assert d['hotwords'] == [{'word': 'DOOR', 'boost': 5.0}], d
assert 1 <= len(f['nbest']) <= 3 and f['nbest'][0]['text'] == f['text']
scores = [h['score'] for h in f['nbest']]
assert scores == sorted(scores, reverse=True), scores
" "beam json"
expect_ok "bigram LM" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" --lm "$data/lm/bigram.arpa"
expect_ok "beam without LM" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" --decoder beam
expect_ok "log-prob engine" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" --log-probs
[ "$(cat "$work/out")" = "$single" ] || fail "--log-probs changes the greedy transcript"

# ---- SRT ---------------------------------------------------------------------------------------
python3 - "$audio" "$work/long.wav" <<'EOF' || fail "making a long file"
import sys, wave
frames = []
for name in ["hello_16k", "door_16k"] * 4:
    with wave.open(f"{sys.argv[1]}/{name}.wav") as w:
        params, _ = w.getparams(), frames.append(w.readframes(w.getnframes()))
with wave.open(sys.argv[2], "wb") as w:
    w.setparams(params)
    w.writeframes(b"".join(frames))
EOF
check_srt() {  # file, minimum cue count
  python3 - "$1" "$2" <<'EOF' || { fail "srt $1 is malformed"; cat "$1"; }
import re, sys
text = open(sys.argv[1]).read()
cues = [c for c in text.split("\n\n") if c.strip()]
assert len(cues) >= int(sys.argv[2]), len(cues)
assert text.endswith("\n\n")
def seconds(t):
    h, m, s, ms = map(int, re.match(r"^(\d\d):([0-5]\d):([0-5]\d),(\d\d\d)$", t).groups())
    return h * 3600 + m * 60 + s + ms / 1000
last = 0
for i, cue in enumerate(cues, 1):
    lines = cue.strip("\n").split("\n")
    assert lines[0] == str(i), (i, lines)
    start, end = map(seconds, lines[1].split(" --> "))
    assert last <= start < end, (last, start, end)
    body = " ".join(lines[2:])
    assert body, cue
    assert len(lines[2:]) == 1 and (len(body) <= 42 and end - start <= 7.0 or " " not in body), cue
    last = end
EOF
}
expect_ok "srt, long file" "$ds2rt" transcribe "$model" "$work/long.wav" -f srt --lm "$lm" -o "$work/long.srt"
check_srt "$work/long.srt" 2
expect_ok "srt, several files" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" "$audio/door_16k.wav" -f srt -o "$work/srt"
for stem in hello_16k door_16k; do [ -f "$work/srt/$stem.srt" ] && check_srt "$work/srt/$stem.srt" 1 || fail "$stem.srt"; done
expect_error "srt, several files, no -o" 2 "give -o" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" "$audio/door_16k.wav" -f srt

# ---- one bad file among good ones --------------------------------------------------------------
mkdir -p "$work/mixed/sub"
cp "$audio/hello_16k.wav" "$work/mixed/"
cp "$audio/door_16k.wav" "$work/mixed/sub/"
cp "$manifests/corrupt.wav" "$work/mixed/"
echo "not audio" >"$work/mixed/notes.txt"
expect_error "directory with a corrupt file" 1 "corrupt.wav" "$ds2rt" transcribe "$model" "$work/mixed" -b 4
[ "$(wc -l <"$work/out")" -eq 2 ] || fail "the good files of the directory are transcribed"
grep -q "^$work/mixed/hello_16k.wav"$'\t'"$single\$" "$work/out" || fail "good file transcript beside a bad one"
grep -q "1 of 3 inputs could not be transcribed" "$work/err" || fail "summary of failures"
expect_error "json keeps the failed file" 1 "corrupt.wav" "$ds2rt" transcribe "$model" "$work/mixed" -f json
py "
import json
r = json.load(open('$work/out'))
assert [('error' in f) for f in r] == [True, False, False] and 'corrupt.wav' in r[0]['error'], r
" "json error entry"
expect_error "missing audio file" 1 "nope.wav" "$ds2rt" transcribe "$model" "$work/nope.wav" "$audio/hello_16k.wav"
[ "$(wc -l <"$work/out")" -eq 1 ] || fail "the file beside a missing one is transcribed"

# ---- manifests ---------------------------------------------------------------------------------
expect_ok "csv manifest" "$ds2rt" transcribe "$model" "$manifests/manifest.csv"
cut -f2 "$work/out" >"$work/csv.txt"
expect_ok "jsonl manifest" "$ds2rt" transcribe "$model" "$manifests/manifest.jsonl"
cut -f2 "$work/out" | cmp -s - "$work/csv.txt" || fail "csv and jsonl manifests disagree"
cat >"$work/ds.json" <<EOF
{"root_path": "$data", "samples": [{"wav_path": "audio/hello_16k.wav", "transcript_path": "transcribe/hello.txt"},
  {"wav_path": "audio/door_16k.wav", "transcript_path": "transcribe/door.txt"},
  {"wav_path": "audio/numbers_16k.flac", "transcript_path": "transcribe/numbers.txt"}]}
EOF
expect_ok "deepspeech.pytorch JSON manifest" "$ds2rt" transcribe "$model" "$work/ds.json"
cut -f2 "$work/out" | cmp -s - "$work/csv.txt" || fail "csv and deepspeech.pytorch JSON manifests disagree"
[ "$(wc -l <"$work/csv.txt")" -eq 3 ] && [ "$(head -1 "$work/csv.txt")" = "$single" ] || fail "manifest transcripts"

# ---- eval --------------------------------------------------------------------------------------
# A manifest whose references are the model's own greedy transcripts: WER and CER are 0.
expect_ok "transcribe for references" "$ds2rt" transcribe "$model" "$manifests/manifest.csv" -f json -o "$work/hyp.json"
py "
import json
with open('$work/self.jsonl', 'w') as out:
    for f in json.load(open('$work/hyp.json')):
        out.write(json.dumps({'audio_filepath': f['file'], 'text': f['text'].lower()}) + '\n')
" "self manifest"
expect_ok "eval, self references" "$ds2rt" eval "$model" "$work/self.jsonl"
grep -q "^WER 0.00%" "$work/out" && grep -q "^CER 0.00%" "$work/out" || { fail "eval of own transcripts is not 0"; cat "$work/out"; }
# Real references: the rates must match an independent Levenshtein over the normalised texts.
expect_ok "eval --json" "$ds2rt" eval "$model" "$manifests/manifest.csv" --json --verbose
cp "$work/out" "$work/eval.json"
py "
import json, re
def edits(r, h):
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
    return d[len(h)]
def norm(t):
    return re.sub(' +', ' ', re.sub(\"[^A-Z' ]\", '', re.sub(r'\s', ' ', t.upper()))).strip()
refs = [norm(open('$manifests/' + n + '.txt').read()) for n in ('hello', 'door', 'numbers')]
hyps = [f['text'] for f in json.load(open('$work/hyp.json'))]
we = sum(edits(r.split(), h.split()) for r, h in zip(refs, hyps)); wn = sum(len(r.split()) for r in refs)
ce = sum(edits(r, h) for r, h in zip(refs, hyps)); cn = sum(len(r) for r in refs)
e = json.load(open('$work/eval.json'))
assert refs[0] == 'HELLO WORLD' and [x['reference'] for x in e['results']] == refs, e['results']
assert e['files'] == 3 and e['failed'] == 0
assert e['words']['errors'] == we and e['words']['reference_length'] == wn and abs(e['wer'] - we / wn) < 1e-12, (e, we, wn)
assert e['chars']['errors'] == ce and e['chars']['reference_length'] == cn and abs(e['cer'] - ce / cn) < 1e-12, (e, ce, cn)
print(f'{100 * we / wn:.2f} {100 * ce / cn:.2f}', file=open('$work/rates', 'w'))
" "eval rates against an independent computation"
read -r wer cer <"$work/rates"
expect_ok "eval text, jsonl manifest" "$ds2rt" eval "$model" "$manifests/manifest.jsonl" -b 2
grep -q "^WER $wer%" "$work/out" && grep -q "^CER $cer%" "$work/out" || { fail "eval text rates ($wer, $cer)"; cat "$work/out"; }
expect_ok "eval verbose" "$ds2rt" eval "$model" "$manifests/manifest.csv" -v
grep -q "REF: OPEN THE DOOR" "$work/out" || fail "eval --verbose shows normalised references"
expect_ok "eval with LM" "$ds2rt" eval "$model" "$manifests/manifest.csv" --lm "$lm" --json
python3 -m json.tool "$work/out" >/dev/null || fail "eval --json with LM does not parse"
py "
import json, os
with open('$work/partial.jsonl', 'w') as out:
    for line in open('$manifests/manifest.jsonl'):
        e = json.loads(line)
        e['audio_filepath'] = os.path.join('$manifests', e['audio_filepath'])
        out.write(json.dumps(e) + '\n')
    out.write(json.dumps({'audio_filepath': 'missing.wav', 'text': 'x'}) + '\n')
" "partial manifest"
expect_error "eval with a missing file" 1 "missing.wav" "$ds2rt" eval "$model" "$work/partial.jsonl"
grep -q "^WER $wer%" "$work/out" || fail "eval still scores the other files"
# --by FIELD: rates per value of a NeMo line's field; the groups add up to the whole, a line without
# the field counts under "(no FIELD)", numbers are values too, and a manifest without it is refused.
py "
import json, os
with open('$work/by.jsonl', 'w') as out:
    for line, speaker in zip(open('$manifests/manifest.jsonl'), ['anna', None, 'anna']):
        e = json.loads(line)
        e['audio_filepath'] = os.path.join('$manifests', e['audio_filepath'])
        e['age'] = 30
        if speaker:
            e['speaker'] = speaker
        out.write(json.dumps(e) + '\\n')
" "manifest with a speaker field"
expect_ok "eval --by speaker --json" "$ds2rt" eval "$model" "$work/by.jsonl" --by speaker --json --verbose
py "
import json
e = json.load(open('$work/out'))
groups = {g['value']: g for g in e['by']['groups']}
assert e['by']['field'] == 'speaker' and sorted(groups) == ['(no speaker)', 'anna'], groups
assert groups['anna']['files'] == 2 and groups['(no speaker)']['files'] == 1
for unit in ('words', 'chars'):
    for key in ('errors', 'reference_length', 'hits', 'substitutions', 'deletions', 'insertions'):
        assert sum(g[unit][key] for g in groups.values()) == e[unit][key], (unit, key)
door = [r for r in e['results'] if r['file'].endswith('door_16k.wav')][0]
assert [r['group'] for r in e['results']] == ['anna', '(no speaker)', 'anna'], e['results']
assert abs(groups['(no speaker)']['wer'] - door['wer']) < 1e-12 and abs(groups['(no speaker)']['cer'] - door['cer']) < 1e-12
" "eval --by: groups add up to the whole"
expect_ok "eval --by age (a number)" "$ds2rt" eval "$model" "$work/by.jsonl" --by age
grep -q "^by age:" "$work/out" && grep -Eq "^  30  files 3  WER $wer%  CER $cer%" "$work/out" ||
  { fail "eval --by age: one group of all three files"; cat "$work/out"; }
expect_error "eval --by a field no line has" 1 "no line of manifest .* has a field 'accent'" \
  "$ds2rt" eval "$model" "$work/by.jsonl" --by accent
expect_error "eval --by with a CSV manifest" 1 "has a field 'speaker'" "$ds2rt" eval "$model" "$manifests/manifest.csv" --by speaker

# ---- plans -------------------------------------------------------------------------------------
"$ds2rt" build "$model" -o "$work/model.plan" >/dev/null || fail "build a plan"
expect_ok "plan alone (labels and features stored in it)" "$ds2rt" transcribe "$work/model.plan" "$audio/hello_16k.wav"
[ "$(cat "$work/out")" = "$single" ] || fail "plan and model transcripts differ"
expect_ok "plan with --config" "$ds2rt" transcribe "$work/model.plan" "$audio/hello_16k.wav" --config "$model"
[ "$(cat "$work/out")" = "$single" ] || fail "plan with --config and model transcripts differ"
# A plan written before plans carried metadata (the key renamed, checksums redone): it needs --config.
python3 - "$work/model.plan" "$work/old.plan" <<'EOF' || fail "making a plan without metadata"
import struct, sys, zlib
b = bytearray(open(sys.argv[1], "rb").read())
at = b.index(b'"metadata"')
b[at:at + 10] = b'"metadatx"'
struct.pack_into("<I", b, 40, zlib.crc32(bytes(b[48:])))
struct.pack_into("<I", b, 44, zlib.crc32(bytes(b[:44])))
open(sys.argv[2], "wb").write(b)
EOF
expect_error "old plan without labels" 1 "holds no labels or spectrogram settings" \
  "$ds2rt" transcribe "$work/old.plan" "$audio/hello_16k.wav"
expect_ok "old plan with --config" "$ds2rt" transcribe "$work/old.plan" "$audio/hello_16k.wav" --config "$model"

# ---- progress bar: on a terminal only ----------------------------------------------------------
if command -v script >/dev/null; then
  script -qec "'$ds2rt' transcribe '$model' '$audio' >/dev/null" /dev/null >"$work/tty" 2>&1
  grep -q "files" "$work/tty" || fail "no progress bar on a terminal"
  expect_ok "no bar when piped" "$ds2rt" transcribe "$model" "$audio"
  ! grep -q "files" "$work/err" || fail "progress bar drawn without a terminal"
else
  echo "skipped: progress bar check (no 'script' command)"
fi

# ---- the bundled model by default ---------------------------------------------------------------
bundled=ds2rt-en-bigru.safetensors  # kBundledModelFile (include/ds2rt/bundled_model.h)
expect_ok "DS2RT_MODEL names the model" env DS2RT_MODEL="$model" "$ds2rt" transcribe "$audio/hello_16k.wav"
[ "$(cat "$work/out")" = "$single" ] || fail "DS2RT_MODEL: the transcript of the named model"
mkdir -p "$work/envdir" && cp "$model" "$work/envdir/$bundled"
expect_ok "DS2RT_MODEL names a directory" env DS2RT_MODEL="$work/envdir" "$ds2rt" transcribe "$audio/hello_16k.wav"
[ "$(cat "$work/out")" = "$single" ] || fail "DS2RT_MODEL directory transcript"
mkdir -p "$work/tree/bin" "$work/tree/models"
cp "$ds2rt" "$work/tree/bin/ds2rt" && cp "$model" "$work/tree/models/$bundled" && cp "$lm" "$work/tree/models/lm.arpa"
expect_ok "models/ beside a copied executable" env -u DS2RT_MODEL "$work/tree/bin/ds2rt" transcribe "$audio/hello_16k.wav"
[ "$(cat "$work/out")" = "$single" ] || fail "bundled model transcript"
expect_ok "eval with the bundled model" env -u DS2RT_MODEL "$work/tree/bin/ds2rt" eval "$work/self.jsonl"
grep -q "^WER 0.00%" "$work/out" || fail "eval with the bundled model"
expect_ok "--lm default" env -u DS2RT_MODEL "$work/tree/bin/ds2rt" transcribe "$audio/hello_16k.wav" --lm default -f json
py "
import json
d = json.load(open('$work/out'))[0]
assert d['decoder']['type'] == 'beam' and d['decoder']['lm'] == '$work/tree/models/lm.arpa', d['decoder']
assert d['model'] == '$work/tree/models/$bundled', d['model']
" "--lm default is models/lm.arpa"
expect_ok "-m names the model" env DS2RT_MODEL="$work/nope" "$ds2rt" transcribe -m "$model" "$audio/hello_16k.wav"
[ "$(cat "$work/out")" = "$single" ] || fail "-m transcript"
expect_ok "a .json manifest first is an input, not a model" env DS2RT_MODEL="$model" "$ds2rt" transcribe "$work/ds.json" "$audio/hello_16k.wav"
[ "$(wc -l <"$work/out")" -eq 4 ] || fail "a .json manifest and a file: four transcripts"
rm "$work/tree/models/$bundled"
expect_error "no model anywhere" 1 "no bundled model found" env -u DS2RT_MODEL "$work/tree/bin/ds2rt" transcribe "$audio/hello_16k.wav"
grep -q "$work/tree/models/$bundled" "$work/err" && grep -q "DS2RT_MODEL" "$work/err" || fail "the error lists where it looked"
expect_error "DS2RT_MODEL names nothing" 1 "DS2RT_MODEL='$work/nope' does not exist" env DS2RT_MODEL="$work/nope" "$ds2rt" transcribe "$audio/hello_16k.wav"
expect_error "--lm default without lm.arpa" 2 "no lm.arpa beside the model" "$ds2rt" transcribe -m "$model" "$audio/hello_16k.wav" --lm default
expect_error "eval: --model and two positionals" 2 "one manifest only" "$ds2rt" eval -m "$model" "$model" "$work/self.jsonl"

# ---- lm build ------------------------------------------------------------------------------------
printf 'hello world\nopen the door\nthe door is open\nhello door\n' >"$work/text.txt"
expect_ok "lm build" "$ds2rt" lm build "$work/text.txt" "$work/built.arpa" --order 3 --prune 0,0,1 --case upper
grep -q "^4 sentences, 11 words" "$work/out" && grep -q "3-grams: " "$work/out" || { fail "lm build summary"; cat "$work/out"; }
grep -q $'\tOPEN THE\t' "$work/built.arpa" && ! grep -q "hello" "$work/built.arpa" || fail "lm build: upper-case n-grams"
expect_ok "transcribe with the built LM" "$ds2rt" transcribe -m "$model" "$audio/hello_16k.wav" --lm "$work/built.arpa"
expect_ok "lm build from stdin to gzip" sh -c "'$ds2rt' lm build - '$work/built.arpa.gz' --order 2 <'$work/text.txt'"
[ "$(gzip -dc "$work/built.arpa.gz" | head -1)" = '\data\' ] || fail "gzip ARPA"
: >"$work/empty.txt"
expect_error "lm build: empty text" 1 "no words in text" "$ds2rt" lm build "$work/empty.txt" "$work/x.arpa"
expect_error "lm build: missing text" 1 "cannot open text" "$ds2rt" lm build "$work/nope.txt" "$work/x.arpa"
expect_error "lm build: decreasing prune" 2 "must not decrease" "$ds2rt" lm build "$work/text.txt" "$work/x.arpa" --prune 0,2,1
expect_error "lm build: bad order" 2 "order must be 1 to 6" "$ds2rt" lm build "$work/text.txt" "$work/x.arpa" --order 9
expect_error "lm build: bad prune text" 2 "bad prune threshold" "$ds2rt" lm build "$work/text.txt" "$work/x.arpa" --prune 0,one
[ ! -e "$work/x.arpa" ] || fail "a failed build leaves no ARPA file"
if command -v script >/dev/null; then
  script -qec "'$ds2rt' lm build '$work/text.txt' '$work/x.arpa'" /dev/null >"$work/tty" 2>&1
  grep -q "counting n-grams" "$work/tty" || fail "no lm build progress on a terminal"
fi

# ---- usage errors ------------------------------------------------------------------------------
expect_error "missing model" 2 "does not exist" "$ds2rt" transcribe "$work/nope.safetensors" "$audio/hello_16k.wav"
expect_error "eval, missing manifest" 2 "does not exist" "$ds2rt" eval "$model" "$work/nope.csv"
expect_error "transcribe, missing manifest" 1 "no such file" "$ds2rt" transcribe "$model" "$work/nope.csv"
expect_error "unknown format" 2 "xml not in" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" -f xml
expect_error "greedy with an LM" 2 "need the beam decoder" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" --decoder greedy --lm "$lm"
expect_error "bad hotword" 2 "not a number" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" --hotword THE:x
expect_error "bad batch size" 2 "batch-size" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" -b 0
expect_error "bad segment length" 2 "at least 1 s" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" --max-segment 0.5

# ---- long files: cut at pauses, word times from the file's start --------------------------------
py "
import wave
src = wave.open('$audio/hello_16k.wav')
rate, hello = src.getframerate(), src.readframes(src.getnframes())
pause = bytes(2 * rate // 2)  # 0.5 s of silence between repetitions
out = wave.open('$work/long.wav', 'wb')
out.setnchannels(1); out.setsampwidth(2); out.setframerate(rate)
body = b''
while len(body) < 2 * rate * 45: body += hello + pause
out.writeframes(body); out.close()
" "long file written"
expect_ok "long file, pieces" "$ds2rt" transcribe "$model" "$work/long.wav" --max-segment 10 -f json -o "$work/long.json"
expect_ok "long file, whole" "$ds2rt" transcribe "$model" "$work/long.wav" --max-segment 0 -f json -o "$work/whole.json"
py "
import json
for name in ('long', 'whole'):
    r = json.load(open('$work/' + name + '.json'))[0]
    words = r['words']
    assert words, name + ': no words'
    starts = [w['start'] for w in words]
    assert starts == sorted(starts), name + ': word times go back'
    assert all(w['start'] <= w['end'] <= r['duration'] + 1e-6 for w in words), name + ': a word outside the file'
    if name == 'long':  # each piece's words, shifted by where the piece starts
        assert starts[-1] > 30, name + ': the last word starts at %.1f s of %.1f' % (starts[-1], r['duration'])
    assert len(r['text'].split()) == len(words), name + ': text and words disagree'
" "long file: word times in order, counted from the file's start"
printf 'a.wav,b.txt,c\n' >"$work/bad.csv"
expect_error "malformed manifest" 1 "line 1" "$ds2rt" transcribe "$model" "$work/bad.csv"
printf '{"text": "x"}\n' >"$work/bad.jsonl"
expect_error "manifest without audio_filepath" 1 "audio_filepath" "$ds2rt" eval "$model" "$work/bad.jsonl"
expect_error "bad ARPA file" 1 "corrupt.wav" "$ds2rt" transcribe "$model" "$audio/hello_16k.wav" --lm "$manifests/corrupt.wav"

if [ $failures -ne 0 ]; then echo "$failures transcribe/eval checks failed"; exit 1; fi
echo "all transcribe/eval checks passed"
