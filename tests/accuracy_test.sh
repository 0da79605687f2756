#!/usr/bin/env bash
# Accuracy regression test of the bundled models (models/, issue 7) on a slice of the held-out test set
# (tests/data/heldout: sentences and voices the models never heard in training; see models/README.md).
# The engine is deterministic, so the bounds sit a little above the measured rates: a drop in accuracy
# from an engine, feature or decoder change fails here instead of going unnoticed.
set -u
ds2rt=$1
root=$2  # the repository root
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
heldout=$root/tests/data/heldout
bi=$root/models/ds2rt-en-bigru.safetensors
uni=$root/models/ds2rt-en-unigru-streaming.safetensors
lm=$root/models/lm.arpa

# rate_at_most WHAT MAX_CER MAX_WER eval-args...: runs `ds2rt eval --json` and compares its rates.
rate_at_most() {
  local what=$1 max_cer=$2 max_wer=$3; shift 3
  if ! "$ds2rt" eval --json --no-progress "$@" >"$work/eval.json" 2>"$work/err"; then
    fail "$what: eval failed"; cat "$work/err"; return
  fi
  python3 - "$work/eval.json" "$what" "$max_cer" "$max_wer" <<'PY' || failures=$((failures + 1))
import json, sys
j, what, max_cer, max_wer = json.load(open(sys.argv[1])), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
ok = j["failed"] == 0 and j["cer"] <= max_cer and j["wer"] <= max_wer
print(f"{'ok  ' if ok else 'FAIL'} {what}: {j['files']} files, CER {j['cer']:.4f} (<= {max_cer}), "
      f"WER {j['wer']:.4f} (<= {max_wer})")
sys.exit(0 if ok else 1)
PY
}

# Held-out espeak-ng voices (measured: greedy CER 0.0377 WER 0.194; beam + LM CER 0.0207 WER 0.109).
rate_at_most "bi-GRU, greedy, held-out espeak-ng voices" 0.045 0.23 -m "$bi" "$heldout/espeak.jsonl"
rate_at_most "bi-GRU, beam + LM, held-out espeak-ng voices" 0.027 0.13 -m "$bi" --lm "$lm" "$heldout/espeak.jsonl"
# The held-out natural speaker (festival's ked_diphone) is the model's known weak spot (measured greedy CER
# 0.287): it must not get worse.
rate_at_most "bi-GRU, greedy, held-out festival voice" 0.33 1.0 -m "$bi" "$heldout/festival.jsonl"
# int8 on the CPU costs little accuracy (measured CER 0.0377, as fp32 on these files).
if grep -q avx512_vnni /proc/cpuinfo; then  # the int8 recurrent step needs AVX-512 VNNI
  rate_at_most "bi-GRU, int8, greedy, held-out espeak-ng voices" 0.05 0.25 -m "$bi" --precision int8 "$heldout/espeak.jsonl"
else
  echo "skip: int8 (this CPU has no AVX-512 VNNI)"
fi
# bf16 on the CPU costs no accuracy here (measured CER 0.0377, as fp32).
if grep -q avx512_bf16 /proc/cpuinfo; then  # the bf16 path needs AVX-512 BF16 (else the build is refused)
  rate_at_most "bi-GRU, bf16, greedy, held-out espeak-ng voices" 0.05 0.25 -m "$bi" --precision bf16 "$heldout/espeak.jsonl"
else
  echo "skip: bf16 (this CPU has no AVX-512 BF16)"
fi
# The streaming model (unidirectional GRU + lookahead; measured greedy CER 0.0603 WER 0.274).
rate_at_most "uni-GRU + lookahead, greedy, held-out espeak-ng voices" 0.07 0.31 -m "$uni" "$heldout/espeak.jsonl"

# The README's first command: no model named, the bundled one is found (here: the build tree's
# ../../models), and the bundled sample comes out right, greedy.
if env -u DS2RT_MODEL "$ds2rt" transcribe "$root/models/samples/sample1.wav" >"$work/out" 2>"$work/err"; then
  [ "$(cat "$work/out")" = "$(cat "$root/models/samples/sample1.txt")" ] ||
    fail "sample1 (README): '$(cat "$work/out")' != '$(cat "$root/models/samples/sample1.txt")'"
else
  fail "transcribe sample1 with the bundled model"; cat "$work/err"
fi
# --lm default: the bundled LM beside the bundled model; every bundled sample comes out right with it (greedy
# misspells a word of sample2, FLUOD for FLOOD, which the LM mends).
for i in 1 2 3 4; do
  sample=$root/models/samples/sample$i
  if ! DS2RT_MODEL="$root/models" "$ds2rt" transcribe --lm default "$sample.wav" >"$work/out" 2>"$work/err"; then
    fail "transcribe --lm default sample$i"; cat "$work/err"; continue
  fi
  [ "$(cat "$work/out")" = "$(cat "$sample.txt")" ] || fail "--lm default sample$i: '$(cat "$work/out")' != '$(cat "$sample.txt")'"
done

[ $failures -eq 0 ] && echo "accuracy: all passed" || echo "accuracy: $failures failure(s)"
exit $((failures > 0))
