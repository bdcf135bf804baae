"""One interactive Realify session: frames in, windows out, in order, with backpressure.

The gRPC handler feeds frames with ``accept`` and reads ``outbox``; the session's own
task runs its windows (``window_loop``) as soon as each is complete. On a bad frame the
session flushes: the frames already accepted still run and stream back before the error
ends the call, so nothing accepted is lost. Backpressure: ``wait_for_room`` holds the
handler's reads while more than ``max_pending`` frames wait for results; gRPC flow
control then slows the client down.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from c2r.client.frames import pack_plane
from c2r.client.png import encode_png
from c2r.models.windows import Window, window_ready
from c2r.v1 import coarse2real_pb2 as pb

from .errors import ClientError
from .frame_check import CheckedFrame
from .frame_store import FrameStore
from .scheduler import WindowScheduler
from .session_config import ResolvedSession
from .window_loop import PROGRESS_KINDS, run_windows



class Session:
    def __init__(self, session_id: str, resolved: ResolvedSession, scheduler: WindowScheduler, spill_dir: Path,
                 memory_bytes: int):
        self.id = session_id
        self.resolved = resolved
        self.config = resolved.config
        self.scheduler = scheduler
        self.store = FrameStore(spill_dir, memory_bytes)
        # pb.ServerMessage, or a function making one off the event loop (PNG), | ClientError (fatal) | None (finished)
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.received = 0
        self.returned = 0
        self.ended = False
        self.error: ClientError | None = None
        self.max_pending = 2 * self.config.window
        self.seconds_per_frame = 0.0
        self.started = time.monotonic()
        self.png = resolved.effective.result_encoding == pb.PNG
        self._changed = asyncio.Condition()
        self._tail: np.ndarray | None = None  # last generated frames: the next window's prefix

    # ------------------------------------------------------------------ input side

    async def wait_for_room(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.received - self.returned < self.max_pending or self.ended)

    async def accept(self, frame: CheckedFrame) -> None:
        self.store.put(frame)
        await self._notify(received=self.received + 1)

    async def end(self, error: ClientError | None = None) -> None:
        """No more frames: flush the windows of what arrived, then finish (or fail with ``error``)."""
        if not self.ended:
            self.error = error
            await self._notify(ended=True)

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
        return self.store.clip(window.start, window.end)

    def prefix(self, window: Window) -> np.ndarray | None:
        return self._tail[-window.prefix_length :]

    async def emit(self, window: Window, frames: np.ndarray, seconds: float) -> None:
        if self.config.overlap:  # the last `overlap` frames sent, which may span more than this window's new ones
            kept = frames if self._tail is None else np.concatenate([self._tail, frames])
            self._tail = kept[-self.config.overlap :]
        self.store.release_before(window.end - self.config.overlap)
        rate = seconds / max(window.length, 1)
        self.seconds_per_frame = rate if not self.seconds_per_frame else 0.7 * self.seconds_per_frame + 0.3 * rate
        self._progress(window, pb.Progress.WINDOW_DONE, returned=self.returned + len(frames))
        for i, frame in enumerate(frames):
            self._result(window.emit_start + i, frame, preview=False)
        await self._notify(returned=self.returned + len(frames))

    # ------------------------------------------------------------------ output side

    def on_event(self, window: Window, event: dict) -> None:
        kind = event["kind"]
        if kind in PROGRESS_KINDS:
            self._progress(window, PROGRESS_KINDS[kind], step=event.get("step", 0), num_steps=event.get("num_steps", 0),
                           queue_position=event.get("position", 0))
        elif kind == "preview" and self.config.preview_every and self.outbox.qsize() < self.max_pending:
            # a client reading slower than previews come skips some: they are optional, memory is not
            for i, frame in enumerate(event["preview"][window.prefix_length :]):
                self._result(window.emit_start + i, frame, preview=True)

    def _progress(self, window: Window, kind: int, returned: int | None = None, **fields) -> None:
        returned = self.returned if returned is None else returned
        eta = (self.received - returned) * self.seconds_per_frame
        self.outbox.put_nowait(pb.ServerMessage(progress=pb.Progress(
            kind=kind, window=window.index, first_frame=window.start, end_frame=window.end, eta_seconds=eta,
            frames_received=self.received, frames_returned=returned, **fields)))

    def _result(self, index: int, frame: np.ndarray, preview: bool) -> None:
        if self.png:
            self.outbox.put_nowait(lambda: pb.ServerMessage(result=pb.ResultFrame(index=index, preview=preview, png=encode_png(frame, level=1))))
        else:
            result = pb.ResultFrame(index=index, preview=preview, color=pack_plane(frame))
            self.outbox.put_nowait(pb.ServerMessage(result=result))

    async def run(self) -> None:
        """The session's task: every window in order, then Done (or the error that ended the input)."""
        try:
            await run_windows(self.id, True, self.resolved, self.scheduler, self, self, self.on_event)
        except ClientError as e:
            self.outbox.put_nowait(e)
            return
        if self.error is not None:
            self.outbox.put_nowait(self.error)
            return
        self.outbox.put_nowait(pb.ServerMessage(done=pb.Done(
            frames_received=self.received, frames_returned=self.returned, seconds=time.monotonic() - self.started)))
        self.outbox.put_nowait(None)

    def close(self) -> None:
        self.store.close()
