"""Exceptions the client raises, one per thing a caller can do something about.

The daemon ends a call with a gRPC status and a message that already says what was wrong;
``from_rpc_error`` keeps that message and adds what to do from the client's side (which
address, which flag), so a plugin can show ``str(error)`` to an artist as it is.
"""

from __future__ import annotations

import grpc


class C2RError(Exception):
    """Base of every error raised by ``c2r.client``."""


class DaemonUnavailable(C2RError):
    """No daemon answers, or the connection dropped.

    ``resume_from`` is the first frame index that did not come back when a session was cut
    mid-stream (None when no session was running): resend from there in a new session.
    """

    def __init__(self, message: str, resume_from: int | None = None):
        super().__init__(message)
        self.resume_from = resume_from


class VersionMismatch(C2RError):
    """The daemon speaks another major version of the wire protocol."""


class InvalidInput(C2RError):
    """A frame, an option or a job spec was refused (wrong dtype, shape, value, name...)."""


class OutOfGpuMemory(C2RError):
    """The window does not fit in GPU memory even with the daemon's lower-memory retry."""


class Unauthorized(C2RError):
    """The daemon wants a token this client did not send, or a different one."""


class Cancelled(C2RError):
    """The session or job was cancelled (by this client, another one, or the daemon)."""


def session_lost(address: str, returned: int, sent: int) -> DaemonUnavailable:
    """The error for a stream cut mid-session: which frames came back and where to resume."""
    return DaemonUnavailable(
        f"lost the daemon at {address} mid-session: frames 0..{returned - 1} came back ({sent} sent); "
        f"start a new session and resend from frame {returned}",
        resume_from=returned,
    )


def _is_gpu_memory(details: str) -> bool:
    # RESOURCE_EXHAUSTED covers both an oversize message and GPU memory (see the proto);
    # only the second names memory of the GPU/CUDA device.
    text = details.lower()
    return "memory" in text and any(word in text for word in ("gpu", "cuda", "vram", "device"))


def from_rpc_error(error: grpc.RpcError, address: str) -> C2RError:
    """Map a finished gRPC call's status onto the matching ``C2RError`` with a hint."""
    code = error.code() if hasattr(error, "code") else None
    details = (error.details() if hasattr(error, "details") else None) or str(error)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return DaemonUnavailable(
            f"the daemon at {address} is not reachable ({details}); start one with `c2r serve` "
            "or call connect(..., start_daemon=True) for a local address"
        )
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return VersionMismatch(f"{details} (daemon at {address}); install the same coarse2real major version on both sides")
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.NOT_FOUND):
        return InvalidInput(details)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        if _is_gpu_memory(details):
            return OutOfGpuMemory(f"{details}; lower --resolution or --window, or free GPU memory used by other programs")
        return InvalidInput(details)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return Unauthorized(f"{details}; pass the daemon's token (connect(token=...) or --token)")
    if code == grpc.StatusCode.CANCELLED:
        return Cancelled(f"the session was cancelled ({details})")
    return C2RError(f"the daemon at {address} failed: {code.name if code else 'error'}: {details}")
