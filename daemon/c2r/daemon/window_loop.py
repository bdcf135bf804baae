"""Runs an owner's windows in order through the scheduler: the one loop sessions and jobs share.

A source says when window k is ready (a live session waits for frames; a job has them
all) and hands out its frames; a sink supplies the prefix (the last ``overlap`` frames
already generated) and takes each window's new frames. Because both a stream and a file
plan windows with ``c2r.models.windows``, a job resumed at window k runs exactly the
windows an uninterrupted run would have.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Protocol

import numpy as np

from c2r.models.backend import GBuffers, WindowRequest
from c2r.models.windows import Window

from .scheduler import WindowScheduler, WindowTask
from .session_config import ResolvedSession


class WindowSource(Protocol):
    async def window(self, index: int) -> Window | None: ...

    def clip(self, window: Window) -> GBuffers: ...


class WindowSink(Protocol):
    def prefix(self, window: Window) -> np.ndarray | None: ...

    async def emit(self, window: Window, frames: np.ndarray, seconds: float) -> None: ...


WindowEventFn = Callable[[Window, dict], None]


async def run_windows(owner: str, interactive: bool, resolved: ResolvedSession, scheduler: WindowScheduler,
                      source: WindowSource, sink: WindowSink, on_event: WindowEventFn, first: int = 0) -> int:
    """Run windows ``first``, ``first + 1``, ... until the source has no more; returns the next window index."""
    index = first
    while (window := await source.window(index)) is not None:
        clip = await asyncio.to_thread(source.clip, window)  # may read spilled frames from disk
        request = WindowRequest(clip, resolved.config, sink.prefix(window) if window.prefix_length else None, window)
        task = WindowTask(owner, interactive, resolved.model, resolved.lora, request,
                          on_event=lambda event, w=window: on_event(w, event))
        on_event(window, {"kind": "queued", "position": scheduler.submit(task)})
        result = await task.result
        await sink.emit(window, result.frames[window.prefix_length :], result.seconds)
        index += 1
    return index
