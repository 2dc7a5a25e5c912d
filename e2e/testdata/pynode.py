"""A ZeroTask node written from docs/protocol.md alone, on libzmq (pyzmq).

It serves "echo" (the result is the first param), says hello on every new connection (the
socket monitor tells it, as protocol.md says), and again on broker.hello_required; it grants
credit once the hello is answered, and answers only the tasks of the broker run it is talking
to. It prints "hello <broker id>" for each hello reply and "served <id>" for each answer, and
stops after the given number of seconds.

usage: pynode.py ENDPOINT NAME SECONDS
"""
import json
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

endpoint, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
ctx = zmq.Context()
sock = ctx.socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.setsockopt(zmq.RECONNECT_IVL, 50)
sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)
sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
sock.connect(endpoint)

CAPACITY = 4
hello_seq = 0
run = None  # the broker run of the last hello reply: hand-out ids begin with it


def send(obj):
    sock.send(json.dumps(obj).encode())


def hello():
    global hello_seq
    hello_seq += 1
    send({"jsonrpc": "2.0", "id": "hello-%d" % hello_seq, "method": "broker.hello",
          "params": {"role": "node", "name": name, "methods": ["echo"], "concurrency": CAPACITY}})


def handle(msg):
    global run
    if "method" in msg and "id" in msg:  # a task
        tid = msg["id"]
        if run is None or not str(tid).startswith(run + "."):
            return  # not of the run we said hello to
        params = msg.get("params") or [None]
        # The answer and the credit it frees travel in one message.
        sock.send(json.dumps([{"jsonrpc": "2.0", "id": tid, "result": params[0]},
                              {"jsonrpc": "2.0", "method": "broker.credit", "params": [1]}]).encode())
        print("served", tid, flush=True)
    elif msg.get("method") == "broker.hello_required":
        hello()
    elif msg.get("id") == "hello-%d" % hello_seq and "result" in msg:
        run = msg["result"]["broker"]
        print("hello", run, flush=True)
        send({"jsonrpc": "2.0", "method": "broker.credit", "params": [CAPACITY]})


poller = zmq.Poller()
poller.register(sock, zmq.POLLIN)
poller.register(monitor, zmq.POLLIN)
end = time.time() + seconds
while time.time() < end:
    for s, _ in poller.poll(100):
        if s is monitor:
            ev = recv_monitor_message(monitor)
            if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                run = None
                hello()
        else:
            body = sock.recv()
            msg = json.loads(body)
            for m in (msg if isinstance(msg, list) else [msg]):
                handle(m)
sock.disable_monitor()
monitor.close()
sock.close()
ctx.term()
