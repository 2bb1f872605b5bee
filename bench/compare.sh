#!/usr/bin/env bash
# librmq's rmqd side by side with Redis Streams, RabbitMQ and NATS JetStream (issue 9).
# Installs the peers and their C clients from Debian's packages, starts each server on
# 127.0.0.1 (free ports, its own temporary data dir), runs the same three workloads against
# it (bench/drv_*.c for the peers, rmq-bench for rmqd), reads the server's RSS, stops it.
#
#   bench/compare.sh [--doc] [--no-install] [--build DIR] [--out DIR] [--count N]
#
#   --doc         also rewrite the generated part of doc/benchmarks.md's "Compared with
#                 Redis, RabbitMQ and NATS" section and doc/compare.png
#   --no-install  do not apt-get install anything (fail if something is missing)
#   --build DIR   build rmqd and rmq-bench from the work tree into DIR (configured if
#                 needed); default: from a clean export of HEAD under /tmp/rmq-compare-<commit>
#   --out DIR     where results.md, results.dat and compare.png go (default: a new temp dir)
#   --count N     messages for the produce and e2e workloads (default 100000)
#
# Workloads, 1 KiB bodies: produce (async/pipelined, 1024 unconfirmed at most, --count
# messages); e2e (the same with one consumer at once; lost and duplicate counts); sync (one
# thread, one confirmed send at a time, 20,000 messages or 10 s). Whole run bounded by a
# 450 s watchdog (each step is bounded too, so the whole run ends within 10 minutes). Every process started here is ended by its PID on exit. Exits non-zero if a
# peer could not be started or a workload failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=""
OUT=""
DOC=0
INSTALL=1
COUNT=100000
SIZE=1024
INFLIGHT=1024
SYNC_COUNT=20000
SYNC_SECONDS=10
RUN_SECONDS=60 # bound on each produce / e2e run
DEADLINE=450   # the whole script (a running step may take up to 100 s more to end)

while (($#)); do
    case $1 in
    --doc) DOC=1 ;;
    --no-install) INSTALL=0 ;;
    --build) BUILD=$(realpath -m "$2"); shift ;;
    --out) OUT=$(realpath -m "$2"); shift ;;
    --count) COUNT=$2; shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

PEER_PKGS=(redis-server rabbitmq-server nats-server libhiredis-dev librabbitmq-dev libnats-dev
    gnuplot-nox pkg-config gcc meson ninja-build)

WORK=$(mktemp -d /tmp/rmq-compare.XXXXXX)
[[ -n $OUT ]] || OUT=$WORK/out
mkdir -p "$OUT"
PIDS=()       # every process started here, ended on exit
FAILED=0

