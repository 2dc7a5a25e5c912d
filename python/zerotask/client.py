"""ZeroTask clients.

    client = Client("tcp://127.0.0.1:5555")
    client.add(5, 6)                              # 11
    client.call("add", 5, 6, timeout=2.0)         # task options as keyword arguments
    client.map("add", [[1, 2], [3, 4]])           # pipelined: [3, 7]

    aclient = AsyncClient("tcp://127.0.0.1:5555")
    t = aclient.add(5, 6)                         # submitted: a TaskHandle
    t.status(); t.wait(timeout=10); t.result(); t.revoke()

    async with AsyncioClient("tcp://127.0.0.1:5555") as c:
        await c.add(5, 6)

Task options (keyword arguments of every call): timeout (seconds: the task's deadline, and how
long the call waits), delay (seconds), eta (unix seconds or a datetime), priority (0-9), queue,
max_attempts, backoff and max_backoff (seconds); AsyncClient also takes key (idempotency key).
Other keyword arguments are the task's params by name (a call passes either positional or named
params, as JSON-RPC allows one or the other).
"""
import asyncio
import itertools
import json
import threading
import time

import zmq

from . import errors

DEFAULT_BROKER = "tcp://127.0.0.1:5555"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

_SECONDS = {"timeout": "timeout_ms", "delay": "delay_ms", "backoff": "backoff_ms",
            "max_backoff": "max_backoff_ms"}
_PLAIN = {"priority": "priority", "queue": "queue", "max_attempts": "max_attempts"}
OPTIONS = frozenset(list(_SECONDS) + list(_PLAIN) + ["eta"])


def _split(args, kwargs, extra=()):
    """Task options and params from a call's arguments."""
    opts = {}
    named = {}
    for k, v in kwargs.items():
        if k in _SECONDS:
            if v is not None:
                opts[_SECONDS[k]] = max(1, int(round(v * 1000))) if k != "delay" else max(0, int(round(v * 1000)))
        elif k in _PLAIN:
            if v is not None:
                opts[_PLAIN[k]] = v
        elif k == "eta":
            if v is not None:
                ts = v.timestamp() if hasattr(v, "timestamp") else float(v)
                opts["eta_ms"] = int(ts * 1000)
        elif k in extra:
            if v is not None:
                opts[k] = v
        else:
            named[k] = v
    if args and named:
        raise TypeError("a task takes positional or named params, not both")
    params = list(args) if args else (named if named else None)
    return params, opts


def _raise_or_result(resp):
    if "error" in resp:
        raise errors.from_json(resp["error"])
    return resp.get("result")


