"""A plain JSON-RPC client on libzmq (python3-zmq): no ZeroTask code at all.

usage: pyclient.py ENDPOINT

Calls add(5, 6) through the broker at ENDPOINT twice, with a REQ socket (which adds the empty
delimiter frame; the broker echoes it) and with a DEALER socket (a single body frame), and prints
one line per call: "REQ <result>" and "DEALER <result>". Exits 1 on a timeout or a JSON-RPC error.
"""
import json
import sys

import zmq

TIMEOUT_MS = 10000


def call(sock, req_id, frames_prefix):
    body = json.dumps({"jsonrpc": "2.0", "id": req_id, "method": "add", "params": [5, 6]})
    sock.send_multipart(frames_prefix + [body.encode()])
    if not sock.poll(TIMEOUT_MS):
        print("timeout waiting for id %r" % req_id, file=sys.stderr)
        sys.exit(1)
    frames = sock.recv_multipart()
    if frames_prefix and frames[0] != b"":
        print("DEALER reply without the echoed delimiter: %r" % frames, file=sys.stderr)
        sys.exit(1)
    reply = json.loads(frames[-1])
    if reply.get("id") != req_id or "error" in reply:
        print("bad reply %r" % reply, file=sys.stderr)
        sys.exit(1)
    return reply["result"]


def main():
    endpoint = sys.argv[1]
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(endpoint)
    print("REQ %s" % json.dumps(call(req, 1, [])), flush=True)

    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoint)
    # A DEALER may send the empty delimiter like REQ does (it is then echoed) or not at all.
    print("DEALER %s" % json.dumps(call(dealer, "py-2", [])), flush=True)
    print("DEALER+delimiter %s" % json.dumps(call(dealer, "py-3", [b""])), flush=True)
    req.close()
    dealer.close()
    ctx.term()


if __name__ == "__main__":
    main()
