#!/usr/bin/python3
"""A plain libzmq client for ZeroTask (pyzmq, nothing of ZeroTask's): a DEALER that sends
JSON-RPC batches of `add` requests to a broker and counts the answers.

usage: zmqrpc.py ENDPOINT [SECONDS=3] [BATCH=64] [WINDOW=64]

WINDOW batches are kept in flight (each answered batch is replaced by a new one). Every request
has its own id; an answer is a JSON array of BATCH responses, counted by their "result" members
(an error would be missing from the count). Prints one JSON object: tasks answered, seconds,
tasks_per_sec, batch, window, errors.
"""
import json
import sys
import time

import zmq


def main():
    ep = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    window = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 0)
    s.setsockopt(zmq.RCVHWM, 0)
    s.connect(ep)
    seq = 0

    def make():
        nonlocal seq
        parts = []
        for _ in range(batch):
            seq += 1
            parts.append('{"jsonrpc":"2.0","id":%d,"method":"add","params":[5,6]}' % seq)
        return ("[" + ",".join(parts) + "]").encode()

    # Warm up: one batch answered before the clock starts (connection, node credit).
    s.send(make())
    first = s.recv()
    if first.count(b'"result"') != batch:
        sys.exit("zmqrpc: first answer is not %d results: %r" % (batch, first[:200]))
    # Prebuilt batches: the client's own JSON building is not what is measured.
    pool = [make() for _ in range(window * 2)]
    k = 0
    for _ in range(window):
        s.send(pool[k % len(pool)])
        k += 1
    answered = errors = 0
    start = time.perf_counter()
    end = start + seconds
    outstanding = window
    while outstanding:
        msg = s.recv()
        outstanding -= 1
        n = msg.count(b'"result"')
        answered += n
        errors += batch - n
        if time.perf_counter() < end:
            s.send(pool[k % len(pool)])
            k += 1
            outstanding += 1
    elapsed = time.perf_counter() - start
    print(json.dumps({"tasks": answered, "seconds": round(elapsed, 3),
                      "tasks_per_sec": round(answered / elapsed, 1), "batch": batch,
                      "window": window, "errors": errors}))
    s.close()
    ctx.term()


if __name__ == "__main__":
    main()
