"""A job's files: its input opened as a window source, its frames staged, then written out.

Input frames are read lazily (``c2r.daemon.media``) into a ``FrameStore``, only as far as
the next window needs, so a long 720p file costs the store's memory bound, not the file's
size. Output frames are staged one ``.npy`` per frame under the job's state folder (each
written to a temporary name and renamed, so a frame is either whole or absent) and the
final file is written from the stage once every window is done: an mp4 cannot be
appended to after a kill, a stage can.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import numpy as np

from c2r.models.windows import Window, plan_windows
from c2r.v1 import coarse2real_pb2 as pb

from . import media
from .errors import InvalidInput
from .frame_check import CheckedFrame
from .frame_store import FrameStore

SEQUENCE_SUFFIX = {pb.PNG_SEQUENCE: ".png", pb.EXR_SEQUENCE: ".exr"}


class JobInput:
    """The input files of one job (colour + optional depth/normals), checked frame for frame."""

    def __init__(self, color: Path, depth: Path | None, normals: Path | None, fps: float):
        try:
            self.clip = media.open_clip(color, fps or None)
            self.depth = media.open_depth(depth).check(self.clip, "depth") if depth else None
            self.normals = media.open_normals(normals).check(self.clip, "normals") if normals else None
        except media.MediaError as e:
            raise InvalidInput(f"job input: {e}") from None
        if self.clip.num_frames < 1:
            raise InvalidInput(f"job input {color}: no frames; give a video or sequence with at least one frame")

    def frames(self, start: int):
        """CheckedFrames from ``start`` on (earlier frames are decoded and skipped: a video only reads forward)."""
        for index, color in enumerate(self.clip):
            if index < start:
                continue
            planes = {"color": color}
            if self.depth is not None:
                planes["depth"] = self.depth[index]
            if self.normals is not None:
                planes["normals"] = self.normals[index]
            yield CheckedFrame(index, planes, self.clip.color_space, "distance")


class JobSource:
    """WindowSource over a job's input: windows from the file's plan, frames read on demand."""

    def __init__(self, job_input: JobInput, window: int, overlap: int, store: FrameStore, first_window: int):
        self.plan = plan_windows(job_input.clip.num_frames, window, overlap)
        self.store = store
        start = self.plan[first_window].start if first_window < len(self.plan) else 0
        self._frames = job_input.frames(start)
        self._read_until = start

    async def window(self, index: int) -> Window | None:
        if index >= len(self.plan):
            return None
        window = self.plan[index]
        self.store.release_before(window.start)
        await asyncio.to_thread(self._read, window.end)
        return window

    def _read(self, end: int) -> None:
        while self._read_until < end:
            self.store.put(next(self._frames))
            self._read_until += 1

    def clip(self, window: Window):
        return self.store.clip(window)


class Stage:
    """Finished output frames of one job, one file per frame index."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, index: int) -> Path:
        return self.folder / f"{index:08d}.npy"

    def put(self, index: int, frame: np.ndarray) -> None:
        tmp = self.folder / f".{index:08d}.tmp.npy"
        with open(tmp, "wb") as f:
            np.save(f, frame)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path(index))

    def get(self, start: int, end: int) -> np.ndarray:
        return np.stack([np.load(self.path(i)) for i in range(start, end)])

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def output_target(path: Path, fmt: int) -> Path:
    """The path media.open_writer gets: a sequence format asked for a name without its suffix becomes a folder pattern."""
    if fmt == pb.MP4 and path.suffix.lower() not in media.VIDEO_SUFFIXES:
        raise InvalidInput(f"job output {path.name!r} with format MP4: name it with a video suffix such as .mp4")
    if fmt in SEQUENCE_SUFFIX and path.suffix.lower() != SEQUENCE_SUFFIX[fmt]:
        return path / f"%05d{SEQUENCE_SUFFIX[fmt]}"
    if fmt == pb.OUTPUT_FORMAT_UNSPECIFIED and path.suffix and path.suffix.lower() not in (*media.VIDEO_SUFFIXES, ".png", ".exr"):
        raise InvalidInput(f"job output {path.name!r}: unknown type {path.suffix!r}; use .mp4, .png, .exr, or a folder name")
    return path


def write_output(stage: Stage, count: int, target: Path, fps: float) -> None:
    """Write the staged frames in order; a video goes to a temporary name first, so a kill never leaves half an mp4."""
    is_video = target.suffix.lower() in media.VIDEO_SUFFIXES
    temp = target.with_name(f".{target.stem}.partial{target.suffix}") if is_video else target
    if not is_video and target.suffix:
        target.parent.mkdir(parents=True, exist_ok=True)
    writer = media.open_writer(temp, fps)
    try:
        for i in range(count):
            writer.write(np.load(stage.path(i)))
    finally:
        writer.close()
    if is_video:
        os.replace(temp, target)
