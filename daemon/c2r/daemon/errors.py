"""Errors the front end turns into a gRPC status for the client.

Every failure a client can cause or act on is raised as a ``ClientError`` carrying its
gRPC status code, so the code that detects a problem also decides how it is reported;
the server maps it in one place (the ``server.reports_client_errors`` decorator, and the
Realify handler, which first flushes a session's accepted frames).
"""

from __future__ import annotations

import grpc


class ClientError(Exception):
    """A failure reported to the client with ``code`` and an actionable message."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, code: grpc.StatusCode | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidInput(ClientError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class VersionMismatch(ClientError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class TooLarge(ClientError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class EngineUnavailable(ClientError):
    """The engine failed twice on the same window (crash or hang): the work is given up."""

    code = grpc.StatusCode.UNAVAILABLE


class OutOfGpuMemory(ClientError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class WeightsMissing(ClientError):
    """The model or LoRA a session asked for has no weights on the daemon's machine."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class SessionCancelled(ClientError):
    code = grpc.StatusCode.CANCELLED
