"""A ZeroTask node: connects to a broker and runs the tasks of a registry.

    from zerotask.node import Node
    from zerotask.task import task

    @task
    def echo(foo):
        return foo

    Node().start()          # blocking; or: await Node().run() inside asyncio

It speaks the node side of docs/protocol.md: hello on every new connection (a socket monitor
tells it) and on broker.hello_required, credit only after the hello's reply, a credit window that
sizes itself to the service time and the round trip, running notices, revokes (PUB `control` and
the DEALER), deadlines (-32011, -32005), retryable errors, and broker.bye on a graceful stop.
Plain functions run on a thread pool, `async def` handlers on the event loop of run().

`python -m zerotask.node` serves add and subtract (see -h).
"""
import argparse
import asyncio
import collections
import importlib
import json
import logging
import math
import os
import queue
import signal
import socket
import threading
import time

import zmq

from . import errors
from .task import DEFAULT, Context, Registry, _current

log = logging.getLogger("zerotask.node")

DEFAULT_BROKER = "tcp://127.0.0.1:5555"
DEFAULT_SUB = "tcp://127.0.0.1:5556"
DEFAULT_MAX_MSG_SIZE = 1 << 20
# The bound of a node's credit window beyond its concurrency. Lower than the Go node's
# (protocol.DefaultPrefetch): a Python node runs tens of thousands of tasks a second, and 4096
# in flight covers a round trip of tens of milliseconds at that rate.
DEFAULT_PREFETCH = 4096
PROBE_EVERY = 0.05
# The credit window's gain (docs/protocol.md, "Credit that sizes itself").
WINDOW_GAIN = 4
PROBE_GIVE_UP = 0.5
RUNNING_AFTER = 0.001

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class _Job:
    __slots__ = ("hid", "run", "task", "params", "ctx", "started", "reported", "answered",
                 "dropped", "atask")

    def __init__(self, hid, run, task, params, ctx):
        self.hid = hid
        self.run = run
        self.task = task
        self.params = params
        self.ctx = ctx
        self.started = 0.0
        self.reported = False
        self.answered = False  # an answer went out already (deadline, revoke)
        self.dropped = False   # stopping: not started, not to be answered
        self.atask = None


def _error(hid, code, message, data=None, retry=False, after=None):
    e = {"code": code, "message": message}
    if data is not None:
        e["data"] = data
    r = {"jsonrpc": "2.0", "id": hid, "error": e}
    if retry:
        r["retry"] = True
        if after is not None:
            r["retry_after_ms"] = max(1, int(after * 1000))
    return _dumps(r)


def _call(fn, params):
    if params is None:
        return fn()
    if isinstance(params, list):
        return fn(*params)
    return fn(**params)


def _binding_error(exc):
    """Whether a TypeError was raised by the call itself (params that do not fit the handler),
    not inside the handler."""
    if not isinstance(exc, TypeError):
        return False
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code in _CALLERS


def _answer_exc(job, exc, tb_depth_one):
    """The answer for a handler's exception."""
    hid = job.hid
    if job.ctx.revoked.is_set() and job.ctx.deadline > time.monotonic():
        return _error(hid, errors.CODES["CodeRevoked"], "task revoked")
    if time.monotonic() >= job.ctx.deadline:
        return _error(hid, errors.CODES["CodeDeadline"], "task deadline exceeded")
    if isinstance(exc, errors.Retry):
        return _error(hid, exc.code, exc.message, exc.data, retry=True, after=exc.after)
    if isinstance(exc, errors.Error):
        return _error(hid, exc.code, exc.message, exc.data)
    if isinstance(exc, TypeError) and tb_depth_one:
        return _error(hid, errors.INVALID_PARAMS, "Invalid params: %s" % exc)
    return _error(hid, errors.CODES["CodeHandlerError"], str(exc) or type(exc).__name__,
                  {"type": type(exc).__name__}, retry=job.task.retry_on_error)


_CALLERS = set()


