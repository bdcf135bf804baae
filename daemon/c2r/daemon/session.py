"""One interactive Realify session: frames in, windows out, in order, with backpressure.

The gRPC handler feeds frames with ``accept`` and writes what ``outbox.get`` hands it; the
session's own task runs its windows (``window_loop``) as soon as each is complete. On a bad
frame (or any error reading the stream) the session flushes: the frames already accepted
still run and stream back before the error ends the call, so nothing accepted is lost.

Bounded memory. Backpressure counts results *delivered* (written to the client), not
produced: ``wait_for_room`` holds the handler's reads while more than ``max_pending`` frames
wait for delivery, and gRPC flow control then slows the client down; a client that never
reads stalls its own session at two windows of frames, never the daemon. Progressive
previews never cost more than the results: a window's estimates take turns over its frames
(``preview_share``: with E estimates per window each sends every E-th frame), and the outbox
keeps only the latest unsent one and sends it only when nothing else waits.

Batches (protocol 1.2, ``effective.batches``): a window's results are queued as ResultBatches
(``result_batches``: by count and bytes) the moment the window is done, and an estimate's
previews as one; a result counts as delivered when its batch is written. A FrameBatch is
accepted frame by frame (``accept``), so a bad frame in it still leaves the ones before it
accepted.
"""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path
from typing import Callable

import numpy as np

from c2r.client.frames import encode_results
from c2r.client.png import encode_png
from c2r.models.windows import Window, window_ready
from c2r.v1 import coarse2real_pb2 as pb

from .engine_messages import preview_share
from .errors import ClientError, InvalidInput
from .frame_check import FrameChecker
from .frame_store import Allocate, FrameStore, numpy_buffers
from .scheduler import WindowScheduler
from .session_config import ResolvedSession
from .settings import LIMITS
from .shared_ring import SessionRing
from .window_loop import PROGRESS_KINDS, run_windows

# what the outbox holds: a message, or a function making one (encoded: bytes) when it is about to be written (PNG: off
# the event loop) | ClientError | None (finished)
Item = pb.ServerMessage | Callable[[], bytes] | ClientError | None


def result_batches(frames: list[tuple[int, np.ndarray]], max_frames: int, max_bytes: int) -> list[list[tuple[int, np.ndarray]]]:
    """(index, image) pairs cut into ResultBatches: up to ``max_frames`` each, within ``max_bytes`` of raw RGB8 (a
    level-1 PNG is about as big at worst, and the message limit is 4x a batch's), at least one frame each."""
    batches: list[list[tuple[int, np.ndarray]]] = []
    size = 0
    for item in frames:
        nbytes = item[1].nbytes + 64  # the ResultFrame's own fields
        if not batches or len(batches[-1]) >= max_frames or size + nbytes > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += nbytes
    return batches


class Outbox:
    """The session's messages to the client, in order, with one coalesced preview slot."""

    def __init__(self) -> None:
        self.items: collections.deque[tuple[Item, int]] = collections.deque()  # (item, final results in it)
        self.preview: tuple[int, list[Callable[[], bytes]]] | None = None  # (window, its messages)
        self._ready = asyncio.Event()

    def put(self, item: Item, finals: int = 0) -> None:
        self.items.append((item, finals))
        self._ready.set()

    def put_preview(self, window: int, frames: list[Callable[[], bytes]]) -> None:
        if frames:  # an estimate whose turn has no frame (a window shorter than its estimates) sends nothing
            self.preview = (window, frames)  # replaces an unsent one: only the latest estimate matters
            self._ready.set()

    def drop_previews(self, window: int) -> None:
        """Window ``window``'s finals are queued: its estimates are stale."""
        if self.preview is not None and self.preview[0] <= window:
            self.preview = None

    async def get(self) -> tuple[Item, int]:
        while True:
            if self.items:
                return self.items.popleft()
            if self.preview is not None:
                window, frames = self.preview
                item = frames.pop(0)
                self.preview = (window, frames) if frames else None
                return item, 0
            self._ready.clear()
            await self._ready.wait()

    def __len__(self) -> int:
        return len(self.items)


