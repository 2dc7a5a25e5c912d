import asyncio
import threading
import time

import pytest

from zerotask import errors
from zerotask.client import AsyncClient, AsyncioClient, Client, NotReady
from zerotask.node import Node
from zerotask.task import Registry, current


def test_in_process_asyncio_node_own_registry(broker):
    """Node.run() on the application's event loop, with a registry of its own: async handlers
    run on that loop, plain functions on the thread pool; stop() ends run()."""
    reg = Registry()
    loops = {}

    @reg.task(name="mine.async")
    async def mine_async(x):
        loops["handler"] = asyncio.get_running_loop()
        return {"x": x, "task": current().task_id}

    @reg.task(name="mine.thread")
    def mine_thread(x):
        return [x, threading.current_thread().name.startswith("zerotask-worker")]

    async def main():
        loops["app"] = asyncio.get_running_loop()
        node = Node(broker=broker.router, sub=broker.pub, concurrency=2, registry=reg)
        serving = asyncio.ensure_future(node.run(signals=False))
        async with AsyncioClient(broker.router, timeout=30) as c:
            assert await c.call("mine.async", 7) == {"x": 7, "task": None}
            assert await c.call("mine.thread", 8) == [8, True]
            assert await c.mine.thread(9) == [9, True]   # attribute access builds dotted names
        node.stop()
        await asyncio.wait_for(serving, 30)

    asyncio.run(main())
    assert loops["handler"] is loops["app"]


def test_queues(broker, pynode):
    pynode("--queues", "high")
    with Client(broker.router, timeout=30) as c:
        assert c.call("add", 1, 2, queue="high") == 3
        with pytest.raises(errors.Expired):   # nobody serves the default queue
            c.call("add", 1, 2, timeout=0.3)


def test_delay_key_and_handle(broker, pynode):
    pynode()
    with AsyncClient(broker.router) as ac:
        t0 = time.monotonic()
        t = ac.add(1, 2, delay=0.3)
        assert t.status() == "QUEUED"
        with pytest.raises(NotReady):
            t.result()
        assert t.wait(timeout=30) == 3
        assert time.monotonic() - t0 >= 0.3
        a = ac.call("add", 2, 2, key="once-1")
        b = ac.call("add", 2, 2, key="once-1")
        assert a.id == b.id
        assert ac.handle(a.id).wait(timeout=30) == 4
        rec = a.record()
        assert rec["state"] == "SUCCESS" and rec["attempts"] == 1


def test_client_shared_by_threads(broker, pynode):
    """A Client shared by threads: calls take turns and each gets its own answer."""
    pynode()
    with Client(broker.router, timeout=60) as c:
        bad = []

        def run(k):
            for i in range(200):
                if c.py_tag("%d-%d" % (k, i)) != "%d-%d" % (k, i):
                    bad.append((k, i))

        ths = [threading.Thread(target=run, args=(k,)) for k in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(120)
        assert bad == []
