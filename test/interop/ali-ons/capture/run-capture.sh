#!/bin/sh
# run-capture.sh: installs the pinned ali-ons (package.json beside this script) into
# NODE_PREFIX with npm, unless that version is already there, then runs capture.js to
# record ali-ons' request frames into OUTDIR.
# Usage: run-capture.sh OUTDIR NODE_PREFIX   (NODE_PREFIX must be outside the repo)
# Exit: 0 ok; 77 skip (node/npm missing, or npm install failed for lack of network);
#       anything else is a real failure.
set -u
[ $# -eq 2 ] || { echo "usage: $0 OUTDIR NODE_PREFIX" >&2; exit 2; }
OUTDIR=$1
PREFIX=$2
for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not found" >&2; exit 77; }
done
HERE=$(cd "$(dirname "$0")" && pwd)

VER=$(node -p 'require(process.argv[1]).dependencies["ali-ons"]' "$HERE/package.json") || exit 1
HAVE=$(node -p 'try { require(process.argv[1]).version } catch (e) { "" }' \
  "$PREFIX/node_modules/ali-ons/package.json" 2>/dev/null)

if [ "$HAVE" != "$VER" ]; then
  mkdir -p "$PREFIX" || exit 1
  LOG="$PREFIX/npm-install.log"
  if ! npm install --prefix "$PREFIX" --no-save --no-audit --no-fund "ali-ons@$VER" >"$LOG" 2>&1; then
    cat "$LOG" >&2
    if grep -Eq 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network' "$LOG"; then
      echo "SKIP: npm install ali-ons@$VER failed: no network" >&2
      exit 77
    fi
    echo "FAIL: npm install ali-ons@$VER failed" >&2
    exit 1
  fi
fi

NODE_PATH="$PREFIX/node_modules" exec node "$HERE/capture.js" "$OUTDIR"
