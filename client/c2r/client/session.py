"""A Realify session over one bidirectional gRPC stream (the synchronous client).

``send`` packs a frame and puts it on a small bounded queue (``outgoing.RequestQueue``) that
gRPC's sender thread drains as fast as flow control lets it, the frames that queued up
meanwhile joined into one FrameBatch where the daemon reads them (protocol 1.2): a client
faster than the daemon blocks in ``send`` instead of piling frames up in memory. A reader
thread drains the daemon's replies into an unbounded local queue, so a caller that sends
everything before reading can never deadlock the stream.

Same host (``shared_memory``, granted in the effective config): frames go through a ring of
shared-memory slots instead (``shm.FrameRing``, layout in coarse2real.proto). At the first
frame the session makes a ring sized for it and offers it; once the daemon has mapped it,
``send`` copies each frame into a free slot and sends only the slot and plane offsets; the
daemon lists slots it has copied out in ``SlotsReleased``. A ring the daemon cannot map
(another machine after all, a container) or a frame that does not fit its slot goes as
bytes in the stream, so the choice never fails a session. ``FrameHandoff`` is that choice,
shared with the asyncio session (``aio``); each session only waits its own way.
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
from .frames import FramePlanes, check_message_size, encode_frame
from .outgoing import Batching, Request, RequestQueue

# Seconds to wait before each retry of a stream that dropped before SessionStarted.
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)
_CLOSE = object()  # tells the request generator to stop without sending anything
# Shared-memory ring: slots for about this many bytes, at least 8 and at most 64 (small frames: fewer releases)
RING_BYTES, RING_SLOTS = 32 * 2**20, (8, 64)


class FrameHandoff:
    """How a session's frames leave, for both sessions: as bytes in the stream (``encode_frame``: the pixels
    copied once), or written into a free slot of the session's shared-memory ring (``shm.FrameRing``).

    The ring is made for the first frame and offered (``offer``); the daemon's RingStatus
    (``answered``) gives the free slots to start with, or refuses it, and frames go as bytes from then on.
    """

    def __init__(self, shared_memory: bool, max_message_bytes: int, warnings: list[str]):
        self.shared_memory = shared_memory  # granted by the daemon; false again if it cannot map the ring
        self.max_message_bytes = max_message_bytes
        self.warnings = warnings  # the session's: a refused ring is noted there
        self.ring: shm.FrameRing | None = None

    def offer(self, planes: FramePlanes) -> pb.ClientMessage | None:
        """The SharedRing message to send, then wait for its RingStatus, before this frame; None if none is due.

        The ring holds RING_BYTES of slots (at least 8, at most 64): small frames get many slots, so the daemon's
        releases (one per half ring) and the client's batches are few; big ones 8, as many as memory allows."""
        if not self.shared_memory or self.ring is not None:
            return None
        slot_bytes = shm.slot_bytes_for(planes)
        low, high = RING_SLOTS
        self.ring = shm.FrameRing(min(high, max(low, RING_BYTES // slot_bytes)), slot_bytes)
        return pb.ClientMessage(ring=self.ring.message)

    def answered(self, status: pb.RingStatus) -> range:
        """The daemon's answer to the offer: the slots now free (none if it refused the ring)."""
        if status.attached:
            return range(self.ring.slots)
        self.warnings.append(f"shared memory refused by the daemon ({status.reason}); sending frames as bytes")
        self.shared_memory = False
        self.close()
        return range(0)

    def in_ring(self, planes: FramePlanes) -> bool:
        """This frame goes into a slot (wait for a free one, then ``encode`` with it)."""
        return self.ring is not None and self.ring.fits(planes)

    def encode(self, index: int, planes: FramePlanes, slot: int | None = None) -> Request:
        if slot is not None:
            return pb.ClientMessage(frame=self.ring.write(slot, index, planes))
        message = encode_frame(index, planes)
        check_message_size(len(message), index, self.max_message_bytes)
        return message

    def close(self) -> None:
        if self.ring is not None:  # the daemon unlinks it too when the session ends: whoever is first
            self.ring.close()
            self.ring = None


def frame_planes(index: int, planes: tuple, named: dict) -> FramePlanes:
    """``send``'s arguments (a FramePlanes, or its planes as FramePlanes takes them) as checked FramePlanes."""
    given = planes[0] if len(planes) == 1 and isinstance(planes[0], FramePlanes) and not named else FramePlanes(*planes, **named)
    return given.check(index)


def end_of_requests(message: Request) -> bool:
    """The request stream ends with this message (end or cancel)."""
    return isinstance(message, pb.ClientMessage) and message.WhichOneof("kind") in ("end", "cancel")


class Outgoing:
    """The session's RequestQueue for threads: ``put`` waits while it is full; gRPC's sender thread takes ``next``."""

    def __init__(self, batching: Batching | None):
        self.queue = RequestQueue(batching)
        self._changed = threading.Condition()

    def put(self, request, timeout: float) -> bool:
        """Queue ``request`` once there is room within ``timeout`` seconds; False if there was none."""
        with self._changed:
            if not self._changed.wait_for(lambda: not self.queue.full(), timeout):
                return False
            self.queue.append(request)
            self._changed.notify_all()
            return True

    def replace(self, request) -> None:
        """Drop what is queued and queue ``request`` (a cancel, or the end of the stream) whatever the bounds."""
        with self._changed:
            self.queue.clear()
            self.queue.append(request)
            self._changed.notify_all()

    def next(self):
        """The next message to write (``RequestQueue.pop``), once there is one."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.queue) > 0)
            message = self.queue.pop()
            self._changed.notify_all()
            return message

    def stop_batching(self) -> None:
        with self._changed:
            self.queue.batching = None


class Session:
    """One realify session. Use as a context manager; leaving it early cancels the session."""

    def __init__(
        self,
        open_stream: Callable[[Iterator[pb.ClientMessage]], grpc.Call],
        config: pb.SessionConfig,
        address: str,
        max_message_bytes: int,
        batching: Batching | None = None,
    ):
        self.address = address
        self._batching = batching  # the daemon's limits, when config.batches asks for batches
        self._decoder = EventDecoder()
        self._inbox: queue.Queue = queue.Queue()
        self._cancelled = threading.Event()
        self._finished = threading.Event()
        self._ended = False
        self._failure: C2RError | None = None
        self.frames_sent = 0
        self.requests_sent = 0  # messages written to the stream (a FrameBatch counts once), the config included
        self.replies_received = 0  # messages read from it, SessionStarted included
        self._ring_status: queue.Queue[pb.RingStatus] = queue.Queue()
        self._free_slots: queue.Queue[int] = queue.Queue()
        self._call, first = self._open(open_stream, config)
        self.session_id: str = first.session_id
        self.effective: pb.SessionConfig = first.effective
        self.warnings: list[str] = list(first.warnings)
        if not first.effective.batches:  # not granted: single frames, as protocol 1.1
            self._outbox.stop_batching()
        self._handoff = FrameHandoff(first.effective.transport == pb.SHARED_MEMORY, max_message_bytes, self.warnings)
        self._reader = threading.Thread(target=self._read, name=f"c2r-session-{self.session_id}", daemon=True)
        self._reader.start()

    @property
    def shared_memory(self) -> bool:
        """Frames go (or will go) through shared memory: granted by the daemon and, once offered, its ring mapped."""
        return self._handoff.shared_memory

    # ---------------------------------------------------------------- opening

    def _open(self, open_stream, config):
        delays = iter(RETRY_DELAYS)
        while True:
            self._outbox = Outgoing(self._batching)
            self._outbox.put(pb.ClientMessage(config=config), timeout=None)
            call = open_stream(self._requests(self._outbox))
            try:
                first = next(call)
                self.replies_received += 1
            except StopIteration:
                raise DaemonUnavailable(f"the daemon at {self.address} closed the session before starting it") from None
            except grpc.RpcError as error:
                self._outbox.replace(_CLOSE)
                delay = next(delays, None)
                if error.code() != grpc.StatusCode.UNAVAILABLE or delay is None:
                    raise from_rpc_error(error, self.address) from None
                time.sleep(delay)
                continue
            if first.WhichOneof("kind") != "started":
                call.cancel()
                raise C2RError(f"the daemon at {self.address} answered {first.WhichOneof('kind')!r} before SessionStarted")
            return call, first.started

    def _requests(self, outbox: Outgoing) -> Iterator[Request]:
        """The request stream (gRPC's sender thread iterates it): messages from ``outbox`` up to and including
        end/cancel, the frames queued behind each other as one FrameBatch."""
        while True:
            message = outbox.next()
            if message is _CLOSE:
                return
            self.requests_sent += 1
            yield message
            if end_of_requests(message):
                return

    # ---------------------------------------------------------------- reading

    def _read(self) -> None:
        try:
            for message in self._call:
                self.replies_received += 1
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
            self._outbox.replace(_CLOSE)  # unblocks the request stream for good
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
        """Queue frame ``index``: a ``FramePlanes``, or its planes as ``FramePlanes`` takes them (color, depth,
        normals, edges, color_space, depth_kind); blocks while the daemon is behind (backpressure)."""
        checked = frame_planes(index, planes, named)
        if (offer := self._handoff.offer(checked)) is not None:
            self._put(offer)
            for slot in self._handoff.answered(self._wait(self._ring_status)):
                self._free_slots.put(slot)
        slot = self._wait(self._free_slots) if self._handoff.in_ring(checked) else None
        self._put(self._handoff.encode(index, checked, slot))
        self.frames_sent += 1

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
        self._outbox.replace(pb.ClientMessage(cancel=pb.Cancel()))  # queued frames are dropped

    def _put(self, message: Request) -> None:
        while True:
            if self._cancelled.is_set():
                raise Cancelled(f"session {self.session_id} was cancelled; start a new session to send more frames")
            if self._failure is not None:
                raise self._failure
            if self._ended or self._finished.is_set():
                raise InvalidInput(f"session {self.session_id} has ended; start a new session to send more frames")
            if self._outbox.put(message, timeout=0.1):
                return

    # ---------------------------------------------------------------- closing

    def close(self) -> None:
        """Cancel the session if it is still running and wait for the reader to stop."""
        if not self._finished.is_set():
            self.cancel()
            if not self._finished.wait(5.0):
                self._call.cancel()
        self._reader.join(5.0)
        self._handoff.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
