#!/usr/bin/env bash
# Runs `zerotask bench --json`, the asynq peer and the Celery peer in one go, on this machine, and
# prints one table: mode x system, tasks/s, p50/p99, and ZeroTask's tasks/s over each peer's.
#
# It installs what is missing (redis-server, python3-celery, python3-redis, with apt-get as root),
# starts its own redis-server on a free 127.0.0.1 port (no persistence, in a temp dir), and stops
# it by PID on exit. Each peer stops its own worker. Sizes (environment, defaults in brackets):
#
#   PHASE_SECONDS [5]         each peer phase stops sending after this many seconds...
#   RESULTS_N [20000]         ...or after this many tasks (with_results),
#   NOTIFY_N [50000]          ...or this many (fire_and_forget),
#   ASYNQ_SYNC_N [10]         ...or this many (sync, asynq: about 1 s each, its poll tick),
#   ASYNQ_SYNC_SECONDS [10]   asynq's sync phase time cap,
#   CELERY_SYNC_N [2000]      ...or this many (sync, Celery).
#   WORKER_CONCURRENCY [8]    asynq server Concurrency and Celery worker --concurrency
#   INFLIGHT [128]            with_results: tasks in flight, for both peers
#   ASYNQ_POLL [10ms]         asynq: interval between GetTaskInfo polls for a result
#   ASYNQ_TASK_CHECK_INTERVAL [0 = asynq's default, 1s]
#   ASYNQ_ENQUEUERS [4]       asynq fire_and_forget: enqueueing goroutines
#   CELERY_POOL [prefork]     Celery worker --pool (prefork, threads or solo)
#   DRAIN_SECONDS [60]        how long a phase waits for outstanding tasks
#   ZEROTASK_BENCH_ARGS ["--duration ${PHASE_SECONDS}s --concurrency ${INFLIGHT}"]
#                             arguments for `zerotask bench --json` (its nodes: its own defaults)
#   ZEROTASK_STORE []         "redis": ZeroTask's broker runs durable on the same redis-server as
#                             asynq (--store redis://...), every task written to Redis first
#   ZEROTASK_TIMEOUT [300]    seconds before the ZeroTask run is stopped
#   SYSTEMS ["zerotask asynq celery"]  which to run
#   KEEP_DIR []               if set, the raw outputs and logs are copied there
#
# usage: bench/peers/run.sh          (from anywhere; needs go, and root to install packages)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export DEBIAN_FRONTEND=noninteractive

PHASE_SECONDS=${PHASE_SECONDS:-5}
RESULTS_N=${RESULTS_N:-20000}
NOTIFY_N=${NOTIFY_N:-50000}
ASYNQ_SYNC_N=${ASYNQ_SYNC_N:-10}
ASYNQ_SYNC_SECONDS=${ASYNQ_SYNC_SECONDS:-10}
CELERY_SYNC_N=${CELERY_SYNC_N:-2000}
WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-8}
INFLIGHT=${INFLIGHT:-128}
ASYNQ_POLL=${ASYNQ_POLL:-10ms}
ASYNQ_TASK_CHECK_INTERVAL=${ASYNQ_TASK_CHECK_INTERVAL:-0}
ASYNQ_ENQUEUERS=${ASYNQ_ENQUEUERS:-4}
CELERY_POOL=${CELERY_POOL:-prefork}
DRAIN_SECONDS=${DRAIN_SECONDS:-60}
ZEROTASK_BENCH_ARGS=${ZEROTASK_BENCH_ARGS-"--duration ${PHASE_SECONDS}s --concurrency ${INFLIGHT}"}
ZEROTASK_TIMEOUT=${ZEROTASK_TIMEOUT:-300}
SYSTEMS=${SYSTEMS:-zerotask asynq celery}
PY=/usr/bin/python3 # Debian's, where python3-celery and python3-redis live

say() { printf '\n==> %s\n' "$*" >&2; }
wants() { [[ " $SYSTEMS " == *" $1 "* ]]; }

# --- install what is missing -------------------------------------------------------------------
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
if wants celery; then
  "$PY" -c 'import celery' >/dev/null 2>&1 || need+=(python3-celery)
  "$PY" -c 'import redis' >/dev/null 2>&1 || need+=(python3-redis)
fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "run as root, or install these Debian packages first: ${need[*]}" >&2
    exit 1
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# Debian's redis-server package may start a server of its own on 6379: this script does not use
# it and leaves it alone.

