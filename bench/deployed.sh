#!/usr/bin/env bash
# The deployed-topology figures of BENCHMARKS.md in one run: `zerotask bench` with separate
# broker and node processes at their defaults, beside libzmq's REQ/REP echo (before and after),
# a plain libzmq client sending JSON-RPC batches of 64, the credit sweep (the default window
# against fixed windows tuned by hand), the scaling table (1/2/4 nodes, 1/2/4 clients), and
# asynq and Celery from bench/peers. Every run is repeated REPEAT times; the raw JSON lands in
# OUT and a summary (medians) is printed.
#
#   REPEAT [3]  DURATION [2s]  OUT [a temp dir]  PEERS [1: run bench/peers/run.sh too]
#
# usage: bench/deployed.sh   (needs go, gcc + libzmq3-dev, /usr/bin/python3 with python3-zmq)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-2s}
PEERS=${PEERS:-1}
OUT=${OUT:-$(mktemp -d -t zerotask-deployed-XXXXXX)}
mkdir -p "$OUT"
say() { printf '==> %s (load %s)\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2; }

(cd "$root" && go build -o "$OUT/zerotask" ./cmd/zerotask)
gcc -O2 -o "$OUT/zbench" "$here/zmtp/zbench.c" -lzmq -lpthread
zt="$OUT/zerotask"

lat() { "$OUT/zbench" lat req-rep 64 20000 | sed 's/^RESULT //' >>"$OUT/libzmq.txt"; }

# 1. deployed, defaults, with libzmq's echo before and after each run
for i in $(seq "$REPEAT"); do
  say "libzmq REQ/REP, then zerotask bench (separate processes, defaults), run $i"
  lat
  "$zt" bench --json --duration "$DURATION" --concurrency 1024,4096 >"$OUT/deployed-$i.json" 2>>"$OUT/log"
  lat
done

# 2. a plain libzmq client: JSON-RPC batches of 64 to a broker and one node (defaults)
for i in $(seq "$REPEAT"); do
  say "pyzmq client, batches of 64, run $i"
  # Emptied here, not by the background job's redirection, which may come after the wait
  # below has read the last run's line (and then the address is read from an empty file).
  : >"$OUT/b.out"
  "$zt" broker --listen tcp://127.0.0.1:0 --pub tcp://127.0.0.1:0 --log-level warn >>"$OUT/b.out" 2>>"$OUT/log" &
  bpid=$!
  for _ in $(seq 100); do grep -q 'listening on' "$OUT/b.out" 2>/dev/null && break; sleep 0.05; done
  read -r router pub < <(sed -n 's/^broker listening on \(tcp:[^ ]*\) (PUB \(tcp:[^)]*\)).*/\1 \2/p' "$OUT/b.out")
  "$zt" node --broker "$router" --sub "$pub" --log-level warn >/dev/null 2>>"$OUT/log" &
  npid=$!
  sleep 0.5
  /usr/bin/python3 "$here/peers/zmqrpc.py" "$router" "${DURATION%s}" 64 64 >>"$OUT/zmqrpc.jsonl"
  kill "$npid"; wait "$npid" || true
  kill "$bpid"; wait "$bpid" || true
done

# 3. credit: the default window against fixed windows (--fixed-credit --prefetch N)
# Each repeat starts one window further along the list, so that no window always runs first:
# the host's speed drifts within a repeat.
windows=(default 64 512 1024 4096 8192 16384)
for i in $(seq "$REPEAT"); do
  for k in $(seq 0 $((${#windows[@]} - 1))); do
    pf=${windows[$(((i - 1 + k) % ${#windows[@]}))]}
    say "credit $pf, run $i"
    args=(--phases async,notify --duration "$DURATION" --concurrency 4096 --json)
    [ "$pf" = default ] || args+=(--fixed-credit --prefetch "$pf")
    "$zt" bench "${args[@]}" >"$OUT/credit-$pf-$i.json" 2>>"$OUT/log"
  done
done

# 4. scaling: nodes x clients
for i in $(seq "$REPEAT"); do
  for n in 1 2 4; do
    for c in 1 2 4; do
      [ "$n" = 1 ] || [ "$c" = 1 ] || [ "$n" = "$c" ] || continue
      say "scaling: $n node(s), $c client(s), run $i"
      "$zt" bench --phases async,notify --duration "$DURATION" --concurrency 1024 --nodes "$n" --clients "$c" --json \
        >"$OUT/scale-n$n-c$c-$i.json" 2>>"$OUT/log"
    done
  done
done

# 5. the peers, same run
if [ "$PEERS" = 1 ]; then
  say "bench/peers/run.sh (zerotask deployed, asynq, Celery)"
  KEEP_DIR="$OUT/peers" ZEROTASK_BENCH_ARGS="--duration 5s --concurrency 128,1024,4096" "$here/peers/run.sh" >"$OUT/peers.txt" 2>>"$OUT/log" || true
fi

/usr/bin/python3 "$here/deployed_summary.py" "$OUT"
echo "raw outputs: $OUT" >&2
