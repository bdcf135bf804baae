"""A Realify session over one bidirectional gRPC stream (the synchronous client).

``send`` packs a frame and puts it on a small bounded queue that gRPC's sender thread
drains as fast as flow control lets it: a client faster than the daemon blocks in ``send``
instead of piling frames up in memory. A reader thread drains the daemon's replies into
an unbounded local queue, so a caller that sends everything before reading can never
deadlock the stream.

Same host (``shared_memory``, granted in the effective config): frames go through a ring of
shared-memory slots instead (``shm.FrameRing``, layout in coarse2real.proto). At the first
frame the session makes a ring sized for it and offers it; once the daemon has mapped it,
``send`` copies each frame into a free slot and sends only the slot and plane offsets; the
daemon lists slots it has copied out in ``SlotsReleased``. A ring the daemon cannot map
(another machine after all, a container) or a frame that does not fit its slot goes as
bytes in the stream, so the choice never fails a session.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterator

import grpc

from c2r.v1 import coarse2real_pb2 as pb

from .errors import C2RError, Cancelled, DaemonUnavailable, InvalidInput, from_rpc_error, session_lost
from .events import Event, EventDecoder, Result
from . import shm
from .frames import FramePlanes, check_message_size, pack_frame

# Seconds to wait before each retry of a stream that dropped before SessionStarted.
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)
_CLOSE = object()  # tells the request generator to stop without sending anything


def _messages_until_closed(outbox: queue.Queue) -> Iterator[pb.ClientMessage]:
    """The request stream: messages from ``outbox`` up to and including end/cancel."""
    while True:
        message = outbox.get()
        if message is _CLOSE:
            return
        yield message
        if message.WhichOneof("kind") in ("end", "cancel"):
            return


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def _close_requests(outbox: queue.Queue) -> None:
    """Unblock the request generator for good, even if a racing send() refills the queue."""
    while True:
        _drain(outbox)
        try:
            outbox.put_nowait(_CLOSE)
            return
        except queue.Full:
            continue


class Session:
    """One realify session. Use as a context manager; leaving it early cancels the session."""

    def __init__(
        self,
        open_stream: Callable[[Iterator[pb.ClientMessage]], grpc.Call],
        config: pb.SessionConfig,
        address: str,
        max_message_bytes: int,
        max_queued: int = 4,
        ring_slots: int = 8,
    ):
        self.address = address
        self._max_message_bytes = max_message_bytes
        self._max_queued = max_queued
        self._decoder = EventDecoder()
        self._inbox: queue.Queue = queue.Queue()
        self._cancelled = threading.Event()
        self._finished = threading.Event()
        self._ended = False
        self._failure: C2RError | None = None
        self.frames_sent = 0
        self._ring_slots = ring_slots
        self._ring: shm.FrameRing | None = None
        self._ring_status: queue.Queue[pb.RingStatus] = queue.Queue()
        self._free_slots: queue.Queue[int] = queue.Queue()
        self._call, first = self._open(open_stream, config)
        self.session_id: str = first.session_id
        self.effective: pb.SessionConfig = first.effective
        self.warnings: list[str] = list(first.warnings)
        self.shared_memory = first.effective.transport == pb.SHARED_MEMORY  # granted; may still fall back at the ring
        self._reader = threading.Thread(target=self._read, name=f"c2r-session-{self.session_id}", daemon=True)
        self._reader.start()

    # ---------------------------------------------------------------- opening

    def _open(self, open_stream, config):
        delays = iter(RETRY_DELAYS)
        while True:
            self._outbox: queue.Queue = queue.Queue(maxsize=self._max_queued)
            self._outbox.put(pb.ClientMessage(config=config))
            call = open_stream(_messages_until_closed(self._outbox))
            try:
                first = next(call)
            except StopIteration:
                raise DaemonUnavailable(f"the daemon at {self.address} closed the session before starting it") from None
            except grpc.RpcError as error:
                self._outbox.put(_CLOSE)
                delay = next(delays, None)
                if error.code() != grpc.StatusCode.UNAVAILABLE or delay is None:
                    raise from_rpc_error(error, self.address) from None
                time.sleep(delay)
                continue
            if first.WhichOneof("kind") != "started":
                call.cancel()
                raise C2RError(f"the daemon at {self.address} answered {first.WhichOneof('kind')!r} before SessionStarted")
            return call, first.started

    # ---------------------------------------------------------------- reading

    def _read(self) -> None:
        try:
            for message in self._call:
                kind = message.WhichOneof("kind")
                if kind == "released":
                    for slot in message.released.slots:
                        self._free_slots.put(slot)
                elif kind == "ring":
                    self._ring_status.put(message.ring)
                else:
                    for event in self._decoder.decode(message):
                        self._inbox.put(event)
        except grpc.RpcError as error:
            self._failure = self._stream_error(error)
            self._inbox.put(self._failure)
        finally:
            self._finished.set()
            _close_requests(self._outbox)
            self._inbox.put(_CLOSE)

    def _stream_error(self, error: grpc.RpcError) -> C2RError:
        mapped = from_rpc_error(error, self.address)
        if isinstance(mapped, DaemonUnavailable):
            return session_lost(self.address, self._decoder.next_index, self.frames_sent)
        return mapped

    def events(self) -> Iterator[Event]:
        """Results (final ones in index order), progress, warnings, then Finished.

        Raises the mapped C2RError if the daemon ends the stream with an error; ends quietly
        after ``cancel()``.
        """
        while True:
            item = self._inbox.get()
            if item is _CLOSE:
                return
            if isinstance(item, C2RError):
                if isinstance(item, Cancelled) and self._cancelled.is_set():
                    return
                raise item
            yield item

    def results(self) -> Iterator[Result]:
        """Only the final result frames, in index order."""
        for event in self.events():
            if isinstance(event, Result) and not event.preview:
                yield event

    # ---------------------------------------------------------------- writing

    def send(self, index: int, *planes, **named) -> None:
        """Queue frame ``index``, its planes as ``FramePlanes`` takes them (color, depth, normals, edges,
        color_space, depth_kind); blocks while the daemon is behind (backpressure)."""
        frame_planes = FramePlanes(*planes, **named).check(index)
        if self.shared_memory and self._usable_ring(frame_planes):
            frame = self._ring.write(self._free_slot(), index, frame_planes)
        else:
            frame = pack_frame(index, frame_planes)
            check_message_size(frame, self._max_message_bytes)
        self._put(pb.ClientMessage(frame=frame))
        self.frames_sent += 1

    def _usable_ring(self, planes: FramePlanes) -> bool:
        if self._ring is None:
            self._ring = shm.FrameRing(self._ring_slots, shm.slot_bytes_for(planes))
            self._put(pb.ClientMessage(ring=self._ring.message))
            status = self._wait(self._ring_status)
            if not status.attached:
                self.warnings.append(f"shared memory refused by the daemon ({status.reason}); sending frames as bytes")
                self.shared_memory = False
                self._ring.close()
                self._ring = None
                return False
            for slot in range(self._ring.slots):
                self._free_slots.put(slot)
        return self._ring.fits(planes)

    def _free_slot(self) -> int:
        return self._wait(self._free_slots)

    def _wait(self, q: queue.Queue):
        """The next item of ``q``, filled by the reader; raises what ended the session meanwhile."""
        while True:
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self._failure is not None:
                    raise self._failure from None
                if self._finished.is_set() or self._cancelled.is_set():
                    raise InvalidInput(f"session {self.session_id} has ended; start a new session to send more frames") from None

    def end(self) -> None:
        """No more frames: the daemon flushes the last partial window, then sends Finished."""
        if not self._ended:
            self._put(pb.ClientMessage(end=pb.EndOfStream()))
            self._ended = True

    def cancel(self) -> None:
        """Stop now: queued frames are dropped and the daemon drops this session's windows."""
        if self._finished.is_set() or self._cancelled.is_set():
            return
        self._cancelled.set()
        if self._ended:  # the request stream is already closed: only cancelling the call reaches the daemon
            self._call.cancel()
            return
        _drain(self._outbox)
        try:
            self._outbox.put_nowait(pb.ClientMessage(cancel=pb.Cancel()))
        except queue.Full:  # a blocked send() slipped a frame in; the call itself still stops
            self._call.cancel()

    def _put(self, message: pb.ClientMessage) -> None:
        while True:
            if self._cancelled.is_set():
                raise Cancelled(f"session {self.session_id} was cancelled; start a new session to send more frames")
            if self._failure is not None:
                raise self._failure
            if self._ended or self._finished.is_set():
                raise InvalidInput(f"session {self.session_id} has ended; start a new session to send more frames")
            try:
                self._outbox.put(message, timeout=0.1)
                return
            except queue.Full:
                continue

    # ---------------------------------------------------------------- closing

    def close(self) -> None:
        """Cancel the session if it is still running and wait for the reader to stop."""
        if not self._finished.is_set():
            self.cancel()
            if not self._finished.wait(5.0):
                self._call.cancel()
        self._reader.join(5.0)
        if self._ring is not None:  # the daemon unlinks it too when the session ends: whoever is first
            self._ring.close()
            self._ring = None

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
