#!/usr/bin/env bash
# Cross-library ZMTP benchmarks, all in one run on this machine: our zmtp engine, libzmq (a C
# driver, zbench.c, built here against libzmq3-dev) and go-zeromq/zmq4. Prints one table with
# the ratios ours/libzmq and ours/zmq4 and checks the acceptance targets:
#   one-way 64 B DEALER->ROUTER >= 1.0x libzmq and >= 15x zmq4;
#   round-trip p50 (ours REQ/REP) <= libzmq REQ/REP p50;
#   with CURVE: one-way 64 B and 1 KiB DEALER->ROUTER >= 1.0x libzmq with CURVE, and the CURVE
#   REQ/REP p50 <= libzmq's CURVE REQ/REP p50.
#
#   bench/zmtp/run.sh                 # full run
#   BENCHTIME=1s COUNT_64=1000000 bench/zmtp/run.sh
#   PROFILE=1 bench/zmtp/run.sh       # also a CPU profile of our one-way 64 B run (pprof -top)
#
# Needs gcc and libzmq3-dev for the libzmq side; installs libzmq3-dev with apt-get when it is
# missing (root). Nothing here is part of the Go build or the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."

BENCHTIME=${BENCHTIME:-2s}
COUNT_64=${COUNT_64:-2000000}     # libzmq messages per one-way run, 64 B
COUNT_1K=${COUNT_1K:-500000}      # libzmq messages per one-way run, 1 KiB
COUNT_LAT=${COUNT_LAT:-20000}     # libzmq round trips per latency run
REPEAT=${REPEAT:-3}               # libzmq runs per figure; the best one is kept (as go test's)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -f /usr/include/zmq.h ]; then
  echo "installing libzmq3-dev (zmq.h is missing)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends libzmq3-dev gcc libc6-dev >/dev/null
fi
gcc -O2 -Wall -o "$work/zbench" bench/zmtp/zbench.c -lzmq -lpthread

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "go: $(go version | cut -d' ' -f3-), GOMAXPROCS=${GOMAXPROCS:-$(nproc)}; libzmq: $(pkg-config --modversion libzmq 2>/dev/null || echo '?')"
echo

# libzmq: keep the best of REPEAT runs (max msg/s, min latency).
best() { # best <key> <max|min> -- zbench args
  local key=$1 dir=$2; shift 3
  for _ in $(seq "$REPEAT"); do "$work/zbench" "$@"; done |
    sed -n "s/.*${key}=\([0-9.]*\).*/\1/p" |
    sort -g | { if [ "$dir" = max ]; then tail -1; else head -1; fi; }
}
declare -A L
echo "running libzmq (zbench, best of $REPEAT) ..." >&2
L[ow_dr_64]=$(best msg_s max -- thr dealer-router 64 "$COUNT_64")
L[ow_dr_1024]=$(best msg_s max -- thr dealer-router 1024 "$COUNT_1K")
L[ow_ps_64]=$(best msg_s max -- thr pub-sub 64 "$COUNT_64")
L[ow_ps_1024]=$(best msg_s max -- thr pub-sub 1024 "$COUNT_1K")
for s in 64 1024; do
  out=$(for _ in $(seq "$REPEAT"); do "$work/zbench" lat req-rep "$s" "$COUNT_LAT"; done | sort -t= -k2 -g | head -1)
  L[p50_$s]=$(sed -n 's/.*p50_ns=\([0-9]*\).*/\1/p' <<<"$out")
  L[p99_$s]=$(sed -n 's/.*p99_ns=\([0-9]*\).*/\1/p' <<<"$out")
done
L[c_ow_dr_64]=$(best msg_s max -- thr dealer-router 64 "$COUNT_64" curve)
L[c_ow_dr_1024]=$(best msg_s max -- thr dealer-router 1024 "$COUNT_1K" curve)
for s in 64 1024; do
  out=$(for _ in $(seq "$REPEAT"); do "$work/zbench" lat req-rep "$s" "$COUNT_LAT" curve; done | sort -t= -k2 -g | head -1)
  L[c_p50_$s]=$(sed -n 's/.*p50_ns=\([0-9]*\).*/\1/p' <<<"$out")
