#!/usr/bin/python3
"""Prints one table, mode x system, from `zerotask bench --json` output and the peers' JSON lines.

usage: table.py [--zerotask FILE] [NAME=]PEER_OUTPUT...

ZeroTask's report is one JSON object whose "phases" are named sync, async and notify; they are
shown as sync, with_results and fire_and_forget, the peers' names for the same three ways. Each
peer file holds one JSON line per mode. A missing or unreadable input leaves its rows as "-".
The ratio column is ZeroTask's tasks/s divided by the row's (for sync, one task in flight, that is
also the ratio of mean round-trip latencies).
"""

import argparse
import json
import sys

MODES = ["sync", "with_results", "fire_and_forget"]
ZEROTASK_PHASES = {"sync": "sync", "async": "with_results", "notify": "fire_and_forget"}


def read_zerotask(path):
    """Returns ({mode: row}, problem or None)."""
    try:
        text = open(path).read()
    except OSError as e:
        return {}, str(e)
    rows = {}
    if not text.strip():
        return {}, "no output (not run, or it failed: see above)"
    try:  # the report is one (indented) JSON object; anything else around it is ignored
        obj = json.loads(text[text.index("{"):text.rindex("}") + 1])
    except ValueError as e:  # not one object: perhaps JSON lines in the peers' shape
        lines = read_lines(path, "zerotask")
        return lines, None if lines else "no JSON report in %s (%s)" % (path, e)
    for ph in obj.get("phases", []):
        mode = ZEROTASK_PHASES.get(ph.get("name"), ph.get("name"))
        rows[mode] = {
            "tasks": ph.get("tasks", 0), "errors": ph.get("errors", 0),
            "tasks_per_s": ph.get("tasks_per_sec", ph.get("tasks_per_s", 0)),
            "p50_us": ph.get("p50_us", 0), "p99_us": ph.get("p99_us", 0),
            "in_flight": ph.get("concurrency", ph.get("in_flight", "")),
        }
    return rows, None


def read_lines(path, system=None):
    """Reads peer JSON lines: {mode: row}."""
    rows = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if "mode" in row and (system is None or row.get("system") == system):
                    rows[row["mode"]] = row
    except OSError:
        pass
    return rows


def fmt_rate(x):
    return "-" if not x else "{:,.0f}".format(x) if x >= 10 else "{:.2f}".format(x)


def fmt_us(us):
    if not us:
        return "-"
    if us >= 1e6:
        return "%.2fs" % (us / 1e6)
    if us >= 1e3:
        return "%.2fms" % (us / 1e3)
    return "%.1fus" % us


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zerotask", help="file holding `zerotask bench --json` output")
    ap.add_argument("peers", nargs="*", help="[NAME=]FILE: a file holding a peer's JSON lines")
    args = ap.parse_args()

    systems = []  # [(name, {mode: row})]
    if args.zerotask:
        zt, problem = read_zerotask(args.zerotask)
        if problem:
            print("zerotask: no figures (%s)" % problem, file=sys.stderr)
        systems.append(("zerotask", zt))
    for arg in args.peers:
        name, sep, path = arg.partition("=")
        if not sep:
            name, path = "", arg
        rows = read_lines(path)
        name = name or next((r.get("system") for r in rows.values() if r.get("system")), path)
        systems.append((name, rows))
    zt = dict(systems).get("zerotask", {})

    header = ["mode", "system", "in flight", "tasks", "errors", "tasks/s", "p50", "p99",
              "ZeroTask/peer"]
    table = [header]
    for mode in MODES:
        for name, rows in systems:
            r = rows.get(mode)
            if r is None:
                table.append([mode, name, "-", "-", "-", "-", "-", "-", "-"])
                continue
            ratio = "-"
            zt_rate = (zt.get(mode) or {}).get("tasks_per_s")
            if name != "zerotask" and zt_rate and r.get("tasks_per_s"):
                ratio = "x{:,.1f}".format(zt_rate / r["tasks_per_s"])
            table.append([mode, name, str(r.get("in_flight", "")), "{:,}".format(r.get("tasks", 0)),
                          str(r.get("errors", 0)), fmt_rate(r.get("tasks_per_s")),
                          fmt_us(r.get("p50_us")), fmt_us(r.get("p99_us")), ratio])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        cells = [c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
