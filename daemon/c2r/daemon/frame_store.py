"""Frames a session or job has received but not yet finished with: one buffer per window, disk past a bound.

Each frame is copied once, on arrival, into the buffer of every window that holds it (a
frame in an overlap belongs to two), so a window's clip is ready when its last frame lands:
no stacking of the window afterwards. Buffers come from an ``allocate`` function (numpy by
default; the daemon passes shared memory, so the engine maps a window instead of receiving
it). A window whose buffer would take the store past ``memory_bytes`` is decided "on disk" at
its first frame: its frames are spilled to uncompressed ``.npz`` files under the spill folder
and read back into a buffer when the window runs. So a fast client costs disk, never more
than ``memory_bytes`` plus the running window of the daemon's memory. Buffers and files are
released as soon as no future window needs them.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from c2r.models.backend import GBuffers
from c2r.models.windows import Window, window_bounds

from .frame_check import CheckedFrame

# allocate({"color": ((T, H, W, 3), dtype), ...}) -> {"color": array, ...}; free(arrays) gives them back
Allocate = Callable[[dict[str, tuple[tuple[int, ...], np.dtype]]], dict[str, np.ndarray]]


def numpy_buffers(layout: dict[str, tuple[tuple[int, ...], np.dtype]]) -> dict[str, np.ndarray]:
    return {name: np.empty(shape, dtype) for name, (shape, dtype) in layout.items()}


class FrameStore:
    def __init__(self, spill_dir: Path, memory_bytes: int, window: int, overlap: int, first_window: int = 0,
                 allocate: Allocate = numpy_buffers, free: Callable[[dict[str, np.ndarray]], None] = lambda arrays: None):
        self.spill_dir = spill_dir
        self.memory_bytes = memory_bytes
        self.window, self.overlap, self.first_window = window, overlap, first_window
        self.allocate, self.free = allocate, free
        self.buffers: dict[int, dict[str, np.ndarray]] = {}  # window index -> slot -> (window, ...) array
        self.on_disk: set[int] = set()  # windows decided "on disk" at their first frame
        self.spilled_frames: dict[int, Path] = {}
        self.in_memory = 0
        self.color_space = "srgb"
        self.depth_kind = "distance"
        self._layout: dict[str, tuple[tuple[int, ...], np.dtype]] | None = None  # one frame's planes

    # ------------------------------------------------------------------ arrival

    def windows_of(self, index: int) -> range:
        """Indices of the windows that hold frame ``index`` (from ``first_window`` on)."""
        stride = self.window - self.overlap
        first = max(self.first_window, -(-(index - self.window + 1) // stride), 0)
        return range(first, index // stride + 1)

    def put(self, frame: CheckedFrame, check: Callable[[int, dict[str, np.ndarray]], None] | None = None) -> None:
        """Copy ``frame`` into its windows; ``check(index, planes)`` runs on the copy (the source may change under us)."""
        planes = frame.planes
        if self._layout is None:
            self._layout = {name: (a.shape, a.dtype) for name, a in planes.items()}
        rows, spill = [], False
        for k in self.windows_of(frame.index):
            buffer = self._buffer_for(k)
            if buffer is None:
                spill = True
            else:
                rows.append({name: buffer[name][frame.index - window_bounds(k, self.window, self.overlap)[0]]
                             for name in planes})
        copies = rows[0] if rows else {name: np.empty_like(a) for name, a in planes.items()}
        for name, array in planes.items():
            np.copyto(copies[name], array, casting="no")
        if check is not None:
            check(frame.index, copies)
        for row in rows[1:]:
            for name in planes:
                row[name][...] = copies[name]
        if spill:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            path = self.spill_dir / f"{frame.index:08d}.npz"
            np.savez(path, **copies)
            self.spilled_frames[frame.index] = path
        self.color_space, self.depth_kind = frame.color_space, frame.depth_kind

    def _window_bytes(self) -> int:
        return sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in self._layout.values()) * self.window

    def _buffer_for(self, k: int) -> dict[str, np.ndarray] | None:
        """Window k's buffer; made at its first frame if the memory bound allows, else k lives on disk (None)."""
        if k in self.buffers:
            return self.buffers[k]
        if k in self.on_disk:
            return None
        if self.in_memory + self._window_bytes() > self.memory_bytes:
            self.on_disk.add(k)
            return None
        return self._allocate(k)

    def _allocate(self, k: int) -> dict[str, np.ndarray]:
        layout = {name: ((self.window, *shape), dtype) for name, (shape, dtype) in self._layout.items()}
        self.buffers[k] = self.allocate(layout)
        self.in_memory += self._window_bytes()
        return self.buffers[k]

    # ------------------------------------------------------------------ windows

    @property
    def spilled(self) -> int:
        return len(self.spilled_frames)

    def clip(self, window: Window) -> GBuffers:
        """Window ``window``'s frames as views of its buffer (read back from disk if it lives there)."""
        k = window.index
        if k not in self.buffers:
            buffer = self._allocate(k)
            self.on_disk.discard(k)
            for i in range(window.start, window.end):
                with np.load(self.spilled_frames[i]) as saved:
                    for name in buffer:
                        buffer[name][i - window.start] = saved[name]
        planes = {name: array[: window.length] for name, array in self.buffers[k].items()}
        return GBuffers(color=planes["color"], color_space=self.color_space, depth=planes.get("depth"),
                        depth_kind=self.depth_kind, normals=planes.get("normals"), edges=planes.get("edges"))

    def frames(self, start: int, end: int) -> GBuffers:
        """Frames [start, end) as a new clip, gathered from whichever window buffer (or spill file)
        holds each: for pieces that do not follow the window plan (anchor-parallel jobs' anchors and chunks)."""
        if self._layout is None:
            raise ValueError("the frame store holds no frames yet")
        planes = {name: np.empty((end - start, *shape), dtype) for name, (shape, dtype) in self._layout.items()}
        for i in range(start, end):
            k = next((k for k in self.windows_of(i) if k in self.buffers), None)
            if k is not None:
                row = i - window_bounds(k, self.window, self.overlap)[0]
                for name in planes:
                    planes[name][i - start] = self.buffers[k][name][row]
            elif i in self.spilled_frames:
                with np.load(self.spilled_frames[i]) as saved:
                    for name in planes:
                        planes[name][i - start] = saved[name]
            else:
                raise KeyError(f"frame {i} is not in the frame store (released, or never received)")
        return GBuffers(color=planes["color"], color_space=self.color_space, depth=planes.get("depth"),
                        depth_kind=self.depth_kind, normals=planes.get("normals"), edges=planes.get("edges"))

    def release_before(self, index: int) -> None:
        """Forget every window that starts before frame ``index`` and the spilled frames before it."""
        for k in [k for k in self.buffers if window_bounds(k, self.window, self.overlap)[0] < index]:
            self.free(self.buffers.pop(k))
            self.in_memory -= self._window_bytes()
        self.on_disk = {k for k in self.on_disk if window_bounds(k, self.window, self.overlap)[0] >= index}
        for i in [i for i in self.spilled_frames if i < index]:
            self.spilled_frames.pop(i).unlink(missing_ok=True)

    def close(self) -> None:
        for buffer in self.buffers.values():
            self.free(buffer)
        self.buffers.clear()
        self.spilled_frames.clear()
        self.in_memory = 0
        shutil.rmtree(self.spill_dir, ignore_errors=True)
