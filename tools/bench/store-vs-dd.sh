#!/bin/sh
# Storage-engine benchmark beside dd, in one run, printed as a Markdown table
# (doc/benchmarks.md, "Storage engine"). Usage:
#   tools/bench/store-vs-dd.sh [RMQ_BENCH] [DIR] [SECONDS]
# RMQ_BENCH defaults to build/tools/bench/rmq-bench, DIR to a new directory under /tmp (it
# needs ~3 GiB free and is removed at the end), SECONDS (per store run) to 5. The SYNC_FLUSH
# 1 KiB / 64 appenders run and the 4 KiB O_DSYNC dd run three times each, interleaved.
set -eu

BENCH=${1:-build/tools/bench/rmq-bench}
DIR=${2:-$(mktemp -d /tmp/rmq-store-vs-dd.XXXXXX)}
SECS=${3:-5}
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT

value() { # value KEY LINE -> the number after KEY=
    echo "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'
}

store() { # store SIZE FLUSH APPENDERS -> prints one table row, remembers the line
    line=$("$BENCH" store --dir "$DIR/store" --size "$1" --flush "$2" --appenders "$3" \
        --seconds "$SECS" 2>/dev/null | tail -n 1)
    echo "| rmq-bench store | $1 | $2 | $3 | $(value msgs/s "$line") | $(value MB/s "$line") |"
    LAST=$line
}

dd_rate() { # dd_rate ARGS... -> "SECONDS BYTES"
    dd if=/dev/zero of="$DIR/dd.out" "$@" 2>&1 | awk '/copied/ {print $(NF-3), $1}'
    rm -f "$DIR/dd.out"
}

echo "| what | size (B) | flush | appenders | msgs/s | MB/s |"
echo "|---|---|---|---|---|---|"
for size in 128 4096; do
    for flush in async sync; do
        for n in 1 64; do
            store "$size" "$flush" "$n"
            if [ "$size" = 4096 ] && [ "$flush" = async ] && [ "$n" = 1 ]; then ASYNC4K=$LAST; fi
        done
    done
done
set -- $(dd_rate bs=1M count=2048 conv=fdatasync)
DD_MBS=$(awk -v s="$1" -v b="$2" 'BEGIN {printf "%.1f", b / s / 1e6}')
echo "| dd bs=1M count=2048 conv=fdatasync | 1048576 | fdatasync at end | 1 | $(awk -v s="$1" 'BEGIN {printf "%.0f", 2048 / s}') | $DD_MBS |"

# The group-commit target compares two figures that both swing with the disk's other
# traffic: three of each, interleaved so each pair sees the same conditions; the medians.
SYNC1K_ALL= DSYNC_ALL=
for i in 1 2 3; do
    store 1024 sync 64
    SYNC1K_ALL="$SYNC1K_ALL $(value msgs/s "$LAST")"
    set -- $(dd_rate bs=4k count=2000 oflag=dsync)
    rate=$(awk -v s="$1" 'BEGIN {printf "%.0f", 2000 / s}')
    DSYNC_ALL="$DSYNC_ALL $rate"
    echo "| dd bs=4k count=2000 oflag=dsync | 4096 | O_DSYNC each write | 1 | $rate | $(awk -v s="$1" 'BEGIN {printf "%.1f", 2000 * 4096 / s / 1e6}') |"
done
median() { echo "$@" | tr ' ' '\n' | sort -n | awk 'NF {v[n++] = $1} END {print v[int(n / 2)]}'; }
RATIOS=$(echo "$SYNC1K_ALL|$DSYNC_ALL" | awk -F'|' '{n = split($1, m, " "); split($2, d, " ");
    for (i = 1; i <= n; i++) printf " %.1f", m[i] / d[i]}')

# About 1 GiB of 4 KiB records, SIGKILL, then time the crash recovery.
REC=$("$BENCH" store --dir "$DIR/recover" --size 4096 --flush async --count 250000 --recover \
    2>/dev/null | tail -n 1)

echo
awk -v a="$(value MB/s "$ASYNC4K")" -v d="$DD_MBS" \
    'BEGIN {printf "- 4 KiB ASYNC_FLUSH, 1 appender: %.1f MB/s = %.0f%% of dd (target >= 80%%)\n", a, 100 * a / d}'
echo "- 1 KiB SYNC_FLUSH, 64 appenders: median ratio $(median $RATIOS)x the O_DSYNC 4k write rate (target >= 10x); pairs (store msgs/s / dd writes/s):$(echo "$SYNC1K_ALL|$DSYNC_ALL|$RATIOS" | awk -F'|' '{n = split($1, m, " "); split($2, d, " "); split($3, r, " "); for (i = 1; i <= n; i++) printf " %s/%s = %sx;", m[i], d[i], r[i]}') medians $(median $SYNC1K_ALL) msgs/s and $(median $DSYNC_ALL) writes/s"
echo "- crash recovery after SIGKILL of $(value msgs "$REC") records of 4 KiB (~1 GiB of commit log): $(value recover_ms "$REC") ms, RSS after recovery $(value rss_mb "$REC") MiB (target < 2000 ms)"
