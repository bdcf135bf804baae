"""A session's requests on their way to gRPC: queued within bounds, consecutive frames leaving as one FrameBatch.

Both sessions queue what ``send`` makes (an encoded frame, a shared-memory frame's handle,
the ring offer, end or cancel), and their writer (gRPC's sender thread for the synchronous
session, a task for the asyncio one) takes the next message with ``RequestQueue.pop``: with
batches (protocol 1.2, ``Batching``), the frame at the head together with the frames queued
behind it, up to one batch's count and bytes. Nothing waits for a batch to fill: a batch is
what queued up while the previous message was being sent, so a frame never leaves later than
it would alone. The queue is the session's backpressure: ``send`` waits while it is full,
and it holds at most one batch's bytes (plus one frame) with batches, four requests without.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from c2r.v1 import coarse2real_pb2 as pb

from .frames import FRAME_BATCH, join_batch, serialized

Request = pb.ClientMessage | bytes  # bytes: a frame already encoded (frames.encode_frame)
SINGLES_QUEUED = 4  # requests queued without batches (protocol 1.1)


@dataclass(frozen=True)
class Batching:
    """How much one FrameBatch may carry: the daemon's GetInfo.limits."""

    frames: int
    bytes: int

    @classmethod
    def offered(cls, info: pb.InfoReply | None) -> "Batching | None":
        """The daemon's batch limits, or None for a daemon older than protocol 1.2 (it reads single frames only)."""
        if info is None or info.protocol_minor < 2 or not info.limits.max_batch_frames or not info.limits.max_batch_bytes:
            return None
        return cls(info.limits.max_batch_frames, info.limits.max_batch_bytes)


def request_bytes(request) -> int:
    if isinstance(request, bytes):
        return len(request)
    return request.ByteSize() if isinstance(request, pb.ClientMessage) else 0  # a session's own sentinel: 0


def is_frame(request) -> bool:
    return isinstance(request, bytes) or isinstance(request, pb.ClientMessage) and request.WhichOneof("kind") == "frame"


class RequestQueue:
    """The queued requests of one session, in order (not thread-safe: each session guards it its own way)."""

    def __init__(self, batching: Batching | None):
        self.batching = batching
        self.items: deque = deque()
        self.bytes = 0

    def full(self) -> bool:
        if self.batching is None:
            return len(self.items) >= SINGLES_QUEUED
        return bool(self.items) and (len(self.items) >= self.batching.frames or self.bytes >= self.batching.bytes)

    def append(self, request) -> None:
        self.items.append(request)
        self.bytes += request_bytes(request)

    def clear(self) -> None:
        self.items.clear()
        self.bytes = 0

    def pop(self):
        """The next message to write (the queue must not be empty): the head, or the frames at the head that fit one
        FrameBatch, joined (``frames.join_batch``; a single frame goes as it is)."""
        head = self._popleft()
        if self.batching is None or not is_frame(head) or not self.items or not is_frame(self.items[0]):
            return head
        frames = [serialized(head)]
        size = len(frames[0])
        while (self.items and is_frame(self.items[0]) and len(frames) < self.batching.frames
               and size + request_bytes(self.items[0]) <= self.batching.bytes):
            frames.append(serialized(self._popleft()))
            size += len(frames[-1])
        return frames[0] if len(frames) == 1 else join_batch(FRAME_BATCH, frames)

    def _popleft(self):
        request = self.items.popleft()
        self.bytes -= request_bytes(request)
        return request

    def __len__(self) -> int:
        return len(self.items)
