#!/usr/bin/env bash
# Distributed-mode benchmark (scenario 1 of issue 5): start the simulated chain,
# N API processes and M worker processes on loopback against the PostgreSQL and
# Redis given in the environment, run `order-engine bench` across the API nodes
# (round-robin, one WebSocket per order, --verify against DATABASE_URL), then
# stop exactly the processes this script started, by PID.
#
#   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/order_engine_bench \
#   REDIS_URL=redis://127.0.0.1:6379/0 \
#   scripts/bench-distributed.sh --duration 30 --concurrency 256 --verify
#
# Everything after the script name goes to `order-engine bench` (defaults below
# when none is given). The database must exist; it is migrated first.
#
# Environment (defaults):
#   APIS=2 WORKERS=2 WORKER_CONCURRENCY=100 SIM_TIME_SCALE=0
#   BENCH_TIMEOUT=900        hard cap on the bench run, seconds
#   QUEUE_NAME, BUS_PREFIX   unique per run, so other users of the Redis are untouched
#   AUTH_MODE=off RATE_LIMIT_PER_S=0   the bench is the only client (set AUTH_MODE and
#                            pass --api-key to measure authenticated requests)
#   ALLOW_REMOTE=1           allow a non-loopback DATABASE_URL / REDIS_URL host
#   KEEP_LOGS=1              keep the processes' logs (the directory is printed)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
OE="$BIN/order-engine"
: "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL database (it is migrated first)}"
: "${REDIS_URL:?set REDIS_URL, e.g. redis://127.0.0.1:6379/0}"
APIS=${APIS:-2}
WORKERS=${WORKERS:-2}
WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-100}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}
START_TIMEOUT=60

export DATABASE_URL REDIS_URL
export SIM_TIME_SCALE=${SIM_TIME_SCALE:-0}
export QUEUE_NAME=${QUEUE_NAME:-bench-$$}
export BUS_PREFIX=${BUS_PREFIX:-order-engine-bench-$$}
export AUTH_MODE=${AUTH_MODE:-off}
export RATE_LIMIT_PER_S=${RATE_LIMIT_PER_S:-0}
export LOG_FORMAT=json

host_of() {  # host_of <url>: the host part, without user info or port
  "$BIN/python" -c 'import sys; from urllib.parse import urlsplit; print(urlsplit(sys.argv[1]).hostname or "")' "$1"
}
is_loopback() {
  "$BIN/python" - "$1" <<'PY'
import ipaddress, socket, sys
host = sys.argv[1]
try:
    ok = host == "localhost" or all(
        ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None)
    )
except OSError:
    ok = False
sys.exit(0 if ok else 1)
PY
}
if [[ "${ALLOW_REMOTE:-}" != 1 ]]; then
  for url in "$DATABASE_URL" "$REDIS_URL"; do
    if ! is_loopback "$(host_of "$url")"; then
      echo "bench-distributed: $(host_of "$url") is not loopback (set ALLOW_REMOTE=1 to allow)" >&2
      exit 2
    fi
  done
fi

WORKDIR=$(mktemp -d -t order-engine-bench-dist-XXXXXX)
export WALLET_PATH="$WORKDIR/wallet.json"
PIDS=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # Workers and APIs first (they drain), the chain last; only PIDs we started.
  local ordered=()
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do ordered+=("${PIDS[$i]}"); done
  for pid in "${ordered[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${ordered[@]}"; do
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "bench-distributed: pid $pid did not stop within 30 s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${KEEP_LOGS:-}" == 1 || $status -ne 0 ]]; then
    echo "bench-distributed: logs in $WORKDIR" >&2
  else
    rm -rf "$WORKDIR"
  fi
  exit "$status"
}
trap cleanup EXIT INT TERM

free_port() {
  "$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {  # wait_http <pid> <url> <what>: until GET url is 200, the process alive
  local pid=$1 url=$2 what=$3
  for _ in $(seq 1 $((START_TIMEOUT * 10))); do
    kill -0 "$pid" 2>/dev/null || { echo "bench-distributed: $what exited while starting" >&2; return 1; }
    if "$BIN/python" -c 'import sys, urllib.request; sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)' "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "bench-distributed: $what not ready at $url within ${START_TIMEOUT} s" >&2
  return 1
}

wait_log() {  # wait_log <pid> <file> <event> <what>
  local pid=$1 file=$2 event=$3 what=$4
  for _ in $(seq 1 $((START_TIMEOUT * 10))); do
    kill -0 "$pid" 2>/dev/null || { echo "bench-distributed: $what exited while starting" >&2; return 1; }
    grep -q "\"$event\"" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench-distributed: $what did not log $event within ${START_TIMEOUT} s" >&2
  return 1
}

echo "bench-distributed: migrating $(host_of "$DATABASE_URL"); logs in $WORKDIR" >&2
"$OE" migrate >"$WORKDIR/migrate.log" 2>&1

CHAIN_PORT=$(free_port)
"$OE" chain --host 127.0.0.1 --port "$CHAIN_PORT" >"$WORKDIR/chain.log" 2>&1 &
PIDS+=($!)
CHAIN_PID=$!
wait_http "$CHAIN_PID" "http://127.0.0.1:$CHAIN_PORT/health" chain
export SOLANA_RPC_URL="http://127.0.0.1:$CHAIN_PORT"

WATCH=(--watch-pid "chain=$CHAIN_PID")
for n in $(seq 1 "$WORKERS"); do
  "$OE" worker --concurrency "$WORKER_CONCURRENCY" >"$WORKDIR/worker-$n.log" 2>&1 &
  PIDS+=($!)
  WATCH+=(--watch-pid "worker-$n=$!")
  wait_log "$!" "$WORKDIR/worker-$n.log" worker_started "worker $n"
done

# `order-engine api` requires API keys unless told otherwise on its command line.
API_FLAGS=()
if [ "$AUTH_MODE" = off ]; then API_FLAGS+=(--insecure-no-auth); fi

URLS=()
for n in $(seq 1 "$APIS"); do
  port=$(free_port)
  "$OE" api --host 127.0.0.1 --port "$port" "${API_FLAGS[@]}" >"$WORKDIR/api-$n.log" 2>&1 &
  PIDS+=($!)
  WATCH+=(--watch-pid "api-$n=$!")
  wait_http "$!" "http://127.0.0.1:$port/readyz" "api $n"
  URLS+=(--url "http://127.0.0.1:$port")
done

echo "bench-distributed: chain pid $CHAIN_PID, $WORKERS worker(s) x $WORKER_CONCURRENCY, $APIS api(s); SIM_TIME_SCALE=$SIM_TIME_SCALE" >&2
if [[ $# -eq 0 ]]; then
  set -- --duration 30 --concurrency 256 --orders 1000000 --drain-timeout 60 --verify
fi
timeout --kill-after=60 "$BENCH_TIMEOUT" "$OE" bench "${URLS[@]}" --database-url "$DATABASE_URL" "${WATCH[@]}" "$@"
