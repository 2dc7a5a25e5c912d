"""ZeroTask for Python: nodes that run tasks and clients that call them, on the ZeroTask broker.

    from zerotask.task import task
    from zerotask.node import Node
    from zerotask.client import Client, AsyncClient, AsyncioClient
"""
from .errors import Error  # noqa: F401

__version__ = "0.1.0"
