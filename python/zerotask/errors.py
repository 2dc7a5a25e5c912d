"""Errors as exceptions carrying the JSON-RPC code, message and data.

CODES lists the broker's codes under the names of the Go constants of package protocol
(protocol/errors.go); a Go test (e2e/python_pkg_test.go) checks that the two lists are equal.
"""

CODES = {
    "CodeServerErrorMin": -32099,
    "CodeServerErrorMax": -32000,
    "CodeHandlerError": -32000,
    "CodeQueueFull": -32001,
    "CodeTooManyInFlight": -32002,
    "CodeShuttingDown": -32003,
    "CodeRevoked": -32004,
    "CodeExpired": -32005,
    "CodeNodeLost": -32006,
    "CodeNoCredit": -32010,
    "CodeDeadline": -32011,
    "CodeBadAnswer": -32012,
    "CodeForbidden": -32013,
}

# The codes JSON-RPC 2.0 itself defines.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class Error(Exception):
    """A JSON-RPC error: code, message and data (None when absent)."""

    code = CODES["CodeHandlerError"]

    def __init__(self, message="", code=None, data=None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.data = data

    def __str__(self):
        s = "%s (%d)" % (self.message, self.code)
        if self.data is not None:
            s += " data=%r" % (self.data,)
        return s

    def to_json(self):
        e = {"code": self.code, "message": self.message}
        if self.data is not None:
            e["data"] = self.data
        return e


class ParseError(Error):
    code = PARSE_ERROR


class InvalidRequest(Error):
    code = INVALID_REQUEST


class MethodNotFound(Error):
    code = METHOD_NOT_FOUND


class InvalidParams(Error):
    code = INVALID_PARAMS


class InternalError(Error):
    code = INTERNAL_ERROR


class QueueFull(Error):
    code = CODES["CodeQueueFull"]


class TooManyInFlight(Error):
    code = CODES["CodeTooManyInFlight"]


class ShuttingDown(Error):
    code = CODES["CodeShuttingDown"]


class Revoked(Error):
    code = CODES["CodeRevoked"]


class Expired(Error):
    code = CODES["CodeExpired"]


class NodeLost(Error):
    code = CODES["CodeNodeLost"]


class NoCredit(Error):
    code = CODES["CodeNoCredit"]


class DeadlineExceeded(Error):
    code = CODES["CodeDeadline"]


class BadAnswer(Error):
    code = CODES["CodeBadAnswer"]


class Forbidden(Error):
    """The connection's authenticated key lacks the role the request needs."""

    code = CODES["CodeForbidden"]


class Timeout(Error, TimeoutError):
    """Raised locally when no answer came within the caller's timeout (no code on the wire)."""

    code = CODES["CodeDeadline"]


class ConnectionLost(Error):
    """Raised locally for calls a closed client can no longer answer."""

    code = INTERNAL_ERROR


class Retry(Exception):
    """Raise from a handler to ask the broker to run the task again (while it has attempts left),
    after `after` seconds if given, else after the task's backoff."""

    def __init__(self, message="retry", after=None, code=None, data=None):
        super().__init__(message)
        self.message = message
        self.after = after
        self.code = CODES["CodeHandlerError"] if code is None else code
        self.data = data


_BY_CODE = {c.code: c for c in (ParseError, InvalidRequest, MethodNotFound, InvalidParams,
                                InternalError, QueueFull, TooManyInFlight, ShuttingDown, Revoked,
                                Expired, NodeLost, NoCredit, DeadlineExceeded, BadAnswer,
                                Forbidden)}


def from_json(obj):
    """The exception for a JSON-RPC error object: the named subclass for a known code."""
    if not isinstance(obj, dict):
        return Error("malformed error: %r" % (obj,), code=INTERNAL_ERROR)
    code = obj.get("code", CODES["CodeHandlerError"])
    cls = _BY_CODE.get(code, Error)
    return cls(obj.get("message", ""), code=code, data=obj.get("data"))
