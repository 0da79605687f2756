#!/usr/bin/env bash
# Run HERE (the build machine), from the repo root: assembles the git-ignored .gpu/ that the GPU machine
# needs besides the tracked scripts: espeak-ng, flite and sox with their shared libraries and data, and the
# corpus text (compressed). Then run the GPU stages with carry [".gpu"] (see train/README.md).
#   .gpu/tts.tar.xz    tts/bin/{espeak-ng,flite,sox}  tts/lib/*.so*  tts/espeak-ng-data/ (English only);
#                      about 18 MiB, leaving room in the 64 MiB carry for a checkpoint to fine-tune
#   .gpu/text.tar.xz   train.txt test.txt words.txt from make_text.py
set -euo pipefail
cd "$(dirname "$0")/.."
PACK_LIBS=${PACK_LIBS:-/work/shared/gpu/pack-libs.sh}
TEXT=${TEXT_DIR:-.work/text}
rm -rf .gpu/tts .gpu/tts.tar.xz .gpu/text.tar.xz
mkdir -p .gpu/tts/bin .gpu/tts/lib
cp /usr/bin/espeak-ng /usr/bin/flite /usr/bin/sox .gpu/tts/bin/
"$PACK_LIBS" .gpu/tts/lib /usr/bin/espeak-ng /usr/bin/flite /usr/bin/sox
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
rm -f /tmp/pack_check_$$*.wav
tar -C .gpu -cJf .gpu/tts.tar.xz tts && rm -rf .gpu/tts
du -sh .gpu/tts.tar.xz .gpu/text.tar.xz
echo "packed: $(du -sm .gpu | cut -f1) MiB in .gpu (limit: 64 MiB with the working tree)"
