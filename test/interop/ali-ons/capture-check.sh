#!/bin/sh
# capture-check.sh: re-records ali-ons' request frames live (capture/run-capture.sh) into
# OUTDIR, then decodes them with the proto test binary (test_proto_alions, which reads
# ALIONS_FRAMES). Registered in meson as the test 'alions_capture'.
# Usage: capture-check.sh OUTDIR NODE_PREFIX TEST_PROTO_ALIONS
# Exit: 0 pass; 77 skip (no node/npm, or no npm registry); anything else fails.
set -u
[ $# -eq 3 ] || { echo "usage: $0 OUTDIR NODE_PREFIX TEST_PROTO_ALIONS" >&2; exit 2; }
OUTDIR=$1
PREFIX=$2
TESTBIN=$3
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$TESTBIN" ] || { echo "FAIL: $TESTBIN is not built" >&2; exit 1; }

sh "$HERE/capture/run-capture.sh" "$OUTDIR" "$PREFIX"
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] || { echo "FAIL: capture of ali-ons frames exited $rc" >&2; exit 1; }

echo "decoding the fresh captures in $OUTDIR with $TESTBIN"
ALIONS_FRAMES=$OUTDIR ALIONS_OPTIONAL= exec "$TESTBIN"
