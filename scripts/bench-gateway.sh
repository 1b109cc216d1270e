#!/usr/bin/env bash
# Side-by-side benchmark of the status route, in one run, against one engine on loopback:
#
#   engine   wrk -> engine           GET /v1/streams/<id>/status (Bearer key)
#   nginx    wrk -> nginx -> engine  GET /v1/streams/<id>/status (nginx sets the Bearer
#                                    header; 2 workers, upstream keep-alive)
#   gateway  wrk -> dreamgate serve -> engine
#                                    GET /api/daydream/streams/<id>/status (session cookie),
#                                    in-process store; and with Redis too when redis-server is
#                                    installed and `dreamgate serve --help` lists --store
#
# Prints req/s, p50 and p99 per leg, the gateway/nginx ratios, the p50 latency each proxy adds
# to the engine's, the upstream status calls per request (the gateway coalesces polls of one
# stream that are in flight together; nginx forwards each), and the gateway's RSS idle and
# under load (peak).
#
# Usage: scripts/bench-gateway.sh [--bin PATH] [--duration SECS] [--threads N] [--connections N]
#                                 [--streams N]
#   --bin          a release `dreamgate` binary (default: cargo build --release -p dreamgate)
#   --duration     seconds of measured load per leg (default 10; each leg also warms up 2 s)
#   --threads      wrk threads (default 2)
#   --connections  wrk connections (default 32)
#   --streams      streams polled, round robin, each by its own session (default 1)
#
# Installs nginx and wrk from Debian when missing (apt-get; needs root). Everything listens on
# 127.0.0.1 only, and everything the script starts is stopped when it exits (trap).
set -euo pipefail

BIN=""
DURATION=10
THREADS=2
CONNECTIONS=32
STREAMS=1
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --streams) STREAMS="$2"; shift 2 ;;
        -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH_NAME=bench-gateway
# shellcheck source=lib/bench.sh
. "$ROOT/scripts/lib/bench.sh"

bench_install nginx wrk curl
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
NGINX_PID=""
bench_on_exit() { # nginx's master first: it stops its workers
    if [ -n "$NGINX_PID" ]; then kill -QUIT "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
}
bench_workdir
bench_binary "$ROOT"

# cpu_ticks PID...: user + system CPU time of these processes (all threads), in clock ticks
cpu_ticks() {
    local pid total=0 t
    for pid in "$@"; do
        t="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
        total=$((total + t))
    done
    echo "$total"
}
TCK="$(getconf CLK_TCK)"

# ---- the engine ----------------------------------------------------------------------------
bench_engine
PAYLOAD="$("$BIN" params defaults)"

# ---- a gateway in front of it --------------------------------------------------------------
# start_gateway NAME [serve args...]: sets GW_URL and GW_PID
start_gateway() {
    local name="$1"; shift
    local port; port="$(free_port)"
    DAYDREAM_API_KEY="$KEY" DAYDREAM_API_GATEWAY="$ENGINE" DAYDREAM_WHIP_ALLOW_DEV=1 DREAMGATE_LOG=warn \
        "$BIN" serve --listen "127.0.0.1:$port" --reap-after 3600 --orphans off \
        --max-live-streams-per-ip 0 --max-creates-per-minute-per-ip 0 "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    GW_URL="http://127.0.0.1:$port"
    wait_http "$GW_URL/healthz" "$WORK/$name.err"
}

# create_streams GW_URL: $STREAMS streams through the gateway, each by a new session; writes
# their status paths on the gateway to $WORK/gw.paths, their cookies to $WORK/gw.hdrs, and
# their status paths on the engine to $WORK/engine.paths (a line each)
create_streams() {
    : >"$WORK/gw.paths"; : >"$WORK/gw.hdrs"; : >"$WORK/engine.paths"; : >"$WORK/none.hdrs"
    local i
    for i in $(seq "$STREAMS"); do
        create_stream "$1"
        echo "/api/daydream/streams/$STREAM_ID/status" >>"$WORK/gw.paths"
        echo "Cookie: $COOKIE" >>"$WORK/gw.hdrs"
        echo "/v1/streams/$STREAM_ID/status" >>"$WORK/engine.paths"
        echo >>"$WORK/none.hdrs"
    done
}

