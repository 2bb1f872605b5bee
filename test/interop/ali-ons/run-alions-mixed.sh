#!/bin/sh
# run-alions-mixed.sh: one consumer group of librmq's push consumer (MIXED, the
# mixed_consumer program) and an ali-ons consumer against our broker daemon (issue 6
# item 7). Installs the pinned ali-ons into NODE_PREFIX (install-alions.sh), then runs
# mixed-group.js, which starts RMQD on 127.0.0.1 and a free port with a temp store.
# Usage: run-alions-mixed.sh RMQD NODE_PREFIX MIXED
# Exit: 0 pass; 77 skip (no node/npm, or no npm registry); anything else fails.
set -u
[ $# -eq 3 ] || { echo "usage: $0 RMQD NODE_PREFIX MIXED" >&2; exit 2; }
RMQD=$1
PREFIX=$2
MIXED=$3
HERE=$(cd "$(dirname "$0")" && pwd)
for exe in "$RMQD" "$MIXED"; do
  [ -x "$exe" ] || { echo "FAIL: $exe is not an executable" >&2; exit 1; }
done
sh "$HERE/install-alions.sh" "$PREFIX" || exit $?
NODE_PATH="$PREFIX/node_modules" exec node "$HERE/mixed-group.js" "$RMQD" "$MIXED"
