"""Tasks the tests' Python nodes serve (python -m zerotask.node -m pytasks)."""
import asyncio
import time

from zerotask import errors
from zerotask.task import current, task


@task
def py_whoami():
    return "python"


@task
def py_tag(token):
    return token


@task
async def py_sleep_async(seconds):
    await asyncio.sleep(seconds)
    return "slept"


@task
def py_sleep_thread(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if current().cancelled():  # revoked, or the deadline passed
            return "stopped"
        time.sleep(0.01)
    return "slept"


@task
def py_flaky(times):
    """Fails retryably until attempt times+1."""
    a = current().attempt
    if a <= times:
        raise errors.Retry("not yet", after=0.01)
    return a


@task(retry_on_error=True)
def py_fails_then_works(times):
    a = current().attempt
    if a <= times:
        raise RuntimeError("boom %d" % a)
    return a


@task
def py_error():
    raise errors.Error("custom failure", code=-32050, data={"why": "test"})
