#!/usr/bin/env bash
# Run HERE (the build machine), from the repo root: assembles the git-ignored .gpu/ that the GPU machine
# needs besides the tracked scripts: espeak-ng, flite, festival (+ its English voices) and sox with their shared
# libraries and data, and the corpus text (compressed). Then run the GPU stages with carry [".gpu"] (see train/README.md).
#   .gpu/tts.tar.xz    tts/bin/{espeak-ng,flite,festival,sox}  tts/lib/*.so*  tts/espeak-ng-data/ (English only)
#                      tts/festival/ (festival's library: its absolute paths read @FESTIVAL@, which gpu_job.sh
#                      replaces on unpacking); about 27 MiB, leaving room in the 64 MiB carry for one model
#   .gpu/text.tar.xz   train.txt test.txt words.txt from make_text.py
set -euo pipefail
cd "$(dirname "$0")/.."
PACK_LIBS=${PACK_LIBS:-/work/shared/gpu/pack-libs.sh}
TEXT=${TEXT_DIR:-.work/text}
rm -rf .gpu/tts .gpu/tts.tar.xz .gpu/text.tar.xz
mkdir -p .gpu/tts/bin .gpu/tts/lib
cp /usr/bin/espeak-ng /usr/bin/flite /usr/bin/festival /usr/bin/sox .gpu/tts/bin/
"$PACK_LIBS" .gpu/tts/lib /usr/bin/espeak-ng /usr/bin/flite /usr/bin/festival /usr/bin/sox
# festival: Debian's library folder (without other voices and the Italian/Catalan dictionaries) with the
# voices of synthesize.py: festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts, and the accented.py
# voices named in $ACCENTED (comma-separated; default all nine: festvox-czech-{ph,machac,dita,krb},
# festvox-itapc16k, festvox-italp16k, festvox-suopuhe-{mv,lj}, festvox-hi-nsk; "none" for none). Its .scm files name
# /usr/share/festival, which becomes a placeholder.
fest=/usr/share/festival
voices="english/kal_diphone english/ked_diphone us/cmu_us_slt_arctic_hts"
accented=$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, "train"); import accented
print(" ".join(sorted(accented.VOICES)))')
case ${ACCENTED:-all} in all) ;; none) accented="" ;; *) accented=${ACCENTED//,/ } ;; esac
voices+=" $(/usr/bin/python3 -c 'import sys; sys.path.insert(0, "train"); import accented
print(" ".join(accented.voice_folders(sys.argv[1:])))' $accented)"
mkdir -p .gpu/tts/festival
tar -C "$fest" -c --exclude=./voices --exclude=./dicts/ifd --exclude=./dicts/upc --exclude=./upc_catalan . |
  tar -C .gpu/tts/festival -x
for v in $voices; do
  [ -d "$fest/voices/$v" ] || { echo "festival voice $v missing: apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts (and the accented.py voices' packages)" >&2; exit 1; }
  mkdir -p ".gpu/tts/festival/voices/$(dirname "$v")" && cp -r "$fest/voices/$v" ".gpu/tts/festival/voices/$v"
done
grep -rl /usr/share/festival .gpu/tts/festival | xargs sed -i 's#/usr/share/festival#@FESTIVAL@#g'
# espeak-ng-data without the other languages' dictionaries (the English voices need en_dict, the phoneme
# tables, intonations, voice variants and lang/ definitions).
src=/usr/lib/x86_64-linux-gnu/espeak-ng-data
mkdir -p .gpu/tts/espeak-ng-data
for f in "$src"/*; do
  case "$(basename "$f")" in
    *_dict) [ "$(basename "$f")" = en_dict ] && cp -r "$f" .gpu/tts/espeak-ng-data/ ;;
    *) cp -r "$f" .gpu/tts/espeak-ng-data/ ;;
  esac
done
# The corpus text: regenerated here when missing (make_text.py needs apt-cache and the fortunes).
if [ ! -s "$TEXT/train.txt" ]; then python3 train/make_text.py --out "$TEXT"; fi
tar -C "$TEXT" -cJf .gpu/text.tar.xz train.txt test.txt words.txt
# Check the packed tools run from the pack alone (their libraries from .gpu/tts/lib).
export LD_LIBRARY_PATH=$PWD/.gpu/tts/lib
.gpu/tts/bin/espeak-ng --path="$PWD/.gpu/tts" -v en-us+m3 --stdout "pack check" > /tmp/pack_check_$$.wav
.gpu/tts/bin/sox -V1 /tmp/pack_check_$$.wav -r 16000 /tmp/pack_check_$$.16k.wav
.gpu/tts/bin/flite -voice slt -t "pack check" -o /tmp/pack_check_$$.f.wav
cp -r .gpu/tts/festival /tmp/pack_check_$$.festival
grep -rl @FESTIVAL@ /tmp/pack_check_$$.festival | xargs sed -i "s#@FESTIVAL@#/tmp/pack_check_$$.festival#g"
echo "(voice_ked_diphone) (utt.save.wave (utt.synth (Utterance Text \"pack check\")) \"/tmp/pack_check_$$.fe.wav\" 'riff)" |
  .gpu/tts/bin/festival --libdir /tmp/pack_check_$$.festival --datadir /tmp/pack_check_$$.festival --pipe
[ -s /tmp/pack_check_$$.fe.wav ] || { echo "the packed festival made no audio" >&2; exit 1; }
for v in $accented; do
  /usr/bin/python3 train/accented.py "$v" "PACK CHECK" /tmp/pack_check_$$.acc.wav \
    --festival .gpu/tts/bin/festival --festival-lib /tmp/pack_check_$$.festival >/dev/null
done
rm -rf /tmp/pack_check_$$.festival
rm -f /tmp/pack_check_$$*.wav
tar -C .gpu -cJf .gpu/tts.tar.xz tts && rm -rf .gpu/tts
du -sh .gpu/tts.tar.xz .gpu/text.tar.xz
echo "packed: $(du -sm .gpu | cut -f1) MiB in .gpu (limit: 64 MiB with the working tree)"