class Session:
    def __init__(self, session_id: str, resolved: ResolvedSession, scheduler: WindowScheduler, spill_dir: Path,
                 memory_bytes: int, checker: FrameChecker, allocate: Allocate = numpy_buffers,
                 free: Callable[[dict[str, np.ndarray]], None] = lambda arrays: None):
        self.id = session_id
        self.resolved = resolved
        self.config = resolved.config
        self.scheduler = scheduler
        self.checker = checker
        self.store = FrameStore(spill_dir, memory_bytes, self.config.window, self.config.overlap,
                                allocate=allocate, free=free)
        self.outbox = Outbox()
        self.ring: SessionRing | None = None
        self.received = 0
        self.through_ring = 0  # of the received frames, those handed over in shared memory
        self.returned = 0  # results produced (Progress/Done report these)
        self.delivered = 0  # results written to the client (backpressure counts these)
        self.ended = False
        self.error: ClientError | None = None
        self.max_pending = 2 * self.config.window
        self.seconds_per_frame = 0.0
        self.started = time.monotonic()
        self.png = resolved.effective.result_encoding == pb.PNG
        self.batches = resolved.effective.batches  # granted (protocol 1.2): results and previews go in ResultBatches
        self._changed = asyncio.Condition()
        self._tail: np.ndarray | None = None  # last generated frames: the next window's prefix

    # ------------------------------------------------------------------ input side

    async def wait_for_room(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.received - self.delivered < self.max_pending or self.ended)

    async def accept(self, frames: list[tuple[pb.Frame, dict[str, memoryview] | None]]) -> None:
        """Check and store one message's frames (a Frame, or a FrameBatch's in order), each with its planes' bytes if
        split off (``planes.Received``); a bad one raises, naming its place in the batch, after those before it
        are accepted."""
        accepted = 0
        try:
            for position, (frame, data) in enumerate(frames):
                try:
                    self._accept_one(frame, data)
                except InvalidInput as e:
                    if len(frames) == 1:
                        raise
                    raise InvalidInput(f"frame {frame.index}, item {position} of a FrameBatch of {len(frames)} (the "
                                       f"{position} before it were accepted): {e}") from None
                accepted += 1
        finally:
            if accepted:
                await self._notify(received=self.received + accepted)

    def _accept_one(self, frame: pb.Frame, data: dict[str, memoryview] | None) -> None:
        """Check ``frame``, copy it into its windows (out of its shared-memory slot, which is then released)."""
        shared = self.ring.slot(frame.index, frame.slot) if frame.HasField("slot") and self.ring else None
        if frame.HasField("slot") and self.ring is None:
            raise InvalidInput(f"frame {frame.index} names slot {frame.slot} but this session has no shared-memory ring; "
                               "send a SharedRing first (transport SHARED_MEMORY), or the planes as bytes")
        checked = self.checker.check(frame, shared, data)
        try:
            self.store.put(checked, check=self.checker.check_values)
        finally:
            del checked  # views of the slot: gone before the slot is released
            if shared is not None:
                try:
                    shared.release()
                except BufferError:  # a view outlived the copy; the slot is reused all the same (we copied it out)
                    pass
                if released := self.ring.copied(frame.slot):
                    self.outbox.put(pb.ServerMessage(released=pb.SlotsReleased(slots=released)))
        self.checker.accepted(frame.index)
        self.through_ring += shared is not None

    async def end(self, error: ClientError | None = None) -> None:
        """No more frames: flush the windows of what arrived, then finish (or fail with ``error``)."""
        if not self.ended:
            self.error = error
            if self.ring is not None and (released := self.ring.unreleased()):
                self.outbox.put(pb.ServerMessage(released=pb.SlotsReleased(slots=released)))
            await self._notify(ended=True)

    async def delivered_results(self, count: int) -> None:
        await self._notify(delivered=self.delivered + count)

    async def _notify(self, **changes) -> None:
        async with self._changed:
            for name, value in changes.items():
                setattr(self, name, value)
            self._changed.notify_all()

    # ------------------------------------------------------------------ window side (WindowSource + WindowSink)

    async def window(self, index: int) -> Window | None:
        c = self.config
        async with self._changed:
            await self._changed.wait_for(
                lambda: self.ended or window_ready(index, self.received, False, c.window, c.overlap) is not None
            )
            if self.received == 0:
                return None
            return window_ready(index, self.received, self.ended, c.window, c.overlap)

    def clip(self, window: Window):
        return self.store.clip(window)

    def prefix(self, window: Window) -> np.ndarray | None:
        return self._tail[-window.prefix_length :]

    async def emit(self, window: Window, frames: np.ndarray, seconds: float) -> None:
        if self.config.overlap:  # the last `overlap` frames sent, which may span more than this window's new ones
            kept = frames if self._tail is None else np.concatenate([self._tail, frames])
            self._tail = kept[-self.config.overlap :].copy()
        self.store.release_before(window.end - self.config.overlap)
        rate = seconds / max(window.length, 1)
        self.seconds_per_frame = rate if not self.seconds_per_frame else 0.7 * self.seconds_per_frame + 0.3 * rate
        self._progress(window, pb.Progress.WINDOW_DONE, returned=self.returned + len(frames))
        self.outbox.drop_previews(window.index)
        for batch in self._batched([(window.emit_start + i, frame) for i, frame in enumerate(frames)]):
            self.outbox.put(self._results(batch, preview=False), finals=len(batch))
        await self._notify(returned=self.returned + len(frames))

    # ------------------------------------------------------------------ output side

    def on_event(self, window: Window, event: dict) -> None:
        kind = event["kind"]
        if kind in PROGRESS_KINDS:
            self._progress(window, PROGRESS_KINDS[kind], step=event.get("step", 0), num_steps=event.get("num_steps", 0),
                           queue_position=event.get("position", 0))
        elif kind == "preview" and self.config.preview_every:
            share = preview_share(event.get("step", 0), event.get("num_steps", 0), self.config.preview_every)
            indices = range(window.emit_start, window.emit_start + window.length - window.prefix_length)[share]
            frames = event["preview"]  # the engine sent only this estimate's share (engine_messages.preview_share)
            shown = list(zip(indices, frames))
            self.outbox.put_preview(window.index, [self._results(batch, preview=True) for batch in self._batched(shown)])

    def _progress(self, window: Window, kind: int, returned: int | None = None, **fields) -> None:
        returned = self.returned if returned is None else returned
        eta = (self.received - returned) * self.seconds_per_frame
        self.outbox.put(pb.ServerMessage(progress=pb.Progress(
            kind=kind, window=window.index, first_frame=window.start, end_frame=window.end, eta_seconds=eta,
            frames_received=self.received, frames_returned=returned, **fields)))

    def _batched(self, frames: list[tuple[int, np.ndarray]]) -> list[list[tuple[int, np.ndarray]]]:
        if not self.batches:
            return [[item] for item in frames]
        return result_batches(frames, LIMITS.max_batch_frames, LIMITS.max_batch_bytes)

    def _results(self, frames: list[tuple[int, np.ndarray]], preview: bool) -> Callable[[], bytes]:
        """The message carrying ``frames``, encoded when it is about to be written (a dropped preview costs nothing)."""
        if self.png:
            return lambda: encode_results([(i, encode_png(f, level=1), preview) for i, f in frames], self.batches)
        return lambda: encode_results([(i, f, preview) for i, f in frames], self.batches)

    async def run(self) -> None:
        """The session's task: every window in order, then Done (or the error that ended the input)."""
        try:
            await run_windows(self.id, True, self.resolved, self.scheduler, self, self, self.on_event)
        except ClientError as e:
            self.outbox.put(e)
            return
        if self.error is not None:
            self.outbox.put(self.error)
            return
        self.outbox.put(pb.ServerMessage(done=pb.Done(
            frames_received=self.received, frames_returned=self.returned, seconds=time.monotonic() - self.started)))
        self.outbox.put(None)

    def close(self) -> None:
        self.store.close()
        if self.ring is not None:
            self.ring.close()
            self.ring = None