class Node:
    """A node serving the tasks of `registry` (default: those registered with @task).

    broker: the broker's ROUTER endpoint; sub: its PUB endpoint (None: no subscription, revokes
    then come on the DEALER only); concurrency: tasks run at once (thread-pool size, and the
    bound of async handlers running at once); queues: broker queues to take tasks from;
    prefetch: tasks held beyond concurrency at most; grace: how long running tasks may finish
    on stop; fixed_credit: keep the window at concurrency + prefetch.
    """

    def __init__(self, broker=DEFAULT_BROKER, sub=DEFAULT_SUB, concurrency=None, queues=None,
                 registry=None, name=None, prefetch=DEFAULT_PREFETCH, heartbeat=1.0, grace=30.0,
                 fixed_credit=False, max_msg_size=DEFAULT_MAX_MSG_SIZE):
        self.broker = broker
        self.sub = sub
        self.concurrency = concurrency or max(4, os.cpu_count() or 1)
        self.queues = list(queues) if queues else None
        self.registry = registry or DEFAULT
        self.name = name or "%s-%d" % (socket.gethostname(), os.getpid())
        self.prefetch = prefetch
        self.heartbeat = heartbeat
        self.grace = grace
        self.fixed_credit = fixed_credit
        self.max_msg_size = max_msg_size
        self.identity = b"node-" + os.urandom(8).hex().encode()
        self._stop = threading.Event()
        self._done = collections.deque()
        self._wake_flag = False
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        self._jobs = queue.SimpleQueue()
        self._started = collections.deque()
        self._loop = None
        self.run_id = None  # the broker run of the last hello reply

    # ---- public API -------------------------------------------------------------------------

    def start(self):
        """Serve until SIGINT/SIGTERM (or stop()); blocking."""
        asyncio.run(self.run())

    async def run(self, signals=True):
        """Serve on the running event loop (async handlers run on it) until stop() or, when
        signals is true and this is the main thread, SIGINT/SIGTERM."""
        self._loop = loop = asyncio.get_running_loop()
        finished = loop.create_future()
        installed = []
        if signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self.stop)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError):
                    pass
        self._async_sem = asyncio.Semaphore(self.concurrency)

        def io():
            try:
                self._serve()
            except BaseException as e:  # surfaced by run()
                loop.call_soon_threadsafe(lambda: finished.done() or finished.set_exception(e))
            else:
                loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))

        t = threading.Thread(target=io, name="zerotask-node-io", daemon=True)
        t.start()
        try:
            await finished
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def stop(self):
        """Stop gracefully: no more credit, unstarted tasks handed back, running tasks finish
        (bounded by grace), their results sent, then broker.bye."""
        self._stop.set()
        self._wake()

    # ---- workers ----------------------------------------------------------------------------

    def _wake(self):
        if not self._wake_flag:
            self._wake_flag = True
            try:
                os.write(self._wfd, b"x")
            except OSError:
                pass

    def _worker(self):
        jobs = self._jobs
        while True:
            batch = jobs.get()
            if batch is None:
                return
            out = []
            for job in batch:
                out.append(self._execute(job))
            self._done.extend(out)
            self._wake()

    def _execute(self, job):
        ctx = job.ctx
        if job.dropped:
            return job, None, 0.0
        if ctx.revoked.is_set():
            return job, _error(job.hid, errors.CODES["CodeRevoked"], "task revoked"), 0.0
        t0 = time.monotonic()
        if t0 >= ctx.deadline:
            return job, _error(job.hid, errors.CODES["CodeExpired"], "task expired"), 0.0
        job.started = t0
        self._started.append(job)
        token = _current.set(ctx)
        try:
            r = _call(job.task.fn, job.params)
        except BaseException as e:  # noqa: B902 - every failure is an answer
            ans = _answer_exc(job, e, _binding_error(e))
        else:
            if time.monotonic() >= ctx.deadline:
                # The deadline ended while it ran: the broker has its -32011 (or gets it now).
                ans = _error(job.hid, errors.CODES["CodeDeadline"], "task deadline exceeded")
            elif ctx.revoked.is_set():
                ans = _error(job.hid, errors.CODES["CodeRevoked"], "task revoked")
            else:
                try:
                    ans = '{"jsonrpc":"2.0","id":%s,"result":%s}' % (_dumps(job.hid), _dumps(r))
                except (TypeError, ValueError) as e:
                    ans = _error(job.hid, errors.INTERNAL_ERROR, "result not JSON: %s" % e)
        finally:
            _current.reset(token)
        return job, ans, time.monotonic() - t0

    async def _run_async(self, job):
        ctx = job.ctx
        ans = None
        dur = 0.0
        if job.dropped:
            pass
        elif ctx.revoked.is_set():
            ans = _error(job.hid, errors.CODES["CodeRevoked"], "task revoked")
        else:
            async with self._async_sem:
                t0 = time.monotonic()
                if t0 >= ctx.deadline:
                    ans = _error(job.hid, errors.CODES["CodeExpired"], "task expired")
                elif job.dropped:
                    pass
                else:
                    job.started = t0
                    self._started.append(job)
                    _current.set(ctx)
                    try:
                        p = job.params
                        coro = (job.task.fn() if p is None else job.task.fn(*p)
                                if isinstance(p, list) else job.task.fn(**p))
                        r = await asyncio.wait_for(coro, ctx.deadline - t0)
                        ans = '{"jsonrpc":"2.0","id":%s,"result":%s}' % (_dumps(job.hid), _dumps(r))
                    except asyncio.CancelledError:
                        if ctx.revoked.is_set() and time.monotonic() < ctx.deadline:
                            ans = _error(job.hid, errors.CODES["CodeRevoked"], "task revoked")
                        else:
                            ans = _error(job.hid, errors.CODES["CodeDeadline"], "task deadline exceeded")
                    except asyncio.TimeoutError:
                        ans = _error(job.hid, errors.CODES["CodeDeadline"], "task deadline exceeded")
                    except Exception as e:
                        ans = _answer_exc(job, e, _binding_error(e))
                    dur = time.monotonic() - t0
        self._done.append((job, ans, dur))
        self._wake()

    def _start_async(self, jobs):
        for j in jobs:
            j.atask = self._loop.create_task(self._run_async(j))

    # ---- the I/O thread ---------------------------------------------------------------------

    def _serve(self):
        zctx = zmq.Context()
        d = zctx.socket(zmq.DEALER)
        d.setsockopt(zmq.IDENTITY, self.identity)
        d.setsockopt(zmq.LINGER, 2000)
        d.setsockopt(zmq.RECONNECT_IVL, 100)
        d.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        hb = int(self.heartbeat * 1000)
        d.setsockopt(zmq.HEARTBEAT_IVL, hb)
        d.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * hb)
        d.setsockopt(zmq.HEARTBEAT_TTL, 3 * hb)
        d.setsockopt(zmq.SNDHWM, 0)
        d.setsockopt(zmq.RCVHWM, 0)
        mon = d.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        d.connect(self.broker)
        s = None
        if self.sub:
            s = zctx.socket(zmq.SUB)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.HEARTBEAT_IVL, hb)
            s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * hb)
            s.setsockopt(zmq.SUBSCRIBE, b"control")
            s.connect(self.sub)
        workers = [threading.Thread(target=self._worker, name="zerotask-worker-%d" % i, daemon=True)
                   for i in range(self.concurrency)]
        for w in workers:
            w.start()
        try:
            _IO(self, d, mon, s).loop()
        finally:
            for _ in workers:
                self._jobs.put(None)
            try:
                d.disable_monitor()
            except zmq.ZMQError:
                pass
            mon.close(0)
            if s is not None:
                s.close(0)
            d.close()
            zctx.term()


