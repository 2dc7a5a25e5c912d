"""Pipelined calls per second from one Python client: Client.map("add", ...) in rounds.

usage: bench.py BROKER [CALLS] [ROUNDS]   (a node serving add must be connected)
"""
import sys
import time

from zerotask.client import Client

broker = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
with Client(broker, timeout=300) as c:
    c.map("add", [[i, 1] for i in range(10000)])  # warm-up
    for r in range(rounds):
        params = [[i, 1] for i in range(n)]
        t0 = time.perf_counter()
        res = c.map("add", params)
        dt = time.perf_counter() - t0
        assert res == [i + 1 for i in range(n)], "wrong results"
        print("round %d: %d calls in %.2fs: %.0f calls/s" % (r + 1, n, dt, n / dt), flush=True)
