#!/bin/sh
# install-alions.sh: installs the pinned ali-ons (capture/package.json) into NODE_PREFIX
# with npm, unless that version is already there. Concurrent callers (meson runs the
# interop tests in parallel) serialise on NODE_PREFIX/.install.lock.
# Usage: install-alions.sh NODE_PREFIX   (NODE_PREFIX must be outside the repo)
# Exit: 0 installed; 77 skip (node/npm missing, or npm could not reach the registry);
#       anything else is a real failure.
set -u
[ $# -eq 1 ] || { echo "usage: $0 NODE_PREFIX" >&2; exit 2; }
PREFIX=$1
for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not found" >&2; exit 77; }
done
HERE=$(cd "$(dirname "$0")" && pwd)
VER=$(node -p 'require(process.argv[1]).dependencies["ali-ons"]' "$HERE/capture/package.json") || exit 1

have() {
  node -p 'try { require(process.argv[1]).version } catch (e) { "" }' \
    "$PREFIX/node_modules/ali-ons/package.json" 2>/dev/null
}

mkdir -p "$PREFIX" || exit 1
if command -v flock >/dev/null 2>&1 && [ -z "${ALIONS_INSTALL_LOCKED:-}" ]; then
  ALIONS_INSTALL_LOCKED=1
  export ALIONS_INSTALL_LOCKED
  exec flock "$PREFIX/.install.lock" sh "$0" "$@"
fi

[ "$(have)" = "$VER" ] && exit 0
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
[ "$(have)" = "$VER" ] || { echo "FAIL: ali-ons@$VER not found in $PREFIX after npm install" >&2; exit 1; }
exit 0
