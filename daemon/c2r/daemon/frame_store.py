"""Frames a session has received but not yet finished with: memory first, disk past a bound.

A window needs all its frames before it can run, and a long window at 720p is gigabytes;
the store keeps frames in memory up to ``memory_bytes`` and spills the rest to
uncompressed ``.npy`` files under the session's spill folder, so a fast client costs
disk, never the daemon's memory. Frames are released as soon as no future window needs them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from c2r.models.backend import GBuffers

from .frame_check import CheckedFrame


class FrameStore:
    def __init__(self, spill_dir: Path, memory_bytes: int):
        self.spill_dir = spill_dir
        self.memory_bytes = memory_bytes
        self.in_memory = 0
        self.frames: dict[int, dict[str, np.ndarray] | Path] = {}
        self.color_space = "srgb"
        self.depth_kind = "distance"

    def put(self, frame: CheckedFrame) -> None:
        self.color_space, self.depth_kind = frame.color_space, frame.depth_kind
        size = sum(a.nbytes for a in frame.planes.values())
        if self.in_memory + size <= self.memory_bytes:
            self.frames[frame.index] = {k: np.array(v) for k, v in frame.planes.items()}
            self.in_memory += size
            return
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        path = self.spill_dir / f"{frame.index:08d}.npz"
        np.savez(path, **frame.planes)
        self.frames[frame.index] = path

    @property
    def spilled(self) -> int:
        return sum(isinstance(f, Path) for f in self.frames.values())

    def _load(self, index: int) -> dict[str, np.ndarray]:
        entry = self.frames[index]
        if isinstance(entry, Path):
            with np.load(entry) as z:
                return {k: z[k] for k in z.files}
        return entry

    def clip(self, start: int, end: int) -> GBuffers:
        frames = [self._load(i) for i in range(start, end)]
        stacked = {k: np.stack([f[k] for f in frames]) for k in frames[0]}
        return GBuffers(
            color=stacked["color"],
            color_space=self.color_space,
            depth=stacked.get("depth"),
            depth_kind=self.depth_kind,
            normals=stacked.get("normals"),
            edges=stacked.get("edges"),
        )

    def release_before(self, index: int) -> None:
        for i in [i for i in self.frames if i < index]:
            entry = self.frames.pop(i)
            if isinstance(entry, Path):
                entry.unlink(missing_ok=True)
            else:
                self.in_memory -= sum(a.nbytes for a in entry.values())

    def close(self) -> None:
        self.frames.clear()
        self.in_memory = 0
        shutil.rmtree(self.spill_dir, ignore_errors=True)
