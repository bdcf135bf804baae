"""Which frame a Movie Render Queue output file holds, and when it is complete enough to read.

The plugin sets MRQ's file name format to ``{sequence_name}.{frame_number}`` with EXR
multilayer output, so every frame is one file ``<sequence>.<frame>.exr`` whose frame number
is zero-padded to ``zero_pad_frame_numbers`` (4 by default) and counts in the sequence's
display rate from the playback start (it may start at 1001, or be negative with handles).
Files written per pass (multilayer off, or the viewport capture) carry the pass name before
the frame number: ``<sequence>.<pass>.<frame>.exr``. The daemon wants consecutive 0-based
indices, so frames map to ``frame_number - first_frame``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .exr_complete import exr_is_complete

# What follows "<stem>." in a frame file's name: [<pass>.]<frame>.<ext>.
_AFTER_STEM = re.compile(r"^(?:(?P<pass>[^.]+)\.)?(?P<frame>-?\d+)\.(?P<ext>exr|png)$", re.IGNORECASE)


@dataclass(frozen=True)
class FrameFile:
    path: str
    stem: str
    frame: int
    render_pass: str = ""  # "" for a multilayer file holding every pass
    extension: str = "exr"


def parse_frame_file(path: str, stem: str) -> FrameFile | None:
    """The frame of sequence ``stem`` a file holds, or None for anything else (other sequences, logs)."""
    name = os.path.basename(path)
    if not name.startswith(stem + "."):
        return None
    match = _AFTER_STEM.match(name[len(stem) + 1 :])
    if match is None:
        return None
    return FrameFile(path, stem, int(match["frame"]), match["pass"] or "", match["ext"].lower())


def frame_index(frame: int, first_frame: int) -> int:
    """0-based session index of an output frame number; frames before the range are an error."""
    if frame < first_frame:
        raise ValueError(
            f"output frame {frame} is before the render range's first frame {first_frame}: "
            "clear the output folder of files from an earlier render, or render the full range"
        )
    return frame - first_frame


def group_by_frame(paths: list[str], stem: str) -> dict[int, dict[str, str]]:
    """frame number -> {pass name ("" for multilayer): path} for the files of one sequence."""
    frames: dict[int, dict[str, str]] = {}
    for path in paths:
        parsed = parse_frame_file(path, stem)
        if parsed is not None and parsed.extension == "exr":
            frames.setdefault(parsed.frame, {})[parsed.render_pass] = parsed.path
    return frames


def remove_frames(folder: str, stem: str) -> int:
    """Delete the numbered frames of ``stem`` an earlier run left in ``folder`` (nothing else)."""
    removed = 0
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        parsed = parse_frame_file(os.path.join(folder, name), stem)
        if parsed is not None:
            os.remove(parsed.path)
            removed += 1
    return removed


class OutputFolderWatcher:
    """Hands out the frames of one sequence in order as soon as every file of a frame is complete.

    MRQ writes frames from several threads, so neither "a later frame exists" nor "its size did
    not change" says a file is finished; ``exr_is_complete`` reads the file's own structure (every
    chunk the offset table promises is on disk). ``poll`` never returns a frame twice and never
    skips one: a missing or half-written frame holds back every later one.
    """

    def __init__(self, folder: str, stem: str, first_frame: int, passes: tuple[str, ...] = ("",)):
        self.folder = folder
        self.stem = stem
        self.next_frame = first_frame
        self.first_frame = first_frame
        self.passes = passes

    def poll(self, final: bool = False) -> list[tuple[int, dict[str, str]]]:
        """Newly finished frames as (index, {pass: path}); ``final`` once the render has ended."""
        names = os.listdir(self.folder) if os.path.isdir(self.folder) else []
        frames = group_by_frame([os.path.join(self.folder, n) for n in names], self.stem)
        ready: list[tuple[int, dict[str, str]]] = []
        while self.next_frame in frames and self._complete(frames[self.next_frame]):
            ready.append((frame_index(self.next_frame, self.first_frame), frames[self.next_frame]))
            self.next_frame += 1
        return ready

    def _complete(self, files: dict[str, str]) -> bool:
        return all(p in files for p in self.passes) and all(exr_is_complete(path) for path in files.values())

    def check_nothing_left(self) -> None:
        """After the final poll: a later frame on disk means this one is missing or incomplete."""
        names = os.listdir(self.folder) if os.path.isdir(self.folder) else []
        later = sorted(f for f in group_by_frame([os.path.join(self.folder, n) for n in names], self.stem) if f >= self.next_frame)
        if later:
            raise ValueError(
                f"frame {self.next_frame} of {self.stem!r} is missing or lacks one of the passes {list(self.passes)} in "
                f"{self.folder}, but frames {later[:5]} were written: check the render log, then render again"
            )