# create_stream GW_URL: a stream through the gateway (POST with Origin); sets STREAM_ID and COOKIE
create_stream() {
    local body
    body="$(curl -s -D "$WORK/create.headers" -H "Origin: $1" -H 'Content-Type: application/json' \
        --data-binary "$PAYLOAD" "$1/api/daydream/streams")"
    STREAM_ID="$(printf '%s' "$body" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)"
    COOKIE="$(sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' "$WORK/create.headers" | head -1)"
    if [ -z "$STREAM_ID" ] || [ -z "$COOKIE" ]; then
        echo "create through the gateway failed: $body" >&2; exit 1
    fi
}

# ---- wrk -----------------------------------------------------------------------------------
# A wrk script: each request takes the next line of <leg>.paths as its path and the same line
# of <leg>.hdrs (a "Name: value" header, or empty) on top of wrk's own headers.
cat >"$WORK/rr.lua" <<'LUA'
local leg = os.getenv("BENCH_LEG")
local paths, hdrs = {}, {}
for l in io.lines(leg .. ".paths") do paths[#paths + 1] = l end
for l in io.lines(leg .. ".hdrs") do hdrs[#hdrs + 1] = l end
local i = 0
request = function()
  i = i % #paths + 1
  local h = {}
  for k, v in pairs(wrk.headers) do h[k] = v end
  local name, value = (hdrs[i] or ""):match("^([^:]+):%s*(.*)$")
  if name then h[name] = value end
  return wrk.format("GET", paths[i], h)
end
LUA

# route_calls URL: the gateway's upstream status calls made for the status route so far
route_calls() {
    curl -s "$1/metrics" | awk '/^dreamgate_upstream_status_calls_total\{caller="route"\}/ {n = $2} END {print n + 0}'
}

declare -A RPS P50 P99 CPU_PROXY CPU_ENGINE CALLS
PROXY_PIDS=()
# run_leg NAME BASE PATHS HDRS [wrk header args...]: warm-up, then the measured run, round robin
# over the lines of the files PATHS and HDRS; the CPU time that the engine and the proxy in
# between ($PROXY_PIDS) spent per request
run_leg() {
    local name="$1" base="$2" paths="$3" hdrs="$4"; shift 4
    local code e0 p0 e1 p1 c0 c1 requests first
    cp "$paths" "$WORK/leg-$name.paths"; cp "$hdrs" "$WORK/leg-$name.hdrs"
    first="$(head -1 "$hdrs")"
    code="$(curl -s -o /dev/null -w '%{http_code}' "$@" ${first:+-H "$first"} "$base$(head -1 "$paths")")"
    [ "$code" = 200 ] || { echo "$name: $base$(head -1 "$paths") answers $code" >&2; exit 1; }
    BENCH_LEG="$WORK/leg-$name" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$WORK/rr.lua" "$@" "$base" >/dev/null
    e0="$(cpu_ticks "$ENGINE_PID")"
    p0="$(cpu_ticks "${PROXY_PIDS[@]}")"
    [ -z "${CALLS_URL:-}" ] || c0="$(route_calls "$CALLS_URL")"
    BENCH_LEG="$WORK/leg-$name" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/rr.lua" "$@" "$base" \
        >"$WORK/$name.wrk"
    e1="$(cpu_ticks "$ENGINE_PID")"
    p1="$(cpu_ticks "${PROXY_PIDS[@]}")"
    requests="$(awk '/requests in/ {print $1}' "$WORK/$name.wrk")"
    if [ -n "${CALLS_URL:-}" ]; then
        c1="$(route_calls "$CALLS_URL")"
        CALLS[$name]="$(awk -v c=$((c1 - c0)) -v n="$requests" 'BEGIN { printf "%.2f", c / n }')"
    fi
    CPU_ENGINE[$name]="$(awk -v t=$((e1 - e0)) -v n="$requests" -v k="$TCK" 'BEGIN { printf "%.0f", t / k * 1e6 / n }')"
    CPU_PROXY[$name]="$(awk -v t=$((p1 - p0)) -v n="$requests" -v k="$TCK" 'BEGIN { printf "%.0f", t / k * 1e6 / n }')"
    RPS[$name]="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$WORK/$name.wrk")"
    P50[$name]="$(to_ms "$(awk '$1 == "50%" {print $2}' "$WORK/$name.wrk")")"
    P99[$name]="$(to_ms "$(awk '$1 == "99%" {print $2}' "$WORK/$name.wrk")")"
    if grep -q 'Non-2xx' "$WORK/$name.wrk"; then
        say "$name: $(grep 'Non-2xx' "$WORK/$name.wrk")"
    fi
}

# gateway_leg NAME: the measured run against $GW_URL on the streams of create_streams, with the
# gateway's RSS idle (before) and peak (VmHWM, after) and its upstream status calls per request
# (measured run); then ends the streams
declare -A RSS_IDLE RSS_LOAD
gateway_leg() {
    local name="$1" cookie
    PROXY_PIDS=("$GW_PID")
    RSS_IDLE[$name]="$(rss_kib "$GW_PID")"
    CALLS_URL="$GW_URL" run_leg "$name" "$GW_URL" "$WORK/gw.paths" "$WORK/gw.hdrs"
    RSS_LOAD[$name]="$(hwm_kib "$GW_PID")"
    while read -r cookie; do
        curl -s -o /dev/null -X POST -H "Origin: $GW_URL" -H "$cookie" "$GW_URL/api/daydream/streams/end"
    done <"$WORK/gw.hdrs"
}

# ---- the legs ------------------------------------------------------------------------------
start_gateway gateway
say "creating $STREAMS stream(s)"
create_streams "$GW_URL"

say "engine directly"
PROXY_PIDS=()
run_leg engine "$ENGINE" "$WORK/engine.paths" "$WORK/none.hdrs" -H "Authorization: Bearer $KEY"

say "nginx (2 workers, upstream keep-alive)"
NGINX_PORT="$(free_port)"
mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream engine {
        server ${ENGINE#http://};
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /v1/streams/ {
            proxy_pass http://engine;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer $KEY";
        }
    }
}
EOF
"$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
wait_http "http://127.0.0.1:$NGINX_PORT/" "$WORK/nginx/logs/error.log"
mapfile -t PROXY_PIDS < <(pgrep -P "$NGINX_PID")
run_leg nginx "http://127.0.0.1:$NGINX_PORT" "$WORK/engine.paths" "$WORK/none.hdrs"

say "gateway, in-process store"
gateway_leg gateway
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true

LEGS=(engine nginx gateway)
if command -v redis-server >/dev/null 2>&1 && "$BIN" serve --help | grep -q -- '--store'; then
    say "gateway, Redis store"
    REDIS_PORT="$(free_port)"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    start_gateway gateway-redis --store "redis://127.0.0.1:$REDIS_PORT/0"
    create_streams "$GW_URL"
    gateway_leg gateway-redis
    LEGS+=(gateway-redis)
else
    say "no Redis leg (needs redis-server and a dreamgate serve with --store)"
fi

# ---- report --------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo
echo "status route, $STREAMS stream(s) round robin, ${DURATION} s per leg, wrk -t$THREADS -c$CONNECTIONS, loopback, $(nproc) CPUs"
echo
echo "| leg | req/s | p50 ms | p99 ms | req/s vs nginx | p50 added vs engine (ms) | upstream calls / req | proxy CPU µs/req | engine CPU µs/req | RSS idle / under load (MiB) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for leg in "${LEGS[@]}"; do
    rss="-"
    if [ -n "${RSS_IDLE[$leg]:-}" ]; then rss="$(mib "${RSS_IDLE[$leg]}") / $(mib "${RSS_LOAD[$leg]}")"; fi
    added="-"
    [ "$leg" != engine ] && added="$(minus "${P50[$leg]}" "${P50[engine]}")"
    vs="-"
    [ "$leg" != engine ] && vs="$(ratio "${RPS[$leg]}" "${RPS[nginx]}")"
    proxy="-"
    [ "$leg" != engine ] && proxy="${CPU_PROXY[$leg]}"
    calls="${CALLS[$leg]:-1.00}"
    [ "$leg" = engine ] && calls="-"
    echo "| $leg | ${RPS[$leg]} | ${P50[$leg]} | ${P99[$leg]} | $vs | $added | $calls | $proxy | ${CPU_ENGINE[$leg]} | $rss |"
done
