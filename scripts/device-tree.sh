#!/usr/bin/env bash
# The device tool copies the working tree and refuses one over 64 MiB; the bundled models (43 MB)
# plus .gpu/ (about 33 MB) are over. Around a `run` call, take them out of the index and put them
# back (the files themselves stay where they are):
#   scripts/device-tree.sh out [paths...]   before the call (default path: models)
#   scripts/device-tree.sh in  [paths...]   after it, whatever the call returned
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?usage: scripts/device-tree.sh out|in [paths...]}
shift
paths=("${@:-models}")
exclude=.git/info/exclude
case "$what" in
  out)
    git rm -r -q --cached "${paths[@]}"
    for p in "${paths[@]}"; do grep -qxF "/${p%/}/" "$exclude" 2>/dev/null || printf '/%s/\n' "${p%/}" >>"$exclude"; done ;;
  in)
    git reset -q -- "${paths[@]}"
    for p in "${paths[@]}"; do
      line="/${p%/}/"
      grep -vxF "$line" "$exclude" >"$exclude.tmp" || true
      mv "$exclude.tmp" "$exclude"
    done ;;
  *) echo "usage: scripts/device-tree.sh out|in [paths...]" >&2; exit 2 ;;
esac
git status --short | head -n 3
