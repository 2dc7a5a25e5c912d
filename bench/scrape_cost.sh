#!/usr/bin/env bash
# The cost of scraping /metrics: `zerotask bench --broker` against a broker and a node started
# as separate processes with default flags and --http, runs alternating without and with a
# scraper that fetches the broker's and the node's /metrics every 100 ms. Prints the pipelined
# tasks/s of each run and the ratio of the medians (a ratio within one run of this script, so
# the figures of a shared machine compare).
#
#   REPEAT [3]  DURATION [3s]  INTERVAL [0.1]
#
# usage: bench/scrape_cost.sh   (needs go and curl)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-3s}
INTERVAL=${INTERVAL:-0.1}
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

scrape() { while :; do curl -s -o /dev/null "$bm"; curl -s -o /dev/null "$nm"; sleep "$INTERVAL"; done; }
rate() { "$zt" bench --broker "$router" --json --duration "$DURATION" | python3 -c 'import json,sys; print(next(p["tasks_per_sec"] for p in json.load(sys.stdin)["phases"] if p["name"] == "async"))'; }

off=() on=()
for i in $(seq "$REPEAT"); do
  off+=("$(rate)")
  scrape & sp=$!
  on+=("$(rate)")
  kill "$sp"; wait "$sp" 2>/dev/null || true
  echo "run $i: without scrapes ${off[-1]} tasks/s, with scrapes every ${INTERVAL}s ${on[-1]} tasks/s" >&2
done
python3 - "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
mo, mn = statistics.median(off), statistics.median(on)
print(f"median without scrapes {mo:.0f} tasks/s, with scrapes {mn:.0f} tasks/s: {100*(mn/mo-1):+.1f}%")
PY
