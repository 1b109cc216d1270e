# Shared by the scripts/bench-*.sh benchmarks (sourced, not run). Before sourcing, a script
# sets BENCH_NAME (for messages and its work directory). It provides:
#
#   say MSG...              a "<BENCH_NAME>: MSG" line on stderr
#   bench_install TOOL[:PKG]...
#                           installs from Debian (apt-get; needs root) the packages of the
#                           tools that are missing (PKG defaults to TOOL)
#   bench_workdir           WORK (a fresh temporary directory) and PIDS (processes to stop);
#                           on exit, calls bench_on_exit if the script defines it, stops every
#                           process in PIDS and removes WORK
#   bench_binary ROOT       BIN: a private copy of $BIN, or of a release build of ROOT when
#                           BIN is empty (another build may replace the original meanwhile)
#   bench_engine            KEY (a random API key), ENGINE (its URL), ENGINE_PID:
#                           `dreamgate engine` on a free 127.0.0.1 port, logging warnings
#   free_port               a 127.0.0.1 port nothing answers on, below Linux's ephemeral range
#                           (32768 and up), which a connection flood fills with TIME_WAITs
#   wait_http URL [LOG]     until URL answers (at most 15 s; otherwise prints LOG, the
#                           server's stderr, and exits)
#   rss_kib PID, hwm_kib PID
#                           VmRSS / VmHWM (peak) of a process, in KiB
#   to_ms VALUE             wrk's "812.00us" / "1.23ms" / "1.02s" / "1.5m" in milliseconds
#
# Everything listens on 127.0.0.1 only.

say() { echo "$BENCH_NAME: $*" >&2; }

bench_install() {
    local missing=() spec tool
    for spec in "$@"; do
        tool="${spec%%:*}"
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("${spec#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} from Debian"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

bench_cleanup() {
    local pid
    if declare -F bench_on_exit >/dev/null; then bench_on_exit || true; fi
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}

bench_workdir() {
    WORK="$(mktemp -d "/tmp/$BENCH_NAME.XXXXXX")"
    PIDS=()
    trap bench_cleanup EXIT INT TERM
}

bench_binary() {
    if [ -z "$BIN" ]; then
        say "building the release binary (cargo build --release -p dreamgate)"
        BIN="$(cd "$1" && cargo build --release -p dreamgate --message-format=json 2>/dev/null \
            | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)"
        [ -n "$BIN" ] || { echo "cannot find the built binary" >&2; exit 1; }
    fi
    cp "$BIN" "$WORK/dreamgate"
    BIN="$WORK/dreamgate"
}

bench_engine() {
    KEY="bench_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    DREAMGATE_LOG=warn "$BIN" engine --listen 127.0.0.1:0 --api-key "$KEY" >"$WORK/engine.out" 2>"$WORK/engine.err" &
    ENGINE_PID=$!
    PIDS+=("$ENGINE_PID")
    local _
    for _ in $(seq 100); do [ -s "$WORK/engine.out" ] && break; sleep 0.1; done
    ENGINE="$(head -1 "$WORK/engine.out")"
    [ -n "$ENGINE" ] || { cat "$WORK/engine.err" >&2; exit 1; }
}

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
}

wait_http() {
    local _
    for _ in $(seq 150); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "nothing answers at $1" >&2
    if [ -n "${2:-}" ] && [ -s "$2" ]; then echo "its log ($2):" >&2; tail -20 "$2" >&2; fi
    exit 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n = n * 60000; else if (v ~ /s$/) n = n * 1000
        printf "%.3f", n }'
}
