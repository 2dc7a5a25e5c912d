#!/usr/bin/env bash
# zmtp with CURVE beside libzmq with CURVE, in interleaved rounds: each libzmq run (zbench.c) is
# followed at once by the same shape in Go (BenchmarkCrossCurve), so a pair shares the machine's
# load of the moment. Prints every pair, then the median of the per-round ratios and how many
# rounds met the acceptance lines (issue #16):
#   one-way 64 B and 1 KiB DEALER->ROUTER >= 1.0x libzmq with CURVE;
#   CURVE REQ/REP round trip p50 <= libzmq's CURVE REQ/REP p50.
# Each throughput run is also timed with /usr/bin/time: CPU microseconds per message (user +
# system, both ends, one process each), a figure that moves much less with a shared machine's
# load than msg/s does.
#
#   bench/zmtp/curve.sh                   # 5 rounds
#   ROUNDS=9 N64=300000 N1K=150000 NLAT=5000 bench/zmtp/curve.sh
#
# Needs gcc and libzmq3-dev (zmq.h); nothing here is part of the Go build or the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-5}
N64=${N64:-300000}  # messages per one-way 64 B run
N1K=${N1K:-150000}  # messages per one-way 1 KiB run
NLAT=${NLAT:-5000}  # round trips per latency run
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gcc -O2 -Wall -o "$work/zbench" bench/zmtp/zbench.c -lzmq -lpthread
go test -c -o "$work/zmtp.test" ./zmtp
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "go: $(go version | cut -d' ' -f3-); libzmq: $(pkg-config --modversion libzmq 2>/dev/null || echo '?')"

# timed <out> -- cmd...: runs cmd with its stdout in <out> and "elapsed user sys" in <out>.time.
timed() {
  local out=$1; shift 2
  /usr/bin/time -f '%e %U %S' -o "$out.time" "$@" >"$out"
}
cpu_us() { # cpu_us <out> <messages>: CPU microseconds per message of the timed run
  awk -v n="$2" '{ printf "%.2f", ($2 + $3) * 1e6 / n }' "$1.time"
}
gobench() { # gobench <out> <bench regexp> <N>
  timed "$1" -- "$work/zmtp.test" -test.run '^$' -test.bench "$2" -test.benchtime "${3}x"
}
field() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" "$1" | head -1; }                  # zbench key=value
gometric() { awk -v u="$2" '/^Benchmark/ { for (i = 2; i <= NF; i++) if ($i == u) { print $(i-1); exit } }' "$1"; }

printf '\n%-5s %-26s %12s %12s %8s %14s %14s %8s\n' round figure zmtp libzmq ratio "zmtp cpu/msg" "libzmq cpu/msg" allocs
: >"$work/ratios"
for r in $(seq "$ROUNDS"); do
  for s in 64 1024; do
    n=$N64; [ "$s" = 1024 ] && n=$N1K
    timed "$work/l" -- "$work/zbench" thr dealer-router "$s" "$n" curve
    gobench "$work/g" "^BenchmarkCrossCurve/one-way/dealer-router/size=$s/" "$n"
    l=$(field "$work/l" msg_s); g=$(gometric "$work/g" msg/s)
    ratio=$(awk -v a="$g" -v b="$l" 'BEGIN { printf "%.2f", a / b }')
    echo "ow$s $ratio" >>"$work/ratios"
    awk -v s="$s" -v a="$(cpu_us "$work/g" "$n")" -v b="$(cpu_us "$work/l" "$n")" 'BEGIN { printf "cpu%s %.2f\n", s, a / b }' >>"$work/ratios"
    printf '%-5s %-26s %12.0f %12.0f %7sx %11s us %11s us %8s\n' "$r" "one-way $s B (msg/s)" "$g" "$l" "$ratio" \
      "$(cpu_us "$work/g" "$n")" "$(cpu_us "$work/l" "$n")" "$(gometric "$work/g" allocs/op)"
  done
  "$work/zbench" lat req-rep 64 "$NLAT" curve >"$work/l"
  gobench "$work/g" '^BenchmarkCrossCurve/round-trip/req-rep/size=64/' "$NLAT"
  l=$(field "$work/l" p50_ns); g=$(gometric "$work/g" p50-ns)
  ratio=$(awk -v a="$g" -v b="$l" 'BEGIN { printf "%.2f", a / b }')
  echo "p50 $ratio" >>"$work/ratios"
  printf '%-5s %-26s %9.1f us %9.1f us %7sx %14s %14s %8s\n' "$r" "REQ/REP 64 B p50" "$(awk -v v="$g" 'BEGIN { print v / 1e3 }')" \
    "$(awk -v v="$l" 'BEGIN { print v / 1e3 }')" "$ratio" - - "$(gometric "$work/g" allocs/op)"
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
summary() { # summary <key> <label> <ge|le>
  sort -g <(awk -v k="$1" '$1 == k { print $2 }' "$work/ratios") | awk -v label="$2" -v dir="$3" '
    { v[NR] = $1; if ((dir == "ge" && $1 >= 1.0) || (dir == "le" && $1 <= 1.0)) ok++ }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%-44s median %.2fx, met in %d of %d rounds (min %.2fx, max %.2fx)\n", label, m, ok, NR, v[1], v[NR] }'
}
summary ow64 "one-way 64 B zmtp/libzmq (want >= 1.0x):" ge
summary ow1024 "one-way 1 KiB zmtp/libzmq (want >= 1.0x):" ge
summary p50 "REQ/REP p50 zmtp/libzmq (want <= 1.0x):" le
summary cpu64 "CPU per message 64 B zmtp/libzmq (lower wins):" le
summary cpu1024 "CPU per message 1 KiB zmtp/libzmq (lower wins):" le
