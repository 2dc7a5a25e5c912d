#!/usr/bin/python3
"""Celery peer for `zerotask bench`: the same trivial task, measured the same three ways.

  sync             one task at a time: add.delay(a, b).get()  (round-trip latency)
  with_results     --inflight tasks in flight, each result read back with AsyncResult.get()
  fire_and_forget  add_notify.apply_async(..., ignore_result) over one reused producer,
                   counted as the worker completes them (each run INCRs a Redis counter)

Runs with Debian's python3-celery (5.2.x) and python3-redis, a Redis broker and a Redis result
backend (two databases of the Redis at --redis). It starts one worker subprocess
(`/usr/bin/python3 -m celery -A celerypeer worker`, --pool prefork by default, --concurrency N) in
its own process group, and stops it by PID (SIGTERM, then SIGKILL to that group) when done.

The worker imports this same file as its app module (-A celerypeer): the configuration comes
from the CELERYPEER_REDIS and CELERYPEER_QUEUE environment variables, which the driver sets.
Each phase prints one JSON line on stdout; the worker's own log goes to a file.
"""

import argparse
import collections
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

import celery
import redis
from celery import Celery

REDIS_URL = os.environ.get("CELERYPEER_REDIS", "redis://127.0.0.1:6379")
QUEUE = os.environ.get("CELERYPEER_QUEUE", "zerotask-bench")
COUNTER_KEY = QUEUE + ":notify-done"

app = Celery("celerypeer")
app.conf.update(
    broker_url=REDIS_URL + "/0",
    result_backend=REDIS_URL + "/1",
    task_default_queue=QUEUE,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # Celery's defaults otherwise (prefetch multiplier 4, acks early, no events): what a user
    # who installs it gets.
    result_expires=600,
    broker_connection_retry_on_startup=True,
)


@app.task(name="add")
def add(a, b):
    """The trivial task: its result is stored in the result backend."""
    return a + b


_counter = None  # per worker process: the connection is made after the prefork fork


@app.task(name="add_notify", ignore_result=True)
def add_notify(a, b):
    """The same sum, result not stored; one INCR so that the driver can count completions."""
    global _counter
    if _counter is None:
        _counter = redis.Redis.from_url(REDIS_URL + "/1")
    s = a + b
    _counter.incr(COUNTER_KEY)
    return s


def percentiles(lat):
    """Nearest-rank p50/p90/p99, max and mean of latencies in seconds, as microseconds."""
    if not lat:
        return {"p50_us": 0, "p90_us": 0, "p99_us": 0, "max_us": 0, "mean_us": 0}
    lat = sorted(lat)

    def pct(q):
        i = max(0, min(len(lat) - 1, math.ceil(q * len(lat)) - 1))
        return round(lat[i] * 1e6, 2)

    return {
        "p50_us": pct(0.50),
        "p90_us": pct(0.90),
        "p99_us": pct(0.99),
        "max_us": round(lat[-1] * 1e6, 2),
        "mean_us": round(sum(lat) / len(lat) * 1e6, 2),
    }


def phase_results(mode, n, inflight, duration, timeout):
    """Up to n tasks (or as many as start within duration), inflight at once, each result read
    back in order of sending. A result that came back early is only seen when its turn comes,
    which can only add to its measured latency."""
    lat, errors = [], 0
    window = collections.deque()
    start = time.perf_counter()
    stop_at = start + duration
    sent = 0

    def collect():
        nonlocal errors
        t0, res, want = window.popleft()
        try:
            got = res.get(timeout=timeout)
            if got != want:
                raise ValueError("result %r, want %r" % (got, want))
            lat.append(time.perf_counter() - t0)
        except Exception as e:  # a failed or missing result counts as an error
            errors += 1
            print("celerypeer: %s: %s" % (mode, e), file=sys.stderr)

    while sent < n and time.perf_counter() < stop_at:
        if len(window) >= inflight:
            collect()
        sent += 1
        window.append((time.perf_counter(), add.delay(sent, 10), sent + 10))
    while window:
        collect()
    elapsed = time.perf_counter() - start
    out = {"mode": mode, "tasks": len(lat), "errors": errors, "elapsed_s": round(elapsed, 6),
           "tasks_per_s": round(len(lat) / elapsed, 1) if elapsed > 0 else 0,
           "in_flight": inflight}
    out.update(percentiles(lat))
    out["results_via"] = "redis result backend, AsyncResult.get() (pub/sub), read in send order"
    return out


