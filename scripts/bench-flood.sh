#!/usr/bin/env bash
# Floods against one `dreamgate serve` (daydream mode, in front of `dreamgate engine` on
# loopback), measured in one run and printed side by side as ratios:
#
#   fresh        GET /api/daydream/config (no cookie) and the status route (a session's cookie)
#   during       the status route for the cookie holder while 1,000,000 cookieless requests run
#   after        both again once the cookieless flood is over (target: >= 0.9x fresh)
#   RSS          idle, after the flood, and after 20,000 connections opened at once (each sends
#                one request) and closed again (memory must be returned)
#
# Usage: scripts/bench-flood.sh [--bin PATH] [--requests N] [--connections-flood N] [--duration SECS]
#   --bin                a release `dreamgate` (default: cargo build --release -p dreamgate)
#   --requests           cookieless requests in the flood (default 1000000)
#   --connections-flood  connections opened at once (default 20000)
#   --duration           seconds per measured wrk run (default 10)
#
# Installs wrk and curl from Debian when missing (apt-get; needs root). Everything listens on
# 127.0.0.1 only and is stopped when the script exits (trap).
set -euo pipefail

BIN=""
REQUESTS=1000000
CONNS=20000
DURATION=10
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;;
        --requests) REQUESTS="$2"; shift 2 ;;
        --connections-flood) CONNS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH_NAME=bench-flood
# shellcheck source=lib/bench.sh
. "$ROOT/scripts/lib/bench.sh"

bench_install wrk curl
bench_workdir
bench_binary "$ROOT"
bench_engine

PORT="$(free_port)"
GW="http://127.0.0.1:$PORT"
# The connection flood comes from one address: let it hold all its connections (the point is
# what they cost, not the per-peer cap, which has its own tests).
DAYDREAM_API_KEY="$KEY" DAYDREAM_API_GATEWAY="$ENGINE" DAYDREAM_WHIP_ALLOW_DEV=1 DREAMGATE_LOG=warn \
    "$BIN" serve --listen "127.0.0.1:$PORT" --reap-after 3600 \
    --max-connections $((CONNS + 1000)) --max-connections-per-ip $((CONNS + 1000)) \
    >"$WORK/gw.out" 2>"$WORK/gw.err" &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "$GW/healthz" "$WORK/gw.err"

body="$(curl -s -D "$WORK/create.headers" -H "Origin: $GW" -H 'Content-Type: application/json' \
    --data-binary "$("$BIN" params defaults)" "$GW/api/daydream/streams")"
ID="$(printf '%s' "$body" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)"
COOKIE="$(sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' "$WORK/create.headers" | head -1)"
[ -n "$ID" ] && [ -n "$COOKIE" ] || { echo "create failed: $body" >&2; exit 1; }
STATUS="$GW/api/daydream/streams/$ID/status"

declare -A RPS P50 P99
# leg NAME URL [wrk args...]
leg() {
    local name="$1" url="$2"; shift 2
    wrk -t2 -c32 -d"${DURATION}s" --latency "$@" "$url" >"$WORK/$name.wrk"
    RPS[$name]="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$WORK/$name.wrk")"
    P50[$name]="$(to_ms "$(awk '$1 == "50%" {print $2}' "$WORK/$name.wrk")")"
    P99[$name]="$(to_ms "$(awk '$1 == "99%" {print $2}' "$WORK/$name.wrk")")"
    if grep -q 'Non-2xx' "$WORK/$name.wrk"; then say "$name: $(grep 'Non-2xx' "$WORK/$name.wrk")"; fi
}

RSS_IDLE="$(rss_kib "$GW_PID")"
say "fresh: /config and status ($DURATION s each)"
wrk -t2 -c32 -d2s "$GW/api/daydream/config" >/dev/null
leg config_fresh "$GW/api/daydream/config"
leg status_fresh "$STATUS" -H "Cookie: $COOKIE"

say "flood: $REQUESTS cookieless requests, the cookie holder's status measured meanwhile"
# wrk stops by time, not by count: run long enough for $REQUESTS at the fresh /config rate.
FLOOD_SECS="$(awk -v n="$REQUESTS" -v r="${RPS[config_fresh]}" 'BEGIN { s = int(n / (r > 0 ? r : 1000) * 1.1) + 1; print s }')"
FLOOD_START="$(date +%s.%N)"
wrk -t2 -c64 -d"${FLOOD_SECS}s" "$GW/api/daydream/config" >"$WORK/flood.wrk" &
FLOOD_PID=$!
PIDS+=("$FLOOD_PID")
sleep 1
leg status_during "$STATUS" -H "Cookie: $COOKIE"
wait "$FLOOD_PID" || true
FLOOD_S="$(awk -v a="$FLOOD_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
FLOODED="$(awk '/requests in/ {print $1}' "$WORK/flood.wrk")"
RSS_FLOOD="$(rss_kib "$GW_PID")"

say "after the flood"
leg config_after "$GW/api/daydream/config"
leg status_after "$STATUS" -H "Cookie: $COOKIE"

say "$CONNS connections at once, each with one request, then all closed"
python3 - "$PORT" "$CONNS" <<'EOF'
import asyncio, resource, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
async def one(held):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /api/daydream/config HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
    await w.drain()
    await r.readuntil(b"\r\n\r\n")
    held.append(w)
async def main():
    held = []
    sem = asyncio.Semaphore(500)
    async def limited():
        async with sem:
            await one(held)
    results = await asyncio.gather(*(limited() for _ in range(n)), return_exceptions=True)
    failed = sum(1 for r in results if isinstance(r, Exception))
    print(f"held {len(held)} connections ({failed} failed)", file=sys.stderr)
    for w in held:
        w.close()
asyncio.run(main())
EOF
RSS_CONN_PEAK="$(awk '/^VmHWM:/ {print $2}' "/proc/$GW_PID/status")"
sleep 3
RSS_CONN_AFTER="$(rss_kib "$GW_PID")"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
echo
echo "dreamgate serve under floods ($(nproc) cores; wrk -t2 -c32, ${DURATION} s per run)"
printf '%-34s %10s %9s %9s %10s\n' "run" "req/s" "p50 ms" "p99 ms" "vs fresh"
for name in config_fresh config_after status_fresh status_during status_after; do
    base="${name%_*}_fresh"
    printf '%-34s %10s %9s %9s %10s\n' "$name" "${RPS[$name]}" "${P50[$name]}" "${P99[$name]}" "$(ratio "${RPS[$name]}" "${RPS[$base]}")"
done
echo "cookieless flood: $FLOODED requests in $FLOOD_S s"
echo "RSS: idle $(mib "$RSS_IDLE"), after the flood $(mib "$RSS_FLOOD"), peak with $CONNS connections $(mib "$RSS_CONN_PEAK"), after they closed $(mib "$RSS_CONN_AFTER")"
