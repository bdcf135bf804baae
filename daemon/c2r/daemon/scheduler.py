"""One queue of windows from every session and job, feeding every engine of the pool.

Each engine (one per GPU, ``engine_pool``) takes the best-ranked window whenever it is free.

Order: interactive sessions before batch jobs; among those, a window with the same
shape (frames, height, width, model) as the one that just ran goes first, because the
engine keeps its compiled/allocated state warm for it; otherwise first come, first served.
A session or sequential job never has more than one window queued: window k+1 needs window k's
output frames as its prefix, so its owner submits it only after k's result arrived,
which keeps each owner's windows in order without the queue having to know about it.
An anchor-parallel job (``anchor_jobs``) queues all pieces of a stage at once: they are
independent, and every free engine takes one.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

from c2r.models.backend import WindowRequest

EventFn = Callable[[dict], None]


@dataclass(eq=False)  # a task is itself: field-wise equality would compare frame arrays (an owner may queue several)
class WindowTask:
    owner: str  # session or job id
    interactive: bool
    model: str
    lora: str  # a path on the daemon's disk, or ""
    request: WindowRequest  # what the engine runs, unchanged
    on_event: EventFn  # progress from the engine while the window runs
    result: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    seq: int = 0

    @property
    def shape(self) -> tuple:
        """(frames, height, width, model, lora): windows of one shape run back to back warm."""
        clip = self.request.clip
        return (clip.num_frames, *clip.size, self.model, self.lora)


class WindowScheduler:
    def __init__(self) -> None:
        self.queue: list[WindowTask] = []
        self.last_shape: tuple | None = None
        self.running: list[WindowTask] = []  # one per engine at most
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()

    def submit(self, task: WindowTask) -> int:
        """Queue ``task``; returns how many windows will run before it."""
        task.seq = next(self._seq)
        self.queue.append(task)
        self._wakeup.set()
        return self.position(task)

    def position(self, task: WindowTask) -> int:
        ahead = sorted(self.queue, key=self._rank).index(task)
        return ahead + len(self.running)

    def _rank(self, task: WindowTask) -> tuple:
        return (not task.interactive, task.shape != self.last_shape, task.seq)

    async def next(self) -> WindowTask:
        while not self.queue:
            self._wakeup.clear()
            await self._wakeup.wait()
        task = min(self.queue, key=self._rank)
        self.queue.remove(task)
        self.running.append(task)
        self.last_shape = task.shape
        return task

    def finished(self, task: WindowTask, result: Any = None, error: BaseException | None = None) -> None:
        if task in self.running:
            self.running.remove(task)
        if task.result.done():
            return
        if error is not None:
            task.result.set_exception(error)
        else:
            task.result.set_result(result)

    def drop_owner(self, owner: str) -> None:
        """Forget the queued windows of a cancelled or vanished owner (the running one is cancelled by the engine)."""
        for task in [t for t in self.queue if t.owner == owner]:
            self.queue.remove(task)
            task.result.cancel()