# --- our own redis-server, stopped on exit ---------------------------------------------------
tmp=$(mktemp -d -t zerotask-peers-XXXXXX)
redis_pid=""
cleanup() {
  local rc=$?
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  if [ -n "${KEEP_DIR:-}" ]; then
    mkdir -p "$KEEP_DIR" && cp -r "$tmp"/. "$KEEP_DIR"/ && echo "raw outputs and logs kept in $KEEP_DIR" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
  --logfile "$tmp/redis.log" --daemonize no &
redis_pid=$!
for _ in $(seq 1 100); do
  redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
  kill -0 "$redis_pid" 2>/dev/null || { cat "$tmp/redis.log" >&2; exit 1; }
  sleep 0.1
done
redis-cli -p "$port" ping | grep -q PONG || { echo "redis-server did not answer on $port" >&2; exit 1; }
say "redis-server $(redis-server --version | awk '{print $3}') on 127.0.0.1:$port (pid $redis_pid)"

# --- ZeroTask --------------------------------------------------------------------------------
touch "$tmp/zerotask.json" "$tmp/asynq.jsonl" "$tmp/celery.jsonl"
if wants zerotask; then
  if [ "${ZEROTASK_STORE:-}" = redis ]; then
    ZEROTASK_BENCH_ARGS="$ZEROTASK_BENCH_ARGS --store redis://127.0.0.1:$port/0"
  fi
  say "zerotask bench --json $ZEROTASK_BENCH_ARGS"
  # Built first, then run: the same as `go run ./cmd/zerotask bench --json`, without the build in
  # the measured process's lifetime.
  if (cd "$root" && go build -o "$tmp/zerotask" ./cmd/zerotask) 2>"$tmp/zerotask.build.log"; then
    # shellcheck disable=SC2086
    if ! timeout "$ZEROTASK_TIMEOUT" "$tmp/zerotask" bench --json $ZEROTASK_BENCH_ARGS \
      >"$tmp/zerotask.json" 2>"$tmp/zerotask.log"; then
      echo "ZeroTask: 'zerotask bench --json' failed or is not ready yet (last lines below);" \
        "continuing with the peers." >&2
      tail -n 5 "$tmp/zerotask.log" >&2 || true
      : >"$tmp/zerotask.json"
    fi
  else
    echo "ZeroTask: ./cmd/zerotask does not build (last lines below); continuing with the peers." >&2
    tail -n 5 "$tmp/zerotask.build.log" >&2 || true
  fi
fi

# --- asynq -----------------------------------------------------------------------------------
if wants asynq; then
  redis-cli -p "$port" flushall >/dev/null
  say "asynq peer (concurrency $WORKER_CONCURRENCY, $INFLIGHT in flight, poll $ASYNQ_POLL)"
  if (cd "$here/asynq" && go build -o "$tmp/asynqpeer" .) 2>"$tmp/asynq.build.log"; then
    "$tmp/asynqpeer" -redis "127.0.0.1:$port" -concurrency "$WORKER_CONCURRENCY" \
      -inflight "$INFLIGHT" -poll "$ASYNQ_POLL" -task-check-interval "$ASYNQ_TASK_CHECK_INTERVAL" \
      -enqueuers "$ASYNQ_ENQUEUERS" -duration "${PHASE_SECONDS}s" \
      -sync-n "$ASYNQ_SYNC_N" -sync-duration "${ASYNQ_SYNC_SECONDS}s" \
      -results-n "$RESULTS_N" -notify-n "$NOTIFY_N" -drain-timeout "${DRAIN_SECONDS}s" \
      >"$tmp/asynq.jsonl" 2>"$tmp/asynq.log" || {
      echo "asynq peer failed (last lines below)" >&2
      tail -n 5 "$tmp/asynq.log" >&2
    }
  else
    echo "asynq peer does not build (last lines below)" >&2
    tail -n 5 "$tmp/asynq.build.log" >&2
  fi
fi

# --- Celery ----------------------------------------------------------------------------------
if wants celery; then
  redis-cli -p "$port" flushall >/dev/null
  say "Celery peer (pool $CELERY_POOL, concurrency $WORKER_CONCURRENCY, $INFLIGHT in flight)"
  "$PY" "$here/celery/celerypeer.py" --redis "127.0.0.1:$port" \
    --concurrency "$WORKER_CONCURRENCY" --pool "$CELERY_POOL" --inflight "$INFLIGHT" \
    --duration "$PHASE_SECONDS" --sync-n "$CELERY_SYNC_N" --results-n "$RESULTS_N" \
    --notify-n "$NOTIFY_N" --drain-timeout "$DRAIN_SECONDS" \
    >"$tmp/celery.jsonl" 2>"$tmp/celery.log" || {
    echo "Celery peer failed (last lines below)" >&2
    tail -n 5 "$tmp/celery.log" >&2
  }
fi

# --- the table -------------------------------------------------------------------------------
say "raw results"
cat "$tmp/zerotask.json" "$tmp/asynq.jsonl" "$tmp/celery.jsonl"
say "results ($(nproc) CPUs, $(uname -m); load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
peers=()
wants asynq && peers+=("asynq=$tmp/asynq.jsonl")
wants celery && peers+=("celery=$tmp/celery.jsonl")
zt=()
wants zerotask && zt=(--zerotask "$tmp/zerotask.json")
"$PY" "$here/table.py" "${zt[@]}" "${peers[@]}"
