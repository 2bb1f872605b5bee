#!/usr/bin/env bash
# ABI gate for librmq.so against the committed baseline abi/librmq.abi.
#   .ci/abi.sh BUILD_DIR            fail on an incompatible change (additions are fine)
#   .ci/abi.sh BUILD_DIR --update   rewrite the baseline (a deliberate change: say so in doc/CHANGES.md)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: .ci/abi.sh BUILD_DIR [--update]}
lib=$build/lib/librmq.so
# Only types reachable from the public headers count.
opts=(--headers-dir include/rmq --headers-dir "$build/include/rmq" --no-show-locs)
if [[ ${2:-} == --update ]]; then
    abidw "${opts[@]}" --out-file abi/librmq.abi "$lib"
    echo "abi: baseline abi/librmq.abi rewritten from $lib"
    exit 0
fi
set +e
abidiff --headers-dir1 include/rmq --headers-dir2 include/rmq --headers-dir2 "$build/include/rmq" \
    --no-show-locs abi/librmq.abi "$lib"
rc=$?
set -e
# abidiff's exit code is a bit field: 1 error, 2 usage, 4 ABI change, 8 incompatible change.
if (( rc & 11 )); then
    echo "abi: INCOMPATIBLE change against abi/librmq.abi (abidiff exit $rc)."
    echo "abi: if deliberate, run .ci/abi.sh $build --update and record it in doc/CHANGES.md"
    exit 1
fi
(( rc & 4 )) && echo "abi: compatible additions (refresh the baseline with --update when releasing)"
echo "abi: ok"