class _Conn:
    """One DEALER to the broker: requests out (batched), replies matched by id."""

    def __init__(self, broker, heartbeat=1.0):
        self.ctx = zmq.Context()
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RECONNECT_IVL, 100)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        hb = int(heartbeat * 1000)
        s.setsockopt(zmq.HEARTBEAT_IVL, hb)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * hb)
        s.setsockopt(zmq.HEARTBEAT_TTL, 3 * hb)
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        # The monitor tells of each new connection (hello again) and of each lost one (the
        # requests sent on it will not be answered: they fail with ConnectionLost).
        self.mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        s.connect(broker)
        self.s = s
        self.poller = zmq.Poller()
        self.poller.register(s, zmq.POLLIN)
        self.poller.register(self.mon, zmq.POLLIN)
        self.ids = itertools.count(1)
        self.lock = threading.RLock()
        self.replies = {}
        self.max_batch = 1024
        self.max_msg = 1 << 20
        self.epoch = 0  # connections lost so far
        self._hello = None
        self._say_hello()

    def _say_hello(self):
        # An unordered client: a batch's answers come as they complete. Replies are matched by
        # id alone either way.
        rid = next(self.ids)
        self.s.send(_dumps({"jsonrpc": "2.0", "id": rid, "method": "broker.hello",
                            "params": {"role": "client", "unordered": True}}).encode())
        self._hello = rid

    def close(self):
        try:
            self.s.disable_monitor()
        except zmq.ZMQError:
            pass
        self.mon.close(0)
        self.s.close(0)
        self.ctx.term()

    def _events(self):
        from zmq.utils.monitor import parse_monitor_message
        while True:
            try:
                ev = parse_monitor_message(self.mon.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            if ev["event"] == zmq.EVENT_DISCONNECTED:
                self.epoch += 1
            elif ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED and self.epoch > 0:
                self._say_hello()

    def _recv_into(self, timeout_ms):
        ev = dict(self.poller.poll(timeout_ms))
        if self.mon in ev:
            self._events()
        if self.s not in ev:
            return False
        while True:
            try:
                body = self.s.recv(zmq.NOBLOCK)
            except zmq.Again:
                return True
            msg = json.loads(body)
            for r in (msg if isinstance(msg, list) else (msg,)):
                if not isinstance(r, dict) or "method" in r:
                    continue  # broker.shutdown and other notices
                rid = r.get("id")
                if rid == self._hello:
                    res = r.get("result") or {}
                    self.max_batch = int(res.get("max_batch") or self.max_batch)
                    self.max_msg = int(res.get("max_msg_size") or self.max_msg)
                    self._hello = None
                    continue
                if rid is not None:
                    self.replies[rid] = r

    def request(self, method, params, opts, timeout):
        """Send one request and wait for its reply (timeout in seconds, None: forever)."""
        with self.lock:
            rid = next(self.ids)
            req = {"jsonrpc": "2.0", "id": rid, "method": method}
            if params is not None:
                req["params"] = params
            req.update(opts)
            self._recv_into(0)  # learn of a lost connection before sending on it
            epoch = self.epoch
            self.s.send(_dumps(req).encode())
            return self._wait(rid, timeout, method, epoch)

    def _wait(self, rid, timeout, method, epoch):
        end = None if timeout is None else time.monotonic() + timeout
        while rid not in self.replies:
            left = 1000 if end is None else int((end - time.monotonic()) * 1000)
            if end is not None and left <= 0:
                raise errors.Timeout("no answer to %s within %.3gs" % (method, timeout))
            if self.epoch != epoch:
                raise errors.ConnectionLost("connection lost: %s may or may not have run" % method)
            self._recv_into(max(1, min(left, 1000)))
        return self.replies.pop(rid)

    def batch(self, method, params_list, opts, timeout, window):
        """Pipeline many requests of one method: batches of at most max_batch members, at most
        `window` requests unanswered; returns the responses in order."""
        with self.lock:
            n = len(params_list)
            ids = [0] * n
            resps = [None] * n
            pos = {}
            sent = 0
            got = 0
            end = None if timeout is None else time.monotonic() + timeout
            head = '{"jsonrpc":"2.0","method":%s' % _dumps(method)
            tail = "".join(",%s:%s" % (_dumps(k), _dumps(v)) for k, v in opts.items())
            replies = self.replies
            self._recv_into(0)
            epoch = self.epoch
            while got < n:
                if self.epoch != epoch:
                    for rid in ids[:sent]:
                        replies.pop(rid, None)
                    raise errors.ConnectionLost("connection lost: %d of %d calls unanswered "
                                                "(they may or may not have run)" % (n - got, n))
                while sent < n and sent - got < window:
                    k = min(n - sent, self.max_batch, window - (sent - got))
                    parts = []
                    for i in range(sent, sent + k):
                        rid = next(self.ids)
                        ids[i] = rid
                        pos[rid] = i
                        p = params_list[i]
                        if p is None:
                            parts.append('%s,"id":%d%s}' % (head, rid, tail))
                        else:
                            parts.append('%s,"id":%d,"params":%s%s}' % (head, rid, _dumps(p), tail))
                    self.s.send(("[" + ",".join(parts) + "]").encode())
                    sent += k
                left = 1000 if end is None else int((end - time.monotonic()) * 1000)
                if end is not None and left <= 0:
                    for rid in ids[:sent]:
                        replies.pop(rid, None)
                    raise errors.Timeout("%d of %d calls unanswered within %.3gs" % (n - got, n, timeout))
                self._recv_into(max(1, min(left, 1000)))
                for rid in list(replies):
                    i = pos.pop(rid, None)
                    if i is not None:
                        resps[i] = replies.pop(rid)
                        got += 1
            return resps


class _Method:
    __slots__ = ("_c", "_name")

    def __init__(self, c, name):
        self._c = c
        self._name = name

    def __getattr__(self, part):  # client.math.mul -> "math.mul"
        if part.startswith("_"):
            raise AttributeError(part)
        return _Method(self._c, self._name + "." + part)

    def __call__(self, *args, **kwargs):
        return self._c.call(self._name, *args, **kwargs)


class Client:
    """A blocking client: `client.add(5, 6)` calls task add and returns its result or raises its
    error (a zerotask.errors.Error subclass). Safe to share between threads (calls take turns)."""

    def __init__(self, broker=DEFAULT_BROKER, timeout=None, heartbeat=1.0):
        self._conn = _Conn(broker, heartbeat)
        self.timeout = timeout

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self, name)

    def call(self, method, *args, **kwargs):
        params, opts = _split(args, kwargs)
        timeout = kwargs.get("timeout", self.timeout)
        # Wait a little past the task's deadline: the broker's -32005/-32011 is the better answer.
        wait = None if timeout is None else timeout + 1.0
        return _raise_or_result(self._conn.request(method, params, opts, wait))

    def map(self, method, params_list, window=10000, return_exceptions=False, **kwargs):
        """Call method once per params (a list for positional params, a dict for named, None for
        none), pipelined in batches; returns the results in order. With return_exceptions, errors
        are returned in place instead of raised (the first one is raised otherwise)."""
        _, opts = _split((), {k: v for k, v in kwargs.items() if k in OPTIONS})
        timeout = kwargs.get("timeout", self.timeout)
        resps = self._conn.batch(method, params_list, opts, None if timeout is None else timeout + 1.0,
                                 window)
        out = []
        for r in resps:
            if "error" in r:
                e = errors.from_json(r["error"])
                if not return_exceptions:
                    raise e
                out.append(e)
            else:
                out.append(r.get("result"))
        return out

    def broker(self, method, params=None, timeout=None):
        """Call a broker.* method (stats, nodes, ping, ...) and return its result."""
        return _raise_or_result(self._conn.request("broker." + method, params, {}, timeout or self.timeout))

    def close(self):
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