done

echo "running go test -bench '^BenchmarkCross' -benchtime $BENCHTIME ./zmtp ..." >&2
go test -run '^$' -bench '^BenchmarkCross' -benchtime "$BENCHTIME" -count 1 -timeout 30m ./zmtp | tee "$work/go.txt" >&2

# metric <benchmark name without -N suffix> <unit>: the value before that unit on its line.
metric() {
  awk -v name="$1" -v unit="$2" '
    { n = $1; sub(/-[0-9]+$/, "", n) }
    n == name { for (i = 2; i <= NF; i++) if ($i == unit) { print $(i-1); exit } }' "$work/go.txt"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2fx", a / b }'; }
fmt() { awk -v v="$1" 'BEGIN { if (v == "") print "n/a"; else if (v >= 1e6) printf "%.2fM", v / 1e6; else if (v >= 1e3) printf "%.1fk", v / 1e3; else printf "%.0f", v }'; }
us() { awk -v v="$1" 'BEGIN { if (v == "") print "n/a"; else printf "%.1f us", v / 1e3 }'; }

printf '\n%-34s %11s %11s %11s %11s %11s %12s %12s\n' "figure" "zmtp" "libzmq" "zmq4" "zmtp/libzmq" "zmtp/zmq4" "zmtp allocs" "zmq4 allocs"
printf '%s\n' "$(printf '%.0s-' $(seq 120))"
for p in dealer-router pub-sub; do
  for s in 64 1024; do
    key=ow_$( [ "$p" = dealer-router ] && echo dr || echo ps )_$s
    z=$(metric "BenchmarkCrossOneWay/$p/size=$s/lib=zmtp" msg/s)
    q=$(metric "BenchmarkCrossOneWay/$p/size=$s/lib=zmq4" msg/s)
    za=$(metric "BenchmarkCrossOneWay/$p/size=$s/lib=zmtp" allocs/op)
    qa=$(metric "BenchmarkCrossOneWay/$p/size=$s/lib=zmq4" allocs/op)
    printf '%-34s %11s %11s %11s %11s %11s %12s %12s\n' "one-way $p ${s} B (msg/s)" \
      "$(fmt "$z")" "$(fmt "${L[$key]}")" "$(fmt "$q")" "$(ratio "$z" "${L[$key]}")" "$(ratio "$z" "$q")" "${za:-n/a}" "${qa:-n/a}"
    eval "Z_${key}=\${z:-}; Q_${key}=\${q:-}"
  done
done
for s in 64 1024; do
  for pct in p50 p99; do
    z=$(metric "BenchmarkCrossRoundTrip/req-rep/size=$s/lib=zmtp" "$pct-ns")
    q=$(metric "BenchmarkCrossRoundTrip/req-rep/size=$s/lib=zmq4" "$pct-ns")
    za=$(metric "BenchmarkCrossRoundTrip/req-rep/size=$s/lib=zmtp" allocs/op)
    qa=$(metric "BenchmarkCrossRoundTrip/req-rep/size=$s/lib=zmq4" allocs/op)
    l=${L[${pct}_$s]}
    printf '%-34s %11s %11s %11s %11s %11s %12s %12s\n' "round trip req-rep ${s} B $pct" \
      "$(us "$z")" "$(us "$l")" "$(us "$q")" "$(ratio "$z" "$l")" "$(ratio "$z" "$q")" "${za:-n/a}" "${qa:-n/a}"
    eval "RT_${pct}_$s=\${z:-}"
  done
  d=$(metric "BenchmarkCrossRoundTrip/dealer-router/size=$s/lib=zmtp" p50-ns)
  printf '%-34s %11s %11s %11s %11s %11s %12s %12s\n' "round trip dealer-router ${s} B p50" "$(us "$d")" "-" "-" "-" "-" \
    "$(metric "BenchmarkCrossRoundTrip/dealer-router/size=$s/lib=zmtp" allocs/op)" "-"
