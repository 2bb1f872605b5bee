#!/bin/sh
# `meson install` into a scratch prefix, then build and run a program with only
# `pkg-config --cflags --libs rmq`, as a user of an installed librmq would.
set -eu
build=$1 src=$2
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet
pc=$(dirname "$(find "$dest" -name rmq.pc | head -1)")
[ -n "$pc" ] || { echo "rmq.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH="$pc" PKG_CONFIG_SYSROOT_DIR="$dest"
flags=$(pkg-config --cflags --libs rmq)
echo "pkg-config: $flags"
libdir=$(dirname "$(find "$dest" -name 'librmq.so.0' | head -1)")
# A sanitizer build of librmq needs the program linked with the same runtime first.
san=""
ldd "$libdir/librmq.so.0" | grep -q libasan && san="-fsanitize=address,undefined"
cc -std=c11 -Wall -Werror $san -o "$dest/hello" "$src" $flags
# SONAME must be librmq.so.0 so programs survive compatible upgrades.
objdump -p "$libdir/librmq.so.0" | grep -q 'SONAME *librmq.so.0' || { echo "SONAME is not librmq.so.0"; exit 1; }
LD_LIBRARY_PATH="$libdir" "$dest/hello"
