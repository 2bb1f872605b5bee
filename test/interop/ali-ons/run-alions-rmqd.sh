#!/bin/sh
# run-alions-rmqd.sh: the ali-ons interop test against our broker daemon (issue 4 item 7).
# Installs the pinned ali-ons into NODE_PREFIX (install-alions.sh, shared with the
# capture test), then runs alions-rmqd.js, which starts RMQD on 127.0.0.1 and a free port
# with a temp store, runs the scenarios, stops rmqd with SIGTERM and cleans up.
# Usage: run-alions-rmqd.sh RMQD NODE_PREFIX [SCRIPT]   (SCRIPT: a scenario file in this
# folder, default alions-rmqd.js)
# Exit: 0 pass; 77 skip (no node/npm, or no npm registry); anything else fails.
set -u
[ $# -eq 2 ] || [ $# -eq 3 ] || { echo "usage: $0 RMQD NODE_PREFIX [SCRIPT]" >&2; exit 2; }
RMQD=$1
PREFIX=$2
SCRIPT=${3:-alions-rmqd.js}
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$RMQD" ] || { echo "FAIL: $RMQD is not an executable" >&2; exit 1; }
sh "$HERE/install-alions.sh" "$PREFIX" || exit $?
NODE_PATH="$PREFIX/node_modules" exec node "$HERE/$SCRIPT" "$RMQD"