done
for s in 64 1024; do
  z=$(metric "BenchmarkCrossCurve/one-way/dealer-router/size=$s/lib=zmtp" msg/s)
  printf '%-34s %11s %11s %11s %11s %11s %12s %12s\n' "CURVE one-way dealer-router ${s} B" \
    "$(fmt "$z")" "$(fmt "${L[c_ow_dr_$s]}")" "-" "$(ratio "$z" "${L[c_ow_dr_$s]}")" "-" \
    "$(metric "BenchmarkCrossCurve/one-way/dealer-router/size=$s/lib=zmtp" allocs/op)" "-"
  eval "C_ow_$s=\${z:-}"
  z=$(metric "BenchmarkCrossCurve/round-trip/req-rep/size=$s/lib=zmtp" p50-ns)
  printf '%-34s %11s %11s %11s %11s %11s %12s %12s\n' "CURVE round trip req-rep ${s} B p50" \
    "$(us "$z")" "$(us "${L[c_p50_$s]}")" "-" "$(ratio "$z" "${L[c_p50_$s]}")" "-" \
    "$(metric "BenchmarkCrossCurve/round-trip/req-rep/size=$s/lib=zmtp" allocs/op)" "-"
  eval "C_p50_$s=\${z:-}"
done
echo "(latency ratios: lower is better; allocs are per message, both ends, Go only)"
for s in 64 1024; do
  name="BenchmarkCrossOneWay/pub-sub/size=$s/lib=zmtp"
  sent=$(awk -v name="$name" '{ n = $1; sub(/-[0-9]+$/, "", n) } n == name { print $2; exit }' "$work/go.txt")
  echo "(our PUB dropped $(metric "$name" dropped) of ${sent:-?} messages at its HWM in the pub-sub ${s} B run; libzmq's HWM is lifted)"
done

echo
verdict() { if awk -v a="$1" -v b="$2" -v op="$3" 'BEGIN { exit !(a != "" && b != "" && (op == ">=" ? a + 0 >= b + 0 : a + 0 <= b + 0)) }'; then echo MET; else echo "NOT MET"; fi; }
z=${Z_ow_dr_64:-}; q=${Q_ow_dr_64:-}
echo "acceptance: one-way 64 B DEALER->ROUTER >= 1.0x libzmq: $(ratio "$z" "${L[ow_dr_64]}") $(verdict "$z" "${L[ow_dr_64]}" '>=')"
q15=$(awk -v q="$q" 'BEGIN { if (q != "") print q * 15 }')
echo "acceptance: one-way 64 B DEALER->ROUTER >= 15x zmq4:   $(ratio "$z" "$q") $(verdict "$z" "$q15" '>=')"
echo "acceptance: round-trip p50 64 B <= libzmq REQ/REP p50:  $(us "${RT_p50_64:-}") vs $(us "${L[p50_64]}") $(verdict "${RT_p50_64:-}" "${L[p50_64]}" '<=')"
for s in 64 1024; do
  z=$(eval echo "\${C_ow_$s:-}")
  echo "acceptance: CURVE one-way $s B >= 1.0x libzmq CURVE:    $(ratio "$z" "${L[c_ow_dr_$s]}") $(verdict "$z" "${L[c_ow_dr_$s]}" '>=')"
done
echo "acceptance: CURVE round-trip p50 64 B <= libzmq CURVE p50: $(us "${C_p50_64:-}") vs $(us "${L[c_p50_64]}") $(verdict "${C_p50_64:-}" "${L[c_p50_64]}" '<=')"

if [ "${PROFILE:-0}" = 1 ]; then
  echo
  echo "CPU profile of our one-way 64 B DEALER->ROUTER (go tool pprof -top, first 30 lines):"
  go test -run '^$' -bench '^BenchmarkCrossOneWay/dealer-router/size=64/lib=zmtp$' -benchtime "$BENCHTIME" \
    -cpuprofile "$work/cpu.prof" -o "$work/zmtp.test" ./zmtp >/dev/null
  go tool pprof -top "$work/zmtp.test" "$work/cpu.prof" 2>/dev/null | head -38
fi
