"""A libzmq (python3-zmq) client of a CURVE broker: no ZeroTask code at all.

usage: pycurve.py ENDPOINT SERVER_PUBLIC CLIENT_SECRET WAIT_MS

SERVER_PUBLIC and CLIENT_SECRET are Z85 keys; CLIENT_SECRET "-" connects without CURVE (the
NULL mechanism). Sends one call of method "count" from a DEALER and prints what happened, one
line each, flushed at once:

  EVENT <NAME>          a socket monitor event (HANDSHAKE_SUCCEEDED, HANDSHAKE_FAILED_AUTH, ...)
  UNSENT                the call could not be queued within WAIT_MS (no connection)
  REPLY <json>          the broker's answer
  NOREPLY               no answer within WAIT_MS
"""
import json
import sys

import zmq
from zmq.utils.monitor import recv_monitor_message

EVENT_NAMES = {
    getattr(zmq, n): n[len("EVENT_"):]
    for n in dir(zmq)
    if n.startswith("EVENT_") and n not in ("EVENT_ALL", "EVENT_ALL_V1", "EVENT_ALL_V2")
}


def main():
    endpoint, server, secret, wait_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if secret != "-":
        s.setsockopt(zmq.CURVE_SERVERKEY, server.encode())
        s.setsockopt(zmq.CURVE_SECRETKEY, secret.encode())
        s.setsockopt(zmq.CURVE_PUBLICKEY, zmq.curve_public(secret.encode()))
    mon = s.get_monitor_socket()
    s.connect(endpoint)
    # A DEALER blocks in send while it has no connection to queue on (libzmq drops the one it
    # had when the handshake fails): wait a bounded time, then report the call unsent.
    s.setsockopt(zmq.SNDTIMEO, wait_ms)
    try:
        s.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "count", "params": []}).encode())
    except zmq.Again:
        print("UNSENT", flush=True)
    poller = zmq.Poller()
    poller.register(s, zmq.POLLIN)
    poller.register(mon, zmq.POLLIN)
    replied = False
    deadline_polls = max(wait_ms // 20, 1)
    for _ in range(deadline_polls):
        for sock, _ in poller.poll(20):
            if sock is mon:
                ev = recv_monitor_message(mon)
                print("EVENT %s" % EVENT_NAMES.get(ev["event"], str(ev["event"])), flush=True)
            elif not replied:
                print("REPLY %s" % s.recv().decode(), flush=True)
                replied = True
        if replied:
            break
    if not replied:
        print("NOREPLY", flush=True)
    s.disable_monitor()
    mon.close()
    s.close()
    ctx.term()


if __name__ == "__main__":
    main()
