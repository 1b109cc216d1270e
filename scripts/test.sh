#!/usr/bin/env bash
# Runs every Dreamgate test, from a clean checkout:
#   1. installs what the tests need (Debian: chromium, iproute2, util-linux, redis-server, nginx; npm: web/ dev deps),
#   2. Rust: unit and integration tests (real servers on 127.0.0.1; a throwaway redis-server on a free
#      loopback port for the Redis store's tests, DREAMGATE_TEST_REDIS),
#   3. web: type check (tsc --noEmit) and unit tests (node --test),
#   4. end to end: Debian's Chromium driven by playwright-core against `dreamgate serve`,
#      inside a private network namespace that has nothing but loopback.
# Ends with one summary line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
log_dir=$(mktemp -d)
redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$log_dir"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
# Rust itself comes from the machine's toolchain (rustup); everything else is installed here.
command -v cargo >/dev/null || { echo "error: cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v unshare >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
command -v node >/dev/null || missing+=(nodejs npm)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo missing)"
# playwright-core needs Node.js 20 or newer (Debian 12's own nodejs is 18).
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "error: Node.js $(node --version) is too old for playwright-core: install Node.js 20 or newer" >&2
  exit 1
fi
echo "node: $(node --version)"

step "npm packages (web/)"
(cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

step "cargo build"
cargo build --workspace --all-targets --locked

step "redis-server for the Redis store's tests"
# A free loopback port (one nothing answers on), no persistence; stopped on exit (trap above).
start_redis() {
  local port
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$log_dir" \
      --loglevel warning >"$log_dir/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 1 50); do
      if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then redis_port=$port; return 0; fi
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$redis_pid" 2>/dev/null || true; redis_pid=""
  done
  echo "error: redis-server did not start:" >&2; cat "$log_dir/redis.log" >&2; return 1
}
start_redis
export DREAMGATE_TEST_REDIS="redis://127.0.0.1:${redis_port}/0"
echo "redis: $(redis-server --version | awk '{print $3}') on $DREAMGATE_TEST_REDIS"

step "cargo test"
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log_dir/cargo.log"

step "web: type check"
(cd web && npm run --silent typecheck)

step "web: unit tests"
(cd web && npm test --silent) 2>&1 | tee "$log_dir/web.log"

# Browser tests run in a new network namespace that has only `lo`: nothing the browser or the
# engine does can leave this machine. Without root (a developer's laptop) they fall back to the
# host's loopback.
isolated() {
  if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
    unshare -n sh -c "ip link set lo up && $1"
  else
    sh -c "$1"
  fi
}

step "WebRTC interop: Chromium publishes to / plays from dreamgate-rtc"
isolated "cargo test --offline --locked -p dreamgate-rtc --test chromium -- --ignored --test-threads=1" \
  2>&1 | tee -a "$log_dir/cargo.log"

step "end-to-end: the Dream page in Chromium against dreamgate serve"
export DREAMGATE_BIN="$root/target/debug/dreamgate"
isolated "cd web && npm run --silent e2e" 2>&1 | tee "$log_dir/e2e.log"

# One closing line over every runner: cargo's "test result:" lines and node's "# pass/# fail".
passed=$(grep -hoE 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log_dir/cargo.log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -hoE '[0-9]+ failed' "$log_dir/cargo.log" | awk '{s+=$1} END {print s+0}')
for f in "$log_dir/web.log" "$log_dir/e2e.log"; do
  p=$(grep -hE '^# pass [0-9]+' "$f" | awk '{s+=$3} END {print s+0}')
  q=$(grep -hE '^# fail [0-9]+' "$f" | awk '{s+=$3} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + q))
done
echo
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