STATES = ("QUEUED", "RUNNING", "SUCCESS", "FAILURE", "RETRY", "REVOKED", "EXPIRED", "UNKNOWN")
FINISHED = frozenset(("SUCCESS", "FAILURE", "REVOKED", "EXPIRED"))


class TaskHandle:
    """A submitted task."""

    def __init__(self, client, tid, state="QUEUED"):
        self._c = client
        self.id = tid
        self._record = {"id": tid, "state": state}

    def __repr__(self):
        return "<TaskHandle %s %s>" % (self.id, self._record.get("state"))

    def record(self):
        """The broker's task record (a dict: id, method, state, attempts, result/error, node)."""
        self._record = self._c._broker("status", {"id": self.id})
        return self._record

    def status(self):
        """The task's state now: QUEUED, RUNNING, SUCCESS, FAILURE, RETRY, REVOKED, EXPIRED or
        UNKNOWN."""
        if self._record.get("state") in FINISHED:
            return self._record["state"]
        return self.record().get("state")

    def ready(self):
        return self.status() in FINISHED

    def _outcome(self, rec):
        if rec.get("state") == "SUCCESS":
            return rec.get("result")
        if "error" in rec:
            raise errors.from_json(rec["error"])
        raise errors.Error("task %s is %s" % (self.id, rec.get("state")), code=errors.INTERNAL_ERROR,
                           data=rec)

    def result(self):
        """The result if the task is finished (its error raised); NotReady while it is not."""
        rec = self._record if self._record.get("state") in FINISHED else self.record()
        if rec.get("state") not in FINISHED:
            raise NotReady("task %s is %s" % (self.id, rec.get("state")))
        return self._outcome(rec)

    def wait(self, timeout=None):
        """Wait until the task is finished (at most timeout seconds: errors.Timeout past it) and
        return its result, or raise its error."""
        end = None if timeout is None else time.monotonic() + timeout
        rec = self._record
        while rec.get("state") not in FINISHED:
            wait = 10.0 if end is None else min(10.0, end - time.monotonic())
            if wait <= 0:
                raise errors.Timeout("task %s not finished within %.3gs" % (self.id, timeout))
            rec = self._c._broker("result", {"id": self.id, "wait_ms": max(1, int(wait * 1000))},
                                  timeout=wait + 5)
            self._record = rec
            if rec.get("state") == "UNKNOWN":
                raise errors.Error("task %s is unknown to the broker" % self.id, code=errors.INTERNAL_ERROR)
        return self._outcome(rec)

    get = wait  # Celery's AsyncResult.get

    def revoke(self):
        """Revoke the task: removed if queued, cancelled at its node if running. Returns the
        record after the revoke."""
        self._record = self._c._broker("revoke", {"id": self.id})
        return self._record