def phase_notify(n, duration, timeout, counter):
    """Up to n fire-and-forget tasks from one thread over one producer, then a bounded wait until
    the worker has run them all."""
    counter.delete(COUNTER_KEY)
    sent, errors = 0, 0
    start = time.perf_counter()
    stop_at = start + duration
    with app.producer_or_acquire() as producer:
        while sent < n and time.perf_counter() < stop_at:
            try:
                add_notify.apply_async((sent, 10), producer=producer)
                sent += 1
            except Exception as e:
                errors += 1
                print("celerypeer: fire_and_forget: %s" % e, file=sys.stderr)
    deadline = time.perf_counter() + timeout
    done = int(counter.get(COUNTER_KEY) or 0)
    while done < sent and time.perf_counter() < deadline:
        time.sleep(0.001)
        done = int(counter.get(COUNTER_KEY) or 0)
    elapsed = time.perf_counter() - start
    out = {"mode": "fire_and_forget", "tasks": done, "errors": errors + sent - done,
           "elapsed_s": round(elapsed, 6),
           "tasks_per_s": round(done / elapsed, 1) if elapsed > 0 else 0, "in_flight": 1}
    out.update(percentiles([]))
    out["note"] = "one sending thread, apply_async over one producer; counted by a Redis INCR per task"
    return out


def start_worker(args, logdir):
    """Starts the worker in its own process group; returns (Popen, log path)."""
    log = os.path.join(logdir, "celery-worker.log")
    cmd = [sys.executable, "-m", "celery", "-A", "celerypeer", "worker",
           "--pool", args.pool, "--concurrency", str(args.concurrency),
           "--queues", QUEUE, "--hostname", "celerypeer-%d@%%h" % os.getpid(),
           "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    env = dict(os.environ, CELERYPEER_REDIS=REDIS_URL, CELERYPEER_QUEUE=QUEUE)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, cwd=here, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def stop_worker(proc, grace=15):
    """SIGTERM (Celery's warm shutdown) to the worker's PID, then SIGKILL to its process group
    (the worker and its pool children, nothing else) if it has not exited within grace s."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


def main():
    global REDIS_URL, QUEUE, COUNTER_KEY
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redis", default="127.0.0.1:6379", help="Redis host:port")
    ap.add_argument("--concurrency", type=int, default=8, help="worker --concurrency")
    ap.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"],
                    help="worker --pool (default prefork, Celery's own default)")
    ap.add_argument("--modes", default="sync,with_results,fire_and_forget")
    ap.add_argument("--sync-n", type=int, default=2000)
    ap.add_argument("--results-n", type=int, default=20000)
    ap.add_argument("--notify-n", type=int, default=50000)
    ap.add_argument("--inflight", type=int, default=128, help="with_results: tasks in flight")
    ap.add_argument("--duration", type=float, default=5.0,
                    help="each phase stops sending after this many seconds (or its -n)")
    ap.add_argument("--drain-timeout", type=float, default=60.0,
                    help="seconds a phase waits for outstanding tasks after it stops sending")
    args = ap.parse_args()
    if args.concurrency < 1 or args.inflight < 1:
        ap.error("--concurrency and --inflight must be at least 1")

    REDIS_URL = "redis://" + args.redis
    QUEUE = "zerotask-bench-%d" % os.getpid()
    COUNTER_KEY = QUEUE + ":notify-done"
    app.conf.update(broker_url=REDIS_URL + "/0", result_backend=REDIS_URL + "/1",
                    task_default_queue=QUEUE)
    counter = redis.Redis.from_url(REDIS_URL + "/1")
    counter.ping()

    logdir = tempfile.mkdtemp(prefix="celerypeer-")
    proc, log = start_worker(args, logdir)

    # On SIGTERM or SIGINT, stop the worker and leave at once. Raising SystemExit here instead is not
    # enough: it can land inside a destructor (AsyncResult.__del__), where Python ignores it.
    def on_term(signum, frame):
        stop_worker(proc, grace=5)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        try:  # warm-up (not measured): the worker is up and its pool ready
            add.delay(1, 2).get(timeout=120)
        except Exception as e:
            sys.exit("celerypeer: worker did not answer (log: %s): %s" % (log, e))
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            if mode == "sync":
                out = phase_results("sync", args.sync_n, 1, args.duration, args.drain_timeout)
            elif mode == "with_results":
                out = phase_results("with_results", args.results_n, args.inflight,
                                    args.duration, args.drain_timeout)
            elif mode == "fire_and_forget":
                out = phase_notify(args.notify_n, args.duration, args.drain_timeout, counter)
            else:
                sys.exit("celerypeer: unknown mode %r" % mode)
            line = {"system": "celery", "version": celery.__version__}
            line.update(out)
            line["worker_concurrency"] = args.concurrency
            line["pool"] = args.pool
            print(json.dumps(line), flush=True)
    finally:
        stop_worker(proc)
        with app.connection_for_write() as conn:  # leave nothing queued behind
            conn.default_channel.queue_purge(QUEUE)
        counter.delete(COUNTER_KEY)


if __name__ == "__main__":
    main()
