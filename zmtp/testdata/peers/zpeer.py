#!/usr/bin/env python3
"""A libzmq peer (through pyzmq) driven by the zmtp interop tests over stdin/stdout.

It opens one socket, binds or connects it, prints "READY <port>" (the bound port, 0 when it
connects) and then runs one loop that polls the socket, its monitor socket and stdin.

stdout (one line per event, flushed at once):
  READY <port>
  MSG <n> <frame> ... <frame>   a received message; each frame in hex, "-" for an empty frame
  EVENT <NAME> <value>          a socket monitor event (CONNECTED, DISCONNECTED,
                                HANDSHAKE_SUCCEEDED, HANDSHAKE_FAILED_AUTH, ...), with --monitor
  ERR <text>                    something failed; the test reports it
stdin (one command per line):
  SEND <frame> ... <frame>      send one message (same frame encoding as MSG)
  SUB <frame> / UNSUB <frame>   subscribe / unsubscribe a SUB socket
  QUIT                          close everything and exit 0

With --echo every received message is sent straight back (a ROUTER keeps the identity frame in
front, so the reply goes to the sender) and nothing is printed for it: Python does not sit on the
path between the test and libzmq for bulk traffic.

The process exits when stdin closes, so a test that dies never leaves this peer behind (the tests
also kill it by PID in their cleanup).
"""

import argparse
import os
import sys

import zmq
from zmq.utils.monitor import recv_monitor_message

TYPES = {
    "ROUTER": zmq.ROUTER,
    "DEALER": zmq.DEALER,
    "REQ": zmq.REQ,
    "REP": zmq.REP,
    "PUB": zmq.PUB,
    "SUB": zmq.SUB,
}

EVENT_NAMES = {
    getattr(zmq, n): n[len("EVENT_"):]
    for n in dir(zmq)
    if n.startswith("EVENT_") and n not in ("EVENT_ALL", "EVENT_ALL_V1", "EVENT_ALL_V2")
    and isinstance(getattr(zmq, n), int)
}


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def enc(frames):
    return "MSG %d %s" % (len(frames), " ".join(f.hex() if f else "-" for f in frames))