class NotReady(errors.Error):
    """result() of a task that is not finished."""


class AsyncClient:
    """Submits tasks (broker.submit) and returns TaskHandles: `t = aclient.add(5, 6)`, then
    `t.wait()`. Keyword arguments: the task options, and key (idempotency key)."""

    def __init__(self, broker=DEFAULT_BROKER, timeout=30.0, heartbeat=1.0):
        self._conn = _Conn(broker, heartbeat)
        self.timeout = timeout

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self, name)

    def _broker(self, method, params, timeout=None):
        return _raise_or_result(self._conn.request("broker." + method, params, {}, timeout or self.timeout))

    def call(self, method, *args, **kwargs):
        """Submit method with params; returns its TaskHandle at once."""
        params, opts = _split(args, kwargs, extra=("key",))
        sp = {"method": method}
        if params is not None:
            sp["params"] = params
        sp.update(opts)
        r = self._broker("submit", sp)
        return TaskHandle(self, r["id"], r.get("state", "QUEUED"))

    submit = call

    def handle(self, tid):
        """A TaskHandle for a task id submitted earlier (by any client)."""
        return TaskHandle(self, tid, "UNKNOWN")

    def close(self):
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AsyncioClient:
    """An asyncio client: `await aclient.add(5, 6)`. Calls from many coroutines are pipelined on
    one connection (requests made while one is sent go out together as a batch)."""

    def __init__(self, broker=DEFAULT_BROKER, timeout=None, heartbeat=1.0):
        import zmq.asyncio
        self._ctx = zmq.asyncio.Context()
        s = self._ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RECONNECT_IVL, 100)
        hb = int(heartbeat * 1000)
        s.setsockopt(zmq.HEARTBEAT_IVL, hb)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * hb)
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.connect(broker)
        self._s = s
        self._ids = itertools.count(1)
        self._pending = {}
        self._queue = []
        self._reader = None
        self._flusher = None
        self.timeout = timeout
        self._queue.append(_dumps({"jsonrpc": "2.0", "id": 0, "method": "broker.hello",
                                   "params": {"role": "client", "unordered": True}}))

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self, name)

    async def _read(self):
        while True:
            body = await self._s.recv()
            msg = json.loads(body)
            for r in (msg if isinstance(msg, list) else (msg,)):
                if isinstance(r, dict) and "method" not in r:
                    f = self._pending.pop(r.get("id"), None)
                    if f is not None and not f.done():
                        f.set_result(r)

    async def _flush(self):
        while self._queue:
            q, self._queue = self._queue, []
            for i in range(0, len(q), 1024):
                part = q[i:i + 1024]
                await self._s.send(("[" + ",".join(part) + "]").encode() if len(part) > 1 else part[0].encode())
        self._flusher = None

    async def request(self, method, params, opts, timeout):
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read())
        rid = next(self._ids)
        req = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            req["params"] = params
        req.update(opts)
        f = asyncio.get_running_loop().create_future()
        self._pending[rid] = f
        self._queue.append(_dumps(req))
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush())
        try:
            return await asyncio.wait_for(f, timeout)
        except asyncio.TimeoutError:
            self._pending.pop(rid, None)
            raise errors.Timeout("no answer to %s within %.3gs" % (method, timeout)) from None

    async def call(self, method, *args, **kwargs):
        params, opts = _split(args, kwargs)
        timeout = kwargs.get("timeout", self.timeout)
        r = await self.request(method, params, opts, None if timeout is None else timeout + 1.0)
        return _raise_or_result(r)

    async def broker(self, method, params=None, timeout=None):
        return _raise_or_result(await self.request("broker." + method, params, {}, timeout or self.timeout))

    async def close(self):
        if self._reader is not None:
            self._reader.cancel()
        self._s.close(0)
        self._ctx.term()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