log() { printf '[compare %s] %s\n' "$(date -u +%T)" "$*" >&2; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK/data" "$WORK/bin" "$WORK/benchmarks.md"
    [[ $OUT == "$WORK/out" ]] || rmdir "$WORK" 2>/dev/null || true
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# Watchdog: the whole run stays under 10 minutes.
(
    trap 'kill $sp 2>/dev/null; exit 0' TERM
    sleep "$DEADLINE" &
    sp=$!
    wait $sp
    echo "[compare] watchdog: ${DEADLINE}s elapsed, stopping" >&2
    kill -TERM $$
) &
PIDS+=($!)

# ---- packages -------------------------------------------------------------------------
missing=()
for p in "${PEER_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if ((!INSTALL)); then
        echo "compare.sh: missing packages: ${missing[*]}" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    # Keep the packages' own services from starting (they would take the default ports and
    # outlive this script): policy-rc.d says no while we install, if none is there already.
    prc=/usr/sbin/policy-rc.d
    made_prc=0
    if [[ ! -e $prc ]]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee $prc >/dev/null
        $sudo chmod 755 $prc
        made_prc=1
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    ((made_prc)) && $sudo rm -f $prc
fi

# ---- builds ---------------------------------------------------------------------------
# By default rmqd and rmq-bench are built from the committed HEAD (exported under /tmp, kept
# for the next run of the same commit), so others' uncommitted edits in the work tree do not
# end up in the figures; --build DIR builds the work tree as it is.
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
if [[ -z $BUILD ]]; then
    SRC=/tmp/rmq-compare-$COMMIT/src
    BUILD=/tmp/rmq-compare-$COMMIT/build
    if [[ ! -f $SRC/meson.build ]]; then
        mkdir -p "$SRC"
        git -C "$ROOT" archive HEAD | tar -x -C "$SRC"
    fi
    DIRTY=""
else
    SRC=$ROOT
    DIRTY=$(git -C "$ROOT" diff --quiet HEAD -- lib include tools || echo ' (work tree, with uncommitted changes)')
fi
if [[ ! -f $BUILD/build.ninja ]]; then
    log "configuring $BUILD"
    meson setup "$BUILD" "$SRC" -Dtests=false -Dexamples=false >/dev/null
fi
log "building rmqd and rmq-bench"
ninja -C "$BUILD" tools/rmqd/rmqd tools/bench/rmq-bench >/dev/null
RMQD=$BUILD/tools/rmqd/rmqd
RMQ_BENCH=$BUILD/tools/bench/rmq-bench
mkdir -p "$WORK/bin"
CFLAGS=(-O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -pthread)
cc "${CFLAGS[@]}" -o "$WORK/bin/drv_redis" "$ROOT/bench/drv_redis.c" $(pkg-config --cflags --libs hiredis)
cc "${CFLAGS[@]}" -o "$WORK/bin/drv_rabbitmq" "$ROOT/bench/drv_rabbitmq.c" $(pkg-config --cflags --libs librabbitmq)
cc "${CFLAGS[@]}" -o "$WORK/bin/drv_nats" "$ROOT/bench/drv_nats.c" $(pkg-config --cflags --libs libnats)

# ---- helpers --------------------------------------------------------------------------
USED_PORTS=" "
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_port() { # sets PORT to a free loopback port not handed out before
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        [[ $USED_PORTS == *" $p "* ]] && continue
        port_busy "$p" && continue
        USED_PORTS+="$p "
        PORT=$p
        return
    done
}
wait_port() { # port seconds pid
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        port_busy "$1" && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
kv() { # "line" key
    tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'
}
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}

# results.dat: peer durability produce_rate produce_p99_us e2e_rate lost dup e2e_p99_ms
#              sync_rate sync_p50_us sync_p99_us rss_mb   (n/a where not measured)
DAT=$OUT/results.dat
: >"$DAT"

# run_workloads NAME "durability" driver-or-empty port server-pid
run_workloads() {
    local name=$1 dur=$2 drv=$3 port=$4 spid=$5 p e s
    log "$name: produce"
    if [[ -n $drv ]]; then
        p=$(timeout $((RUN_SECONDS + 30)) "$drv" --port "$port" --workload produce --count "$COUNT" \
            --size "$SIZE" --inflight "$INFLIGHT" --seconds "$RUN_SECONDS" --name bench | tail -1) || FAILED=1
        log "$name: e2e"
        e=$(timeout $((RUN_SECONDS + 40)) "$drv" --port "$port" --workload e2e --count "$COUNT" \
            --size "$SIZE" --inflight "$INFLIGHT" --seconds "$RUN_SECONDS" --name bench | tail -1) || FAILED=1
        log "$name: sync"
        s=$(timeout $((SYNC_SECONDS + 30)) "$drv" --port "$port" --workload sync --count "$SYNC_COUNT" \
            --size "$SIZE" --seconds "$SYNC_SECONDS" --name bench | tail -1) || FAILED=1
    else
        local addr=127.0.0.1:$port
        p=$(timeout $((RUN_SECONDS + 30)) "$RMQ_BENCH" produce --addr "$addr" --mode async \
            --inflight "$INFLIGHT" --size "$SIZE" --count "$COUNT" --seconds "$RUN_SECONDS" \
            2>/dev/null | tail -1) || FAILED=1
        log "$name: e2e"
        e=$(timeout $((RUN_SECONDS + 90)) "$RMQ_BENCH" e2e --addr "$addr" --size "$SIZE" \
            --inflight "$INFLIGHT" --count "$COUNT" --seconds "$RUN_SECONDS" 2>/dev/null | tail -1) || FAILED=1
        log "$name: sync"
        s=$(timeout $((SYNC_SECONDS + 30)) "$RMQ_BENCH" produce --addr "$addr" --mode sync \
            --threads 1 --size "$SIZE" --count "$SYNC_COUNT" --seconds "$SYNC_SECONDS" \
            2>/dev/null | tail -1) || FAILED=1
    fi
    local rss
    rss=$(rss_mb "$spid")
    printf '%s\n%s\n%s\nrss_mb=%s\n' "$p" "$e" "$s" "$rss" | tee "$OUT/$name.txt" >&2
    local na=n/a
    local er=$na el=$na ed=$na ep=$na
    if [[ $e == e2e\ size=* ]]; then
        er=$(kv "$e" msgs/s) el=$(kv "$e" lost) ed=$(kv "$e" dup) ep=$(kv "$e" p99_delivery_ms)
    fi
    local sr sp50 sp99
    sr=$(kv "$s" msgs/s) sp50=$(kv "$s" p50_us) sp99=$(kv "$s" p99_us)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$dur" \
        "$(kv "$p" msgs/s)" "$(kv "$p" p99_us)" "$er" "$el" "$ed" "$ep" \
        "${sr:-$na}" "${sp50:-$na}" "${sp99:-$na}" "$rss" >>"$DAT"
    [[ $(kv "$p" errors) == 0 && $(kv "$s" errors) == 0 ]] || FAILED=1
}

mkdir -p "$WORK/data"

# ---- librmq: rmqd ---------------------------------------------------------------------
start_rmqd() {
    local d=$WORK/data/rmqd port
    next_port; port=$PORT
    mkdir -p "$d"
    printf 'listenPort=%s\nstorePathRootDir=%s/store\nflushDiskType=ASYNC_FLUSH\n' "$port" "$d" >"$d/broker.conf"
    "$RMQD" -c "$d/broker.conf" >"$d/log" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    if ! wait_port "$port" 20 "$pid"; then
        log "rmqd did not start"; tail -5 "$d/log" >&2; return 1
    fi
    sleep 0.5
    run_workloads librmq "rmqd, flushDiskType=ASYNC_FLUSH (ack once in the page cache; flushed every 500 ms)" "" "$port" "$pid"
    stop_pid "$pid"
}

# ---- Redis Streams --------------------------------------------------------------------
start_redis() {
    local d=$WORK/data/redis port
    next_port; port=$PORT
    mkdir -p "$d"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$d" --appendonly yes \
        --appendfsync everysec --save '' --daemonize no --logfile "$d/log" &
    local pid=$!
    PIDS+=($pid)
    if ! wait_port "$port" 20 "$pid"; then
        log "redis-server did not start"; tail -5 "$d/log" >&2; return 1
    fi
    run_workloads redis "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), appendonly yes, appendfsync everysec (reply before the fsync)" \
        "$WORK/bin/drv_redis" "$port" "$pid"
    stop_pid "$pid"
}

# ---- RabbitMQ -------------------------------------------------------------------------
start_rabbitmq() {
    local d=$WORK/data/rabbitmq port dist epmd_port
    next_port; port=$PORT
    next_port; dist=$PORT
    next_port; epmd_port=$PORT
    mkdir -p "$d/home" "$d/mnesia" "$d/log"
    : >"$d/env.conf"
    echo '[].' >"$d/enabled_plugins"
    echo 'loopback_users.guest = true' >"$d/rabbitmq.conf"
    # Our own epmd on a free port, in the foreground so that we hold its PID.
    epmd -port "$epmd_port" -address 127.0.0.1 >"$d/log/epmd.log" 2>&1 &
    PIDS+=($!)
    local node=rmqcmp$$
    (
        export HOME=$d/home ERL_EPMD_PORT=$epmd_port ERL_EPMD_ADDRESS=127.0.0.1
        export RABBITMQ_CONF_ENV_FILE=$d/env.conf RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf
        export RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config
        export RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins RABBITMQ_MNESIA_BASE=$d/mnesia
        export RABBITMQ_LOG_BASE=$d/log RABBITMQ_NODENAME=$node@localhost
        export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$dist
        export RABBITMQ_PID_FILE=$d/pid RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
        exec /usr/lib/rabbitmq/bin/rabbitmq-server
    ) >"$d/log/stdout" 2>&1 &
    local wrapper=$!
    PIDS+=($wrapper)
    if ! wait_port "$port" 90 "$wrapper"; then
        log "rabbitmq-server did not start"; tail -20 "$d/log/stdout" >&2; return 1
    fi
    local pid
    pid=$(cat "$d/pid" 2>/dev/null || true)
    [[ -n $pid ]] && PIDS+=($pid)
    run_workloads rabbitmq "rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server | sed 's/-.*//'), durable classic queue, persistent messages, publisher confirms (confirm once fsynced or consumed)" \
        "$WORK/bin/drv_rabbitmq" "$port" "${pid:-$wrapper}"
    stop_pid "$wrapper"
    [[ -n $pid ]] && stop_pid "$pid"
}

# ---- NATS JetStream -------------------------------------------------------------------
start_nats() {
    local d=$WORK/data/nats port
    next_port; port=$PORT
    mkdir -p "$d"
    nats-server -js -a 127.0.0.1 -p "$port" -sd "$d/js" >"$d/log" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    if ! wait_port "$port" 20 "$pid"; then
        log "nats-server did not start"; tail -5 "$d/log" >&2; return 1
    fi
    run_workloads nats "nats-server $(nats-server --version | sed 's/.*v//') -js, file storage (ack once written to the file; fsync every sync_interval, 2 min by default)" \
        "$WORK/bin/drv_nats" "$port" "$pid"
    stop_pid "$pid"
}

START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS
start_rmqd || { log "librmq: rmqd could not be started"; exit 1; }
start_redis || { log "Redis could not be started"; exit 1; }
start_rabbitmq || { log "RabbitMQ could not be started"; exit 1; }
start_nats || { log "NATS could not be started"; exit 1; }
log "all peers done in $((SECONDS - T0)) s"

# ---- table ----------------------------------------------------------------------------
awk -F'\t' '
function num(x) { return x ~ /^[0-9.]+$/ }
function cell(v, base, higher_is_better, fmt,   s) {
    if (!num(v)) return "n/a"
    s = sprintf(fmt, v)
    if (!self && num(base) && base > 0 && v > 0) s = s sprintf(" (%.2f×)", v / base)
    return s
}
{ row[NR] = $0 }
$1 == "librmq" { for (i = 1; i <= NF; i++) b[i] = $i }
BEGIN { label["librmq"] = "**librmq** (rmqd)"; label["redis"] = "Redis Streams"
        label["rabbitmq"] = "RabbitMQ"; label["nats"] = "NATS JetStream" }
END {
    print "| peer | produce msgs/s | produce p99 ms | produce+consume msgs/s | lost | dup | delivery p99 ms | sync msgs/s | sync p50 µs | sync p99 µs | broker RSS MB | durability |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (r = 1; r <= NR; r++) {
        n = split(row[r], f, "\t")
        self = f[1] == "librmq"
        e2e = num(f[5]) ? cell(f[5], b[5], 1, "%d") : "n/a"
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", label[f[1]],
            cell(f[3], b[3], 1, "%d"), num(f[4]) ? cell(f[4] / 1000, b[4] / 1000, 0, "%.1f") : "n/a",
            e2e, f[6], f[7], num(f[8]) ? cell(f[8], b[8], 0, "%.1f") : "n/a",
            cell(f[9], b[9], 1, "%d"), cell(f[10], b[10], 0, "%d"), cell(f[11], b[11], 0, "%d"),
            cell(f[12], b[12], 0, "%.1f"), f[2]
    }
}' "$DAT" >"$OUT/table.md"

