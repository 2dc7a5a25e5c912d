"""The @task decorator and task registries.

    @task
    def add(a, b):
        return a + b

    @task(name="math.mul", retry_on_error=True)
    async def mul(a, b):
        return a * b

A handler takes the task's params: a JSON array as positional arguments, an object as keyword
arguments. It may be a plain function (run on the node's thread pool) or `async def` (run on the
node's event loop). `current()` gives the running task's context (id, attempt, deadline, and
`revoked`, an event a thread handler may check).
"""
import contextvars
import inspect
import threading
import time


class Registry:
    """A set of tasks by name. `task` (the module function) registers into DEFAULT."""

    def __init__(self):
        self.tasks = {}

    def task(self, fn=None, *, name=None, retry_on_error=False, time_limit=None):
        def register(f):
            n = name or f.__name__
            if n.startswith("broker.") or n.startswith("rpc."):
                raise ValueError("task name %r: broker.* and rpc.* are reserved" % n)
            self.tasks[n] = Task(n, f, retry_on_error, time_limit)
            return f
        return register(fn) if fn is not None else register

    def __contains__(self, name):
        return name in self.tasks

    def names(self):
        return sorted(self.tasks)


class Task:
    __slots__ = ("name", "fn", "is_async", "retry_on_error", "time_limit")

    def __init__(self, name, fn, retry_on_error=False, time_limit=None):
        self.name = name
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.retry_on_error = retry_on_error
        self.time_limit = time_limit


DEFAULT = Registry()


def task(fn=None, *, name=None, retry_on_error=False, time_limit=None, registry=None):
    """Register fn as a task (in `registry`, default DEFAULT), under `name` (default: its
    __name__). `retry_on_error` makes any exception a retryable failure; `time_limit` (seconds)
    bounds one run."""
    return (registry or DEFAULT).task(fn, name=name, retry_on_error=retry_on_error,
                                      time_limit=time_limit)


class Context:
    """What a running handler may know about its task."""

    __slots__ = ("id", "task_id", "attempt", "queue", "deadline", "revoked")

    def __init__(self, hid, task_id, attempt, queue, deadline):
        self.id = hid              # the hand-out id
        self.task_id = task_id     # the public task id (submitted tasks), else None
        self.attempt = attempt
        self.queue = queue
        self.deadline = deadline   # time.monotonic() value
        self.revoked = threading.Event()  # set on revoke (and when the deadline passes)

    def time_left(self):
        return self.deadline - time.monotonic()

    def cancelled(self):
        return self.revoked.is_set() or time.monotonic() >= self.deadline


_current = contextvars.ContextVar("zerotask_task", default=None)


def current():
    """The Context of the task the calling handler runs, or None outside a handler."""
    return _current.get()
