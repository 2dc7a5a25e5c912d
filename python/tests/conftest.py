"""Fixtures: a `zerotask broker` (the binary of $ZEROTASK_BIN, built by the Go e2e test), Go
nodes (`zerotask node`) and Python nodes (`python -m zerotask.node -m pytasks`)."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BROKER_LINE = re.compile(r"^broker listening on (tcp://\S+) \(PUB (tcp://\S+|none)\)")


def zerotask_bin():
    b = os.environ.get("ZEROTASK_BIN")
    if not b:
        pytest.fail("ZEROTASK_BIN is not set: run these tests through `go test ./e2e -run TestPythonPackage`")
    return b


class Proc:
    def __init__(self, args, env=None, ready=None, timeout=30):
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=e,
                                  text=True)
        self.first = None
        if ready is not None:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                line = self.p.stdout.readline()
                if not line:
                    break
                if ready.search(line):
                    self.first = line
                    return
            self.kill()
            raise RuntimeError("%s: not ready" % " ".join(args))

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)

    def term(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)


class Broker:
    def __init__(self, procs):
        self.procs = procs
        self.router = None
        self.pub = None
        self.proc = None
        self.start("tcp://127.0.0.1:0", "tcp://127.0.0.1:0")

    def start(self, router, pub):
        p = Proc([zerotask_bin(), "broker", "--listen", router, "--pub", pub, "--log-level", "warn"],
                 ready=BROKER_LINE)
        m = BROKER_LINE.search(p.first)
        self.router, self.pub, self.proc = m.group(1), m.group(2), p
        self.procs.append(p)

    def kill9_and_restart(self):
        self.proc.kill()
        for _ in range(100):  # the port may take a moment to free
            try:
                self.start(self.router, self.pub)
                return
            except RuntimeError:
                time.sleep(0.1)
        raise RuntimeError("broker did not restart")


@pytest.fixture
def procs():
    ps = []
    yield ps
    for p in ps:
        p.kill()


@pytest.fixture
def broker(procs):
    return Broker(procs)


@pytest.fixture
def pynode(broker, procs):
    def start(*extra, b=None):
        b = b or broker
        args = [sys.executable, "-m", "zerotask.node", "--broker", b.router, "--sub", b.pub,
                "-m", "pytasks"] + list(extra)
        env = {"PYTHONPATH": HERE + os.pathsep + os.environ.get("PYTHONPATH", "")}
        p = Proc(args, env=env, ready=re.compile("^node serving "))
        procs.append(p)
        return p
    return start


@pytest.fixture
def gonode(broker, procs):
    def start(*extra):
        p = Proc([zerotask_bin(), "node", "--broker", broker.router, "--sub", broker.pub,
                  "--log-level", "warn"] + list(extra), ready=re.compile("^node serving "))
        procs.append(p)
        return p
    return start


def eventually(cond, timeout=20.0, msg="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)  # polling interval
    raise AssertionError("%s not met within %ss" % (msg, timeout))
