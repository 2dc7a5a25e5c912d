#!/usr/bin/env bash
# Measures `zerotask bench` on a broker in memory and on a durable broker (Redis store), in the
# same run, beside Redis's own ceiling on this machine (redis-benchmark, pipelined SET and
# LPUSH): the numbers behind BENCHMARKS.md's "Durable mode" section.
#
#   bench/store/run.sh [rounds]            (default 2 rounds of memory, then Redis)
#   OLD=<git rev> bench/store/run.sh [rounds]
#
# With OLD, each round runs the broker built from that revision and the one built from the
# working tree, in turn (the order swapped every round), both on the same redis-server, so
# that a change is measured against its base on the same machine at the same time.
# On Redis each phase runs as a bench of its own, after which the script prints
# redis-server's CPU time (user + system, /proc) per task held in it (the store's claim
# sequence counts them, the bench's 1,000 warm-up calls included): the steadier figure on a
# shared machine, where throughput follows the other load.
#
# It starts its own redis-server (Debian's package) on a free loopback port, with the
# append-only file on (appendfsync everysec) as docs/durability.md advises, and stops it by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
dur=${DURATION:-5s}
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$tmp" --appendonly yes --save '' \
  --maxmemory-policy noeviction >"$tmp/redis.log" 2>&1 &
rpid=$!
trap 'kill "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
go build -o "$tmp/zerotask" ./cmd/zerotask
bins=("$tmp/zerotask")
names=("new")
if [ -n "${OLD:-}" ]; then
  mkdir "$tmp/old"
  git archive "$OLD" | tar -x -C "$tmp/old"
  (cd "$tmp/old" && go build -o "$tmp/zerotask-old" ./cmd/zerotask)
  bins=("$tmp/zerotask-old" "$tmp/zerotask")
  names=("old ($OLD)" "new (working tree)")
fi
# redis_cpu prints redis-server's CPU time so far in clock ticks.
redis_cpu() { awk '{print $14 + $15}' "/proc/$rpid/stat"; }
hz=$(getconf CLK_TCK)
echo "machine: $(nproc) CPUs, $(uname -sm), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "redis: $(redis-server --version | cut -d' ' -f3) on 127.0.0.1:$port, appendonly yes"
for r in $(seq "$rounds"); do
  order=("${!bins[@]}")
  if [ $((r % 2)) -eq 0 ] && [ ${#bins[@]} -gt 1 ]; then order=(1 0); fi
  for i in "${order[@]}"; do
    echo "== round $r: memory, ${names[$i]}"
    "${bins[$i]}" bench --duration "$dur"
    # One bench per phase on Redis, so that each phase has its redis-server CPU per task.
    for phase in sync async notify; do
      echo "== round $r: redis, ${names[$i]}, $phase"
      redis-cli -p "$port" flushall >/dev/null
      c0=$(redis_cpu)
      "${bins[$i]}" bench --duration "$dur" --phases "$phase" --store "redis://127.0.0.1:$port/0"
      c1=$(redis_cpu)
      n=$(redis-cli -p "$port" get zerotask:seq)
      awk -v c="$((c1 - c0))" -v hz="$hz" -v n="${n:-0}" -v ph="$phase" 'BEGIN { if (n > 0) printf "redis-server CPU per task, %s: %.2f us (%d tasks held, with the warm-up)\n", ph, c / hz * 1e6 / n, n }'
    done
  done
done
echo "== redis-benchmark (the server's own ceiling: pipelined, 50 clients)"
redis-benchmark -p "$port" -n 2000000 -P 64 -t set,lpush --csv
