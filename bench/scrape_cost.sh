#!/usr/bin/env bash
# The cost of scraping /metrics: `zerotask bench --broker` against a broker and a node started
# as separate processes with default flags and --http, runs alternating without and with a
# scraper that fetches the broker's and the node's /metrics every 100 ms (one curl process on
# kept-alive connections, as Prometheus scrapes: no process started per scrape). Prints the
# pipelined tasks/s and the broker's and node's CPU per task of each run, and the ratios of the
# medians (ratios within one run of this script, so the figures of a shared machine compare). Then the CPU time one scrape costs the
# broker and the node (their /proc CPU time over SCRAPES scrapes, less the same wall time idle),
# and what scraping every INTERVAL costs as a share of one core: a figure the load of a shared
# machine does not blur, unlike the throughput ratio.
#
#   REPEAT [3]  DURATION [3s]  INTERVAL [0.1]  SCRAPES [2000]
#
# usage: bench/scrape_cost.sh   (needs go and curl)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-3s}
INTERVAL=${INTERVAL:-0.1}
SCRAPES=${SCRAPES:-2000}
OUT=$(mktemp -d -t zerotask-scrape-XXXXXX)
(cd "$root" && go build -o "$OUT/zerotask" ./cmd/zerotask)
zt="$OUT/zerotask"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$zt" broker --listen tcp://127.0.0.1:0 --pub tcp://127.0.0.1:0 --http 127.0.0.1:0 --log-level warn >"$OUT/b.out" 2>"$OUT/b.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^metrics on' "$OUT/b.out" 2>/dev/null && break; sleep 0.1; done
router=$(sed -n 's/^broker listening on \([^ ]*\) (PUB \([^)]*\)).*/\1/p' "$OUT/b.out")
pub=$(sed -n 's/^broker listening on \([^ ]*\) (PUB \([^)]*\)).*/\2/p' "$OUT/b.out")
bm=$(sed -n 's/^metrics on //p' "$OUT/b.out")
"$zt" node --broker "$router" --sub "$pub" --http 127.0.0.1:0 --log-level warn >"$OUT/n.out" 2>"$OUT/n.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^metrics on' "$OUT/n.out" 2>/dev/null && break; sleep 0.1; done
nm=$(sed -n 's/^metrics on //p' "$OUT/n.out")

# urls N: a curl config fetching the broker's and the node's /metrics N times each.
urls() { for _ in $(seq "$1"); do printf 'url = "%s"\noutput = /dev/null\nurl = "%s"\noutput = /dev/null\n' "$bm" "$nm"; done; }
urls 3000 >"$OUT/scrape.curl"
per_sec=$(python3 -c "print(round(2 / $INTERVAL))")
scrape() { exec curl -s --rate "$per_sec/s" -K "$OUT/scrape.curl"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# rate: one bench run; prints the pipelined tasks/s and the broker's and the node's CPU per
# task in microseconds (their /proc CPU time over the run, over every task of its phases):
# a cost per task that the load of a shared machine blurs far less than the throughput.
rate() {
  local c0 c1
  c0=$(( $(ticks "${pids[0]}") + $(ticks "${pids[1]}") ))
  "$zt" bench --broker "$router" --json --duration "$DURATION" >"$OUT/run.json"
  c1=$(( $(ticks "${pids[0]}") + $(ticks "${pids[1]}") ))
  python3 - "$OUT/run.json" "$(( c1 - c0 ))" "$hz" <<'PY'
import json, sys
phases = json.load(open(sys.argv[1]))["phases"]
tasks = sum(p["tasks"] for p in phases)
print(next(p["tasks_per_sec"] for p in phases if p["name"] == "async"), round(int(sys.argv[2]) / int(sys.argv[3]) / tasks * 1e6, 2))
PY
}

off=() on=() offc=() onc=()
for i in $(seq "$REPEAT"); do
  read -r r c < <(rate); off+=("$r"); offc+=("$c")
  scrape & sp=$!
  read -r r c < <(rate); on+=("$r"); onc+=("$c")
  kill "$sp"; wait "$sp" 2>/dev/null || true
  echo "run $i: without scrapes ${off[-1]} tasks/s (${offc[-1]} us CPU/task), with scrapes every ${INTERVAL}s ${on[-1]} tasks/s (${onc[-1]} us CPU/task)" >&2
done
python3 - "${off[*]}" "${on[*]}" "${offc[*]}" "${onc[*]}" <<'PY'
import statistics, sys
off, on, offc, onc = ([float(x) for x in a.split()] for a in sys.argv[1:5])
mo, mn = statistics.median(off), statistics.median(on)
print(f"median without scrapes {mo:.0f} tasks/s, with scrapes {mn:.0f} tasks/s: {100*(mn/mo-1):+.1f}%")
co, cn = statistics.median(offc), statistics.median(onc)
print(f"broker+node CPU per task: median without scrapes {co:.2f} us, with scrapes {cn:.2f} us: {100*(cn/co-1):+.1f}%")
PY

# CPU per scrape: the processes' user+system ticks over SCRAPES back-to-back scrapes, less an
# idle stretch of the same wall time.
urls "$SCRAPES" >"$OUT/burst.curl"
b0=$(ticks "${pids[0]}") n0=$(ticks "${pids[1]}") t0=$(date +%s.%N)
curl -s -K "$OUT/burst.curl"
b1=$(ticks "${pids[0]}") n1=$(ticks "${pids[1]}") t1=$(date +%s.%N)
sleep "$(python3 -c "print($t1 - $t0)")"
b2=$(ticks "${pids[0]}") n2=$(ticks "${pids[1]}")
python3 - "$b0" "$b1" "$b2" "$n0" "$n1" "$n2" "$hz" "$SCRAPES" "$INTERVAL" "$(curl -s "$bm" | wc -c)" "$(curl -s "$nm" | wc -c)" <<'PY'
import sys
b0, b1, b2, n0, n1, n2, hz, n = (int(x) for x in sys.argv[1:9])
interval, bsize, nsize = float(sys.argv[9]), int(sys.argv[10]), int(sys.argv[11])
for name, busy, idle, size in (("broker", b1 - b0, b2 - b1, bsize), ("node", n1 - n0, n2 - n1, nsize)):
    per = max(busy - idle, 0) / hz / n
    print(f"{name}: {per*1e6:.0f} us CPU per scrape ({size} bytes); every {interval}s that is {100*per/interval:.2f}% of one core")
PY
