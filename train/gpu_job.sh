#!/usr/bin/env bash
# The GPU machine's entry point, run from the repo root (needs .gpu/ from train/pack.sh, carried):
#   train/gpu_job.sh synth                    text -> .work/corpus/{train,test}.csv + WAVs (restartable)
#   train/gpu_job.sh train-bi  MINUTES [TOTAL]  bidirectional GRU; TOTAL = whole schedule (default MINUTES)
#   train/gpu_job.sh train-uni MINUTES [TOTAL]  unidirectional GRU + lookahead (streaming)
#   train/gpu_job.sh export                   checkpoints (fp16), logs, a small test set -> $OUT
# Every stage starts from what is there: a train stage synthesises the corpus first if it is missing
# (a cold machine), resumes from .work/runs/NAME/last.pt if present, and copies its logs to $OUT.
# Sizes (env): TRAIN_UTTS (40000), TEST_UTTS (2000), BI_HIDDEN (352), BI_LAYERS (5), UNI_HIDDEN (512),
# UNI_LAYERS (5), LOOKAHEAD (20), BATCH_SECONDS (600), EXPORT_UTTS (200), EXPORT_MB (20), JOBS (nproc),
# TRAIN_ARGS (extra train.py flags, e.g. --init CKPT to fine-tune), SYNTH_ARGS (extra synthesize.py flags). TTS_SYSTEM=1 uses the system's espeak-ng/flite/festival/sox (local tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
WORK=${WORK:-.work}
OUT=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT"
if [ "${TTS_SYSTEM:-0}" != 1 ]; then
  TTS=$(realpath -m "$WORK/tts")
  if [ ! -x "$TTS/bin/espeak-ng" ]; then  # packed as .gpu/tts.tar.xz (xz: the GPU machine has no zstd)
    [ -s .gpu/tts.tar.xz ] || { echo "no .gpu/tts.tar.xz: run train/pack.sh here and carry .gpu" >&2; exit 1; }
    tar -C "$WORK" -xJf .gpu/tts.tar.xz
    grep -rl @FESTIVAL@ "$TTS/festival" | xargs sed -i "s#@FESTIVAL@#$TTS/festival#g"
  fi
  export LD_LIBRARY_PATH=$TTS/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export ESPEAK_NG=$TTS/bin/espeak-ng ESPEAK_DATA=$TTS FLITE=$TTS/bin/flite SOX=$TTS/bin/sox
  export FESTIVAL=$TTS/bin/festival FESTIVAL_LIB=$TTS/festival
fi

synth() {
  if [ ! -s "$WORK/text/train.txt" ]; then
    mkdir -p "$WORK/text" && tar -C "$WORK/text" -xJf .gpu/text.tar.xz  # the GPU machine has no zstd
  fi
  local t0=$SECONDS
  python3 train/synthesize.py --text "$WORK/text" --out "$WORK/corpus" --train "${TRAIN_UTTS:-40000}" \
    --test "${TEST_UTTS:-2000}" --jobs "${JOBS:-$(nproc)}" ${SYNTH_ARGS:-}
  # The training audio cache (one .npz per manifest) is built here, so that train calls start fast.
  python3 -c "import sys; sys.path.insert(0, 'train'); import train as T
for m in sys.argv[1:]: T.load_corpus(m)" "$WORK/corpus/train.csv" "$WORK/corpus/test.csv"
  echo "synth: $((SECONDS - t0)) s; corpus $(du -sh "$WORK/corpus" | cut -f1)"
}

