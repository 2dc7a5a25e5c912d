#!/usr/bin/env bash
# Measures `zerotask bench` on a broker in memory and on a durable broker (Redis store), in the
# same run, beside Redis's own ceiling on this machine (redis-benchmark, pipelined SET and
# LPUSH): the numbers behind BENCHMARKS.md's "Durable mode" section.
#
#   bench/store/run.sh [rounds]      (default 2 rounds of memory, then Redis)
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
echo "machine: $(nproc) CPUs, $(uname -sm), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "redis: $(redis-server --version | cut -d' ' -f3) on 127.0.0.1:$port, appendonly yes"
for r in $(seq "$rounds"); do
  echo "== round $r: memory"
  "$tmp/zerotask" bench --duration "$dur"
  echo "== round $r: redis"
  redis-cli -p "$port" flushall >/dev/null
  "$tmp/zerotask" bench --duration "$dur" --store "redis://127.0.0.1:$port/0"
done
echo "== redis-benchmark (the server's own ceiling: pipelined, 50 clients)"
redis-benchmark -p "$port" -n 2000000 -P 64 -t set,lpush --csv
