#!/usr/bin/python3
"""Summarises the outputs of bench/deployed.sh (medians over the repeats)."""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]


def load(pattern):
    rs = []
    for f in sorted(glob.glob(os.path.join(out, pattern))):
        try:
            rs.append(json.load(open(f)))
        except (ValueError, OSError):
            pass
    return rs


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def phase(r, name, conc=None):
    for p in r["phases"]:
        if p["name"] == name and (conc is None or p["concurrency"] == conc):
            return p
    return None


dep = load("deployed-*.json")
print("## deployed: broker, one node, client as separate processes, defaults (%d runs)" % len(dep))
for name, conc in (("sync", None), ("async", 1024), ("async", 4096), ("notify", None)):
    ps = [phase(r, name, conc) for r in dep]
    ps = [p for p in ps if p]
    if not ps:
        continue
    line = "%-6s %-5s tasks/s %s (median %.0f)" % (name, conc or "", [round(p["tasks_per_sec"]) for p in ps], med([p["tasks_per_sec"] for p in ps]))
    if name == "sync":
        line += " p50 %s us p99 %s us" % ([p["p50_us"] for p in ps], [p["p99_us"] for p in ps])
    cpu = {}
    for p in ps:
        for k, v in (p.get("cpu_per_task_us") or {}).items():
            cpu.setdefault(k, []).append(v)
    line += " cpu/task us " + ", ".join("%s %.2f" % (k, med(v)) for k, v in sorted(cpu.items()))
    print(line)
for r in dep[:1]:
    print("procs:", ", ".join("%s %.1f MiB" % (p["role"], p["peak_rss_kib"] / 1024) for p in r.get("procs", [])))

lz = []
for line in open(os.path.join(out, "libzmq.txt")) if os.path.exists(os.path.join(out, "libzmq.txt")) else []:
    m = re.search(r"p50_ns=(\d+) p99_ns=(\d+)", line)
    if m:
        lz.append((int(m.group(1)) / 1e3, int(m.group(2)) / 1e3))
if lz:
    print("libzmq REQ/REP 64 B: p50 %s us (median %.1f), p99 %s us" % ([round(a, 1) for a, _ in lz], med([a for a, _ in lz]), [round(b, 1) for _, b in lz]))
    s = [phase(r, "sync") for r in dep]
    s = [p for p in s if p]
    if s:
        print("sync p50 / libzmq p50: %.2f; sync p99 / libzmq p50: %.2f" % (med([p["p50_us"] for p in s]) / med([a for a, _ in lz]), med([p["p99_us"] for p in s]) / med([a for a, _ in lz])))

zr = []
if os.path.exists(os.path.join(out, "zmqrpc.jsonl")):
    zr = [json.loads(l) for l in open(os.path.join(out, "zmqrpc.jsonl")) if l.strip()]
if zr:
    print("pyzmq client, JSON-RPC batches of 64, 4,096 in flight: %s tasks/s answered (median %.0f), errors %s" % ([round(z["tasks_per_sec"]) for z in zr], med([z["tasks_per_sec"] for z in zr]), [z["errors"] for z in zr]))

print("\n## credit: default window vs fixed windows (async 4,096 in flight / notify), medians")
for pf in ("default", "64", "512", "1024", "4096", "8192", "16384"):
    rs = load("credit-%s-*.json" % pf)
    if rs:
        a = med([phase(r, "async")["tasks_per_sec"] for r in rs])
        n = med([phase(r, "notify")["tasks_per_sec"] for r in rs])
        print("%-8s async %9.0f  notify %9.0f   (%d runs)" % (pf, a, n, len(rs)))

print("\n## scaling (async 1,024 in flight per client / notify), medians")
for f in sorted(set(re.sub(r"-\d+\.json$", "", os.path.basename(x)) for x in glob.glob(os.path.join(out, "scale-*.json")))):
    rs = load(f + "-*.json")
    if rs:
        print("%-10s async %9.0f  notify %9.0f   (%d runs)" % (f, med([phase(r, "async")["tasks_per_sec"] for r in rs]), med([phase(r, "notify")["tasks_per_sec"] for r in rs]), len(rs)))

if os.path.exists(os.path.join(out, "peers.txt")):
    print("\n## bench/peers/run.sh")
    print(open(os.path.join(out, "peers.txt")).read())