train() {  # NAME MINUTES TOTAL FLAGS...
  local name=$1 minutes=$2 total=$3
  shift 3
  if [ ! -s "$WORK/corpus/train.csv" ] || [ ! -s "$WORK/corpus/test.csv" ]; then
    echo "no corpus (cold machine?): synthesising it first" && synth
  fi
  local t0=$SECONDS
  set +e
  python3 train/train.py --train "$WORK/corpus/train.csv" --val "$WORK/corpus/test.csv" --out "$WORK/runs/$name" \
    --minutes "$minutes" --total-minutes "$total" --batch-seconds "${BATCH_SECONDS:-600}" "$@" ${TRAIN_ARGS:-}
  local rc=$?
  set -e
  cp "$WORK/runs/$name/log.jsonl" "$OUT/$name.log.jsonl" 2>/dev/null || true
  echo "train $name: rc $rc, $((SECONDS - t0)) s"
  return $rc
}

export_results() {
  local stage=$WORK/export
  rm -rf "$stage" && mkdir -p "$stage/models" "$stage/testset"
  python3 - "$WORK/runs" "$stage/models" <<'PY'
import os, sys, torch
runs, out = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(runs)):
    src = os.path.join(runs, name, "model.ckpt")
    if not os.path.exists(src):
        continue
    ck = torch.load(src, map_location="cpu", weights_only=False)
    ck["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    torch.save(ck, os.path.join(out, name + ".fp16.ckpt"))
    n = sum(v.numel() for k, v in ck["state_dict"].items() if "num_batches" not in k and "running" not in k)
    print(f"{name}: {n} parameters, fp16 checkpoint {os.path.getsize(os.path.join(out, name + '.fp16.ckpt')) / 1e6:.1f} MB")
PY
  for d in "$WORK"/runs/*/; do cp "$d/log.jsonl" "$stage/models/$(basename "$d").log.jsonl"; done
  # A small held-out test set: the first EXPORT_UTTS test utterances (random order), at most EXPORT_MB.
  python3 - "$WORK/corpus" "$stage/testset" "${EXPORT_UTTS:-200}" "${EXPORT_MB:-20}" <<'PY'
import json, os, shutil, sys
corpus, out, n, mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
os.makedirs(os.path.join(out, "test"), exist_ok=True)
rows, total = [], 0
for line in open(os.path.join(corpus, "test.jsonl")):
    j = json.loads(line)
    size = os.path.getsize(os.path.join(corpus, j["audio_filepath"]))
    if len(rows) >= n or total + size > mb * 1e6:
        break
    shutil.copy(os.path.join(corpus, j["audio_filepath"]), os.path.join(out, j["audio_filepath"]))
    txt = j["audio_filepath"][:-4] + ".txt"
    shutil.copy(os.path.join(corpus, txt), os.path.join(out, txt))
    rows.append(j)
    total += size
with open(os.path.join(out, "test.jsonl"), "w") as f:
    f.writelines(json.dumps(j) + "\n" for j in rows)
with open(os.path.join(out, "test.csv"), "w") as f:
    f.writelines(f"{j['audio_filepath']},{j['audio_filepath'][:-4]}.txt\n" for j in rows)
print(f"test set: {len(rows)} utterances, {total / 1e6:.1f} MB of WAV")
PY
  # $OUT takes at most 8 files of 16 MiB (64 MiB in all): one archive, cut in 15 MiB parts.
  tar -C "$stage" -czf "$WORK/results.tar.gz" models testset
  rm -f "$OUT"/results.tar.gz.part*
  split -b 15M -d "$WORK/results.tar.gz" "$OUT/results.tar.gz.part"
  ls -l "$OUT"
  echo "here: cat results.tar.gz.part* | tar -xz   (models/, testset/)"
}

stage=${1:-}
case "$stage" in
  synth) synth ;;
  train-bi)
    train bi "${2:?MINUTES}" "${3:-$2}" --rnn-type gru --hidden-size "${BI_HIDDEN:-352}" --hidden-layers "${BI_LAYERS:-5}" ;;
  train-uni)
    train uni "${2:?MINUTES}" "${3:-$2}" --rnn-type gru --hidden-size "${UNI_HIDDEN:-512}" \
      --hidden-layers "${UNI_LAYERS:-5}" --unidirectional --lookahead "${LOOKAHEAD:-20}" ;;
  export) export_results ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