CMD=bench/compare.sh
((DOC)) && CMD+=" --doc"
[[ $COUNT == 100000 ]] || CMD+=" --count $COUNT"
{
    echo "- Date: $START"
    echo "- \`uname -a\`: \`$(uname -a)\`"
    echo "- CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
    echo "- librmq: commit \`$COMMIT\`$DIRTY, build \`$(meson introspect --buildoptions "$BUILD" 2>/dev/null | tr ',' '\n' | grep -A3 '"name": "buildtype"' | sed -n 's/.*"value": "\([^"]*\)".*/\1/p' | head -1)\`"
    echo "- Load average (1, 5, 15 min) at the start: $LOAD0; at the end: $(cut -d' ' -f1-3 /proc/loadavg); $((SECONDS - T0)) s for the four brokers"
    echo "- Command: \`$CMD\` (1 KiB bodies; produce and produce+consume: $COUNT messages, at most $INFLIGHT unconfirmed; sync: one thread, $SYNC_COUNT messages or ${SYNC_SECONDS} s; RSS of the broker process after all three)"
    echo
    cat "$OUT/table.md"
    echo
    echo "Ratios in brackets are to librmq (rmqd) in the same run: for msgs/s above 1× means faster than librmq, for latency and RSS below 1× means lower than librmq."
} >"$OUT/results.md"

# ---- chart ----------------------------------------------------------------------------
awk -F'\t' '{ for (i = 3; i <= NF; i++) if ($i !~ /^[0-9.]+$/) $i = "NaN";
    printf "%s %s %s %s %s %s\n", $1, $3, $5, $10, $11, $12 }' "$DAT" >"$OUT/chart.dat"
gnuplot <<EOF
set terminal pngcairo size 1100,700 font ",10"
set output "$OUT/compare.png"
set datafile missing "NaN"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set grid ytics
set yrange [0:*]
set key off
set multiplot layout 2,2 title "librmq (rmqd) vs Redis Streams, RabbitMQ, NATS JetStream — 1 KiB, loopback, $START"
set title "produce, async with confirms (msgs/s, higher is better)"
plot "$OUT/chart.dat" using 2:xtic(1) lc rgb "#4477aa"
set title "produce + consume at once (msgs/s, higher is better)"
plot "$OUT/chart.dat" using 3:xtic(1) lc rgb "#66ccee"
set title "sync send, one thread: p50 / p99 latency (µs, lower is better)"
set key top left
set logscale y
set yrange [*:*]
plot "$OUT/chart.dat" using 4:xtic(1) title "p50" lc rgb "#228833", "" using 5 title "p99" lc rgb "#ccbb44"
unset logscale y
set yrange [0:*]
set key off
set title "broker RSS at the end (MB, lower is better)"
plot "$OUT/chart.dat" using 6:xtic(1) lc rgb "#ee6677"
unset multiplot
EOF

cat "$OUT/results.md"
log "results in $OUT (results.md, results.dat, compare.png)"

if ((DOC)); then
    doc=$ROOT/doc/benchmarks.md
    if grep -q '<!-- compare:begin -->' "$doc"; then
        awk -v f="$OUT/results.md" '
            /<!-- compare:begin -->/ { print; while ((getline l < f) > 0) print l; skip = 1; next }
            /<!-- compare:end -->/ { skip = 0 }
            !skip' "$doc" >"$WORK/benchmarks.md"
        cat "$WORK/benchmarks.md" >"$doc"
        log "updated $doc"
    else
        log "no <!-- compare:begin --> marker in $doc: not updated"
    fi
    cp "$OUT/compare.png" "$ROOT/doc/compare.png"
fi

if ((FAILED)); then
    log "some workloads failed (see above)"
    exit 1
fi