class _IO:
    """The state the I/O thread keeps: connection, credit books, held tasks, outgoing queue."""

    def __init__(self, node, dealer, mon, sub):
        self.n = node
        self.d = dealer
        self.mon = mon
        self.sub = sub
        self.capacity = node.concurrency + node.prefetch
        self.held = {}
        self.granted = 0       # granted and not yet used, on this connection
        self.acked = False     # the hello of this connection was answered
        self.run = None
        self.hello_seq = 0
        self.hello_id = None
        self.out = []          # (kind, encoded): kind "a" answer of run, "c" credit, "n" notice
        self.max_batch = 1024
        self.max_msg = node.max_msg_size
        self.svc = None
        self.rtts = collections.deque(maxlen=8)
        self.probe_seq = 0
        self.probe_open = None  # (id, sent at)
        self.probe_last = 0.0
        self.stopping_since = None
        self.next_deadline_scan = 0.0
        self.earliest = float("inf")  # the earliest deadline of a held task not yet answered

    # -- credit window
    def window(self):
        n = self.n
        if n.fixed_credit:
            return self.capacity
        c = n.concurrency
        if self.svc is None or not self.rtts:
            return min(2 * c, self.capacity)
        rtt = min(self.rtts)
        w = c + max(1, math.ceil(WINDOW_GAIN * c * rtt / max(self.svc, 1e-7)))
        return max(c, min(w, self.capacity))

    def grant(self, force=False):
        if not self.acked or self.stopping_since is not None:
            return
        w = self.window()
        want = w - len(self.held) - self.granted
        if want <= 0:
            return
        if not force and want < w // 2 and self.n._jobs.qsize() > 0:
            return
        self.granted += want
        now = time.monotonic()
        if self.probe_open and now - self.probe_open[1] > PROBE_GIVE_UP:
            self.probe_open = None
        if self.probe_open is None and now - self.probe_last >= PROBE_EVERY:
            self.probe_seq += 1
            pid = "credit-%d" % self.probe_seq
            self.probe_open = (pid, now)
            self.probe_last = now
            self.out.append(("c", '{"jsonrpc":"2.0","id":"%s","method":"broker.credit","params":[%d]}' % (pid, want)))
        else:
            self.out.append(("c", '{"jsonrpc":"2.0","method":"broker.credit","params":[%d]}' % want))

    # -- hello
    def hello(self):
        self.acked = False
        self.hello_seq += 1
        self.hello_id = "hello-%d" % self.hello_seq
        n = self.n
        p = {"role": "node", "name": n.name, "methods": n.registry.names(),
             "concurrency": n.concurrency, "prefetch": n.prefetch, "max_msg_size": n.max_msg_size}
        if n.queues:
            p["queues"] = n.queues
        msg = {"jsonrpc": "2.0", "id": self.hello_id, "method": "broker.hello", "params": p}
        self.d.send(_dumps(msg).encode(), zmq.NOBLOCK)

    def on_hello_reply(self, m):
        if "error" in m:
            log.error("broker refused the hello: %s", m["error"])
            return
        res = m.get("result") or {}
        new = res.get("broker")
        if self.run is not None and new != self.run:
            log.info("broker run %s replaced %s: answers of its tasks dropped", new, self.run)
            self.out = [o for o in self.out if o[0] == "n"]
        else:
            self.out = [o for o in self.out if o[0] != "c"]
        self.run = new
        self.n.run_id = new
        self.max_batch = int(res.get("max_batch") or 1024)
        self.max_msg = min(self.n.max_msg_size, int(res.get("max_msg_size") or self.max_msg))
        self.acked = True
        self.granted = 0
        self.probe_open = None
        log.info("hello answered by broker %s", new)
        self.grant(force=True)

    # -- incoming
    def on_message(self, body):
        try:
            msg = json.loads(body)
        except ValueError:
            log.warning("unreadable message from the broker")
            return
        members = msg if isinstance(msg, list) else (msg,)
        sync_batch = []
        async_batch = []
        for m in members:
            if not isinstance(m, dict):
                continue
            method = m.get("method")
            if method is not None:
                if "id" in m and not method.startswith("broker."):
                    self.on_task(m, sync_batch, async_batch)
                elif method == "broker.revoke":
                    self.revoke(m.get("params"))
                elif method == "broker.hello_required":
                    log.info("broker asks for a hello")
                    self.hello()
                elif method == "broker.shutdown":
                    log.info("broker shutting down")
                continue
            mid = m.get("id")
            if mid == self.hello_id:
                self.on_hello_reply(m)
            elif self.probe_open and mid == self.probe_open[0]:
                self.rtts.append(time.monotonic() - self.probe_open[1])
                self.probe_open = None
            elif "error" in m:
                log.warning("broker error: %s", m["error"])
        if sync_batch:
            # Spread a packed array over the workers in chunks: one queue operation per chunk.
            c = self.n.concurrency
            size = max(1, min(64, len(sync_batch) // c))
            for i in range(0, len(sync_batch), size):
                self.n._jobs.put(sync_batch[i:i + size])
        if async_batch:
            self.n._loop.call_soon_threadsafe(self.n._start_async, async_batch)

    def on_task(self, m, sync_batch, async_batch):
        hid = m["id"]
        if self.run is None or not isinstance(hid, str) or not hid.startswith(self.run + "."):
            return  # not of the run this connection said hello to
        if self.granted > 0:
            self.granted -= 1
        if len(self.held) >= self.capacity or self.stopping_since is not None:
            self.out.append(("a", _error(hid, errors.CODES["CodeNoCredit"],
                                         "node: task sent without credit while the node is full",
                                         {"no_credit": True})))
            return
        t = self.n.registry.tasks.get(m.get("method"))
        if t is None:
            self.out.append(("a", _error(hid, errors.METHOD_NOT_FOUND, "Method not found")))
            return
        now = time.monotonic()
        deadline = now + m.get("timeout_ms", 1800000) / 1000.0
        if t.time_limit:
            deadline = min(deadline, now + t.time_limit)
        ctx = Context(hid, m.get("task"), m.get("attempt", 1), m.get("queue", "default"), deadline)
        job = _Job(hid, self.run, t, m.get("params"), ctx)
        self.held[hid] = job
        if deadline < self.earliest:
            self.earliest = deadline
        (async_batch if t.is_async else sync_batch).append(job)

    def revoke(self, params):
        ids = params.get("ids") if isinstance(params, dict) else params
        for hid in ids or ():
            job = self.held.get(hid)
            if job is None:
                continue
            job.ctx.revoked.set()
            if job.atask is not None:
                self.n._loop.call_soon_threadsafe(job.atask.cancel)

    # -- finished tasks, running notices, deadlines
    def drain_done(self):
        done = self.n._done
        freed = 0
        while done:
            job, ans, dur = done.popleft()
            self.held.pop(job.hid, None)
            freed += 1
            if ans is not None and not job.answered and job.run == self.run:
                self.out.append(("a", ans))
            if dur > 0:
                self.svc = dur if self.svc is None else self.svc + (dur - self.svc) / 8
        return freed

    def running_notices(self, now):
        st = self.n._started
        keep = []
        ids = []
        while st:
            job = st.popleft()
            if job.hid not in self.held or job.reported:
                continue
            if now - job.started >= RUNNING_AFTER:
                job.reported = True
                if job.run == self.run:
                    ids.append(job.hid)
            else:
                keep.append(job)
        st.extend(keep)
        if ids:
            self.out.append(("n", '{"jsonrpc":"2.0","method":"broker.running","params":%s}' % _dumps(ids)))
        return bool(keep)

    def deadlines(self, now):
        if now < self.earliest:
            return  # no held task's deadline has passed: no scan
        self.earliest = float("inf")
        for job in self.held.values():
            if job.answered:
                continue
            if now < job.ctx.deadline:
                self.earliest = min(self.earliest, job.ctx.deadline)
                continue
            job.ctx.revoked.set()
            if job.atask is not None:
                self.n._loop.call_soon_threadsafe(job.atask.cancel)
            elif job.started:
                # A thread cannot be stopped: answer now, keep the slot until it returns.
                job.answered = True
                if job.run == self.run:
                    self.out.append(("a", _error(job.hid, errors.CODES["CodeDeadline"], "task deadline exceeded")))

    # -- outgoing
    def flush(self):
        if not self.acked or not self.out:
            return
        limit = 2 * self.max_batch
        budget = self.max_msg - 2
        out = self.out
        i = 0
        while i < len(out):
            j = i
            size = 0
            while j < len(out) and j - i < limit:
                ln = len(out[j][1]) + 1
                if j > i and size + ln > budget:
                    break
                size += ln
                j += 1
            if j - i == 1:
                body = out[i][1]
            else:
                body = "[" + ",".join(o[1] for o in out[i:j]) + "]"
            try:
                self.d.send(body.encode(), zmq.NOBLOCK)
            except zmq.Again:
                break
            i = j
        del out[:i]

    def loop(self):
        n = self.n
        poller = zmq.Poller()
        poller.register(self.d, zmq.POLLIN)
        poller.register(self.mon, zmq.POLLIN)
        if self.sub is not None:
            poller.register(self.sub, zmq.POLLIN)
        poller.register(n._rfd, zmq.POLLIN)
        pending_running = False
        while True:
            now = time.monotonic()
            if n._stop.is_set() and self.stopping_since is None:
                self.begin_stop(now)
            if self.stopping_since is not None:
                if not self.held or now - self.stopping_since > n.grace:
                    self.end_stop()
                    return
            timeout = 1 if pending_running else 50
            events = dict(poller.poll(timeout))
            if n._rfd in events:
                try:
                    os.read(n._rfd, 4096)
                except BlockingIOError:
                    pass
                n._wake_flag = False
            if self.mon in events:
                while True:
                    try:
                        ev = self.mon.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    from zmq.utils.monitor import parse_monitor_message
                    if parse_monitor_message(ev)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                        log.info("connected to %s: hello", n.broker)
                        self.hello()
            if self.d in events:
                for _ in range(64):
                    try:
                        body = self.d.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self.on_message(body)
            if self.sub is not None and self.sub in events:
                while True:
                    try:
                        topic, body = self.sub.recv_multipart(zmq.NOBLOCK)[:2]
                    except (zmq.Again, ValueError):
                        break
                    try:
                        msg = json.loads(body)
                    except ValueError:
                        continue
                    for m in (msg if isinstance(msg, list) else (msg,)):
                        if isinstance(m, dict) and m.get("method") == "broker.revoke":
                            self.revoke(m.get("params"))
            self.drain_done()
            now = time.monotonic()
            pending_running = self.running_notices(now)
            if now >= self.next_deadline_scan:
                self.deadlines(now)
                self.next_deadline_scan = now + 0.02
            self.grant()
            self.flush()

    def begin_stop(self, now):
        log.info("stopping: %d tasks held", len(self.held))
        self.stopping_since = now
        for job in self.held.values():
            if not job.started:
                job.dropped = True
        # Dropped jobs still pass through the workers (they answer nothing); async ones too.

    def end_stop(self):
        self.drain_done()
        self.running_notices(time.monotonic() + 1)
        if self.acked:
            self.out = [o for o in self.out if o[0] != "c"]
            self.out.append(("n", '{"jsonrpc":"2.0","method":"broker.bye"}'))
            self.flush()
        for job in self.held.values():
            if job.atask is not None:
                self.n._loop.call_soon_threadsafe(job.atask.cancel)
        log.info("stopped")


_CALLERS.update((_call.__code__, Node._run_async.__code__))


# ---- python -m zerotask.node -------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m zerotask.node",
        description="Run a ZeroTask node serving add and subtract (and the @task functions of "
                    "the modules named with --module).")
    p.add_argument("--broker", default=os.environ.get("ZEROTASK_BROKER", DEFAULT_BROKER),
                   help="broker ROUTER endpoint (default %(default)s)")
    p.add_argument("--sub", default=DEFAULT_SUB,
                   help='broker PUB endpoint, "none" for no subscription (default %(default)s)')
    p.add_argument("--concurrency", type=int, default=0, help="tasks run at once (0: max(4, CPUs))")
    p.add_argument("--prefetch", type=int, default=DEFAULT_PREFETCH,
                   help="tasks held beyond --concurrency at most (default %(default)s)")
    p.add_argument("--queues", default="", help="comma-separated broker queues (default: default)")
    p.add_argument("--name", default=None, help="node name shown by broker.nodes (default host-pid)")
    p.add_argument("--grace", type=float, default=30.0,
                   help="seconds running tasks may take to finish on SIGINT/SIGTERM (default 30)")
    p.add_argument("--fixed-credit", action="store_true",
                   help="keep the credit window at concurrency + prefetch")
    p.add_argument("-m", "--module", action="append", default=[],
                   help="import this module and serve its @task functions too (repeatable)")
    p.add_argument("--log-level", default="warning", help="debug, info, warning or error")
    a = p.parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    reg = Registry()

    @reg.task
    def add(x, y):
        return x + y

    @reg.task
    def subtract(x, y):
        return x - y

    for mod in a.module:
        importlib.import_module(mod)
    reg.tasks.update(DEFAULT.tasks)
    node = Node(broker=a.broker, sub=None if a.sub == "none" else a.sub,
                concurrency=a.concurrency or None, prefetch=a.prefetch,
                queues=[q for q in a.queues.split(",") if q] or None, registry=reg, name=a.name,
                grace=a.grace, fixed_credit=a.fixed_credit)
    print("node serving %s on %s" % (", ".join(reg.names()), a.broker), flush=True)
    node.start()


if __name__ == "__main__":
    main()
