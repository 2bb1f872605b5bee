#!/bin/sh
# run-capture.sh: installs the pinned ali-ons (package.json beside this script) into
# NODE_PREFIX with npm (../install-alions.sh), unless that version is already there,
# then runs capture.js to record ali-ons' request frames into OUTDIR.
# Usage: run-capture.sh OUTDIR NODE_PREFIX   (NODE_PREFIX must be outside the repo)
# Exit: 0 ok; 77 skip (node/npm missing, or npm install failed for lack of network);
#       anything else is a real failure.
set -u
[ $# -eq 2 ] || { echo "usage: $0 OUTDIR NODE_PREFIX" >&2; exit 2; }
OUTDIR=$1
PREFIX=$2
HERE=$(cd "$(dirname "$0")" && pwd)
sh "$HERE/../install-alions.sh" "$PREFIX" || exit $?
NODE_PATH="$PREFIX/node_modules" exec node "$HERE/capture.js" "$OUTDIR"