def dec(words):
    return [b"" if w == "-" else bytes.fromhex(w) for w in words]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--type", required=True, choices=sorted(TYPES))
    ap.add_argument("--bind", help="endpoint to bind; port 0 or * picks a free port")
    ap.add_argument("--connect", help="endpoint to connect to")
    ap.add_argument("--identity", help="routing id (text)")
    ap.add_argument("--subscribe", action="append", default=[], help="SUB prefix (text)")
    ap.add_argument("--plain-client", help="user:pass for the PLAIN client mechanism")
    ap.add_argument("--plain-server", help="user:pass that the PLAIN server (ZAP) accepts")
    ap.add_argument("--curve-server", help="Z85 secret key: be a CURVE server with it")
    ap.add_argument("--curve-allow", action="append", default=[],
                    help="Z85 client public key the CURVE server (ZAP) accepts; none: any")
    ap.add_argument("--curve-client", help="Z85 secret key: be a CURVE client with it")
    ap.add_argument("--curve-serverkey", help="Z85 public key of the CURVE server (client side)")
    ap.add_argument("--heartbeat-ivl", type=int, default=0, help="ZMQ_HEARTBEAT_IVL in ms")
    ap.add_argument("--heartbeat-timeout", type=int, default=0, help="ZMQ_HEARTBEAT_TIMEOUT ms")
    ap.add_argument("--heartbeat-ttl", type=int, default=0, help="ZMQ_HEARTBEAT_TTL in ms")
    ap.add_argument("--hwm", type=int, default=0, help="SNDHWM and RCVHWM (0 keeps libzmq's)")
    ap.add_argument("--reconnect-ivl", type=int, default=0, help="ZMQ_RECONNECT_IVL in ms")
    ap.add_argument("--router-notify", type=int, default=0,
                    help="ZMQ_ROUTER_NOTIFY (1 connect, 2 disconnect; libzmq's draft API)")
    ap.add_argument("--echo", action="store_true", help="send every message straight back")
    ap.add_argument("--monitor", action="store_true", help="print socket monitor events")
    a = ap.parse_args()
    if bool(a.bind) == bool(a.connect):
        out("ERR exactly one of --bind and --connect")
        return 2

    ctx = zmq.Context.instance()
    auth = None
    s = ctx.socket(TYPES[a.type])
    s.setsockopt(zmq.LINGER, 0)
    if a.identity:
        s.setsockopt(zmq.IDENTITY, a.identity.encode())
    if a.hwm:
        s.setsockopt(zmq.SNDHWM, a.hwm)
        s.setsockopt(zmq.RCVHWM, a.hwm)
    if a.reconnect_ivl:
        s.setsockopt(zmq.RECONNECT_IVL, a.reconnect_ivl)
    if a.heartbeat_ivl:
        s.setsockopt(zmq.HEARTBEAT_IVL, a.heartbeat_ivl)
    if a.heartbeat_timeout:
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, a.heartbeat_timeout)
    if a.heartbeat_ttl:
        s.setsockopt(zmq.HEARTBEAT_TTL, a.heartbeat_ttl)
    if a.plain_client:
        user, _, pw = a.plain_client.partition(":")
        s.setsockopt(zmq.PLAIN_USERNAME, user.encode())
        s.setsockopt(zmq.PLAIN_PASSWORD, pw.encode())
    if a.plain_server:
        # libzmq asks a ZAP handler to check PLAIN credentials; without one it accepts anyone.
        from zmq.auth.thread import ThreadAuthenticator

        user, _, pw = a.plain_server.partition(":")
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_plain(domain="*", passwords={user: pw})
        s.setsockopt(zmq.PLAIN_SERVER, 1)
    if a.router_notify:
        # ZMQ_ROUTER_NOTIFY is 97 in zmq.h's draft section; a libzmq built without the draft
        # API refuses it with EINVAL.
        s.setsockopt(getattr(zmq, "ROUTER_NOTIFY", 97), a.router_notify)
    if a.curve_server:
        secret = a.curve_server.encode()
        if a.curve_allow:
            # libzmq asks a ZAP handler to check CURVE client keys; without one it accepts any.
            from zmq.auth.thread import ThreadAuthenticator

            allowed = {k.encode() for k in a.curve_allow}

            class Keys:
                def callback(self, domain, key):
                    return key in allowed

            auth = ThreadAuthenticator(ctx)
            auth.start()
            auth.configure_curve_callback(domain="*", credentials_provider=Keys())
        s.setsockopt(zmq.CURVE_SECRETKEY, secret)
        s.setsockopt(zmq.CURVE_PUBLICKEY, zmq.curve_public(secret))
        s.setsockopt(zmq.CURVE_SERVER, 1)
    if a.curve_client:
        server, secret = a.curve_serverkey, a.curve_client
        s.setsockopt(zmq.CURVE_SERVERKEY, server.encode())
        s.setsockopt(zmq.CURVE_SECRETKEY, secret.encode())
        s.setsockopt(zmq.CURVE_PUBLICKEY, zmq.curve_public(secret.encode()))
    for p in a.subscribe:
        s.setsockopt(zmq.SUBSCRIBE, p.encode())

    mon = s.get_monitor_socket() if a.monitor else None

    port = 0
    if a.bind:
        ep = a.bind
        if ep.endswith(":0"):
            ep = ep[:-2] + ":*"
        s.bind(ep)
        last = s.getsockopt(zmq.LAST_ENDPOINT).decode()
        port = int(last.rsplit(":", 1)[1])
    else:
        s.connect(a.connect)

    poller = zmq.Poller()
    poller.register(s, zmq.POLLIN)
    if mon is not None:
        poller.register(mon, zmq.POLLIN)
    stdin = sys.stdin.fileno()
    poller.register(stdin, zmq.POLLIN)
    out("READY %d" % port)

    buf = b""
    running = True
    code = 0
    while running:
        for sock, _ in poller.poll():
            if sock is s:
                # Drain what is there now so one poll serves a burst. ZMQ_EVENTS, not a
                # NOBLOCK recv until EAGAIN: a REQ raises EFSM on a second recv.
                while s.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    frames = s.recv_multipart()
                    if a.echo:
                        s.send_multipart(frames)
                    else:
                        out(enc(frames))
            elif mon is not None and sock is mon:
                while True:
                    try:
                        ev = recv_monitor_message(mon, zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    name = EVENT_NAMES.get(ev["event"], str(ev["event"]))
                    out("EVENT %s %s" % (name, ev.get("value")))
            else:
                chunk = os.read(stdin, 1 << 16)
                if not chunk:
                    running = False
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    words = line.decode().split()
                    if not words:
                        continue
                    cmd = words[0]
                    try:
                        if cmd == "SEND":
                            s.send_multipart(dec(words[1:]))
                        elif cmd == "SUB":
                            s.setsockopt(zmq.SUBSCRIBE, dec(words[1:2])[0] if len(words) > 1 else b"")
                        elif cmd == "UNSUB":
                            s.setsockopt(zmq.UNSUBSCRIBE, dec(words[1:2])[0] if len(words) > 1 else b"")
                        elif cmd == "QUIT":
                            running = False
                            break
                        else:
                            out("ERR unknown command %s" % cmd)
                    except zmq.ZMQError as e:
                        out("ERR %s: %s" % (cmd, e))
                        code = 1

    if mon is not None:
        s.disable_monitor()
        mon.close(0)
    s.close(0)
    if auth is not None:
        auth.stop()
    ctx.term()
    return code


if __name__ == "__main__":
    sys.exit(main())
