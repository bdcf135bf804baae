"""Same-host shared memory: named segments and the frame ring (layout: proto ``SharedRing``).

Segments are ``multiprocessing.shared_memory`` ones (POSIX shm on Linux and macOS, a named
file mapping on Windows), opened untracked: whoever this module says owns a name unlinks it
(``unlink``), never Python's resource tracker, whose clean-up at exit would remove a segment
the other side still uses. Names are ``c2r-<creator pid>-<random>``, so a sweep can tell
the segments of a dead process (``stale_segments``, Linux) from live ones.

``FrameRing`` is the client's half of the ring: it lays a frame's planes out in a free slot
(the one copy on the client's side) and returns the Frame message that names the slot.
"""

from __future__ import annotations

import os
import secrets
import sys
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from c2r.v1 import coarse2real_pb2 as pb

from .frames import DTYPES, FramePlanes, frame_message

ALIGN = 64
PREFIX = "c2r-"
SHM_FOLDER = Path("/dev/shm")  # where Linux shows POSIX segments (macOS shows none; Windows frees them with the last handle)


def aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def new_name(kind: str = "") -> str:
    return f"{PREFIX}{os.getpid()}-{kind}{secrets.token_hex(6)}"


def _untracked(name: str | None, create: bool, size: int = 0) -> shared_memory.SharedMemory:
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name, create=create, size=size, track=False)
    segment = shared_memory.SharedMemory(name, create=create, size=size)
    if os.name == "posix":  # Python < 3.13 registers every segment it opens with the resource tracker
        from multiprocessing import resource_tracker

        resource_tracker.unregister(segment._name, "shared_memory")  # noqa: SLF001 (the tracker's own key)
    return segment


def create(size: int, kind: str = "") -> shared_memory.SharedMemory:
    """A new segment of at least ``size`` bytes, private to this user (mode 0600), that the caller owns."""
    return _untracked(new_name(kind), True, max(int(size), 1))


def attach(name: str) -> shared_memory.SharedMemory:
    """Map an existing segment; raises OSError (FileNotFoundError, PermissionError) if it cannot."""
    if not name.startswith(PREFIX) or "/" in name or "\\" in name or "\0" in name or len(name) > 200:
        raise FileNotFoundError(f"shared-memory name {name!r} is not a coarse2real segment name ({PREFIX}...)")
    return _untracked(name, False)


def unlink(name: str) -> None:
    """Remove a segment's name (its memory lives on while mapped); a name already gone is fine.

    Windows frees a named mapping with its last handle: nothing to remove there.
    """
    if os.name != "posix":
        return
    import _posixshmem  # what SharedMemory.unlink calls, without its second resource-tracker unregister

    try:
        _posixshmem.shm_unlink("/" + name)
    except (FileNotFoundError, PermissionError):  # gone already, or another user's (never ours to remove)
        pass


def close(segment: shared_memory.SharedMemory) -> None:
    """Unmap; array views still alive keep the mapping until they go (Python refuses to close under them)."""
    try:
        segment.close()
    except BufferError:
        pass


def stale_segments() -> list[str]:
    """coarse2real segments whose creating process is gone (Linux; elsewhere none can be listed)."""
    if not SHM_FOLDER.is_dir():
        return []
    stale = []
    for path in SHM_FOLDER.glob(f"{PREFIX}*"):
        pid = path.name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            stale.append(path.name)
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def plane_layout(planes: FramePlanes) -> list[tuple[str, np.ndarray, int]]:
    """(slot name, array, offset) of each plane, in the documented order, each at the next multiple of 64."""
    layout, offset = [], 0
    for name, array in planes.arrays():
        layout.append((name, array, offset))
        offset = aligned(offset + array.nbytes)
    return layout


def slot_bytes_for(planes: FramePlanes) -> int:
    last_name, last, offset = plane_layout(planes)[-1]
    return aligned(offset + last.nbytes)


class FrameRing:
    """The client's ring: ``slots`` slots of ``slot_bytes`` in one segment it owns."""

    def __init__(self, slots: int, slot_bytes: int):
        self.slots, self.slot_bytes = slots, aligned(slot_bytes)
        self.segment = create(self.slots * self.slot_bytes, "ring-")
        self.name = self.segment.name.lstrip("/")

    @property
    def message(self) -> pb.SharedRing:
        return pb.SharedRing(name=self.name, slots=self.slots, slot_bytes=self.slot_bytes)

    def fits(self, planes: FramePlanes) -> bool:
        return slot_bytes_for(planes) <= self.slot_bytes

    def write(self, slot: int, index: int, planes: FramePlanes) -> pb.Frame:
        """Copy ``planes`` into ``slot``; the Frame names the slot and each plane's offset (no pixel bytes)."""
        base = slot * self.slot_bytes
        frame = frame_message(index, planes)
        frame.slot = slot
        for name, array, offset in plane_layout(planes):
            little = array.dtype.newbyteorder("<")
            view = np.ndarray(array.shape, little, buffer=self.segment.buf, offset=base + offset)
            np.copyto(view, array, casting="equiv")
            getattr(frame, name).CopyFrom(pb.Plane(dtype=DTYPES[array.dtype.newbyteorder("=")], shape=list(array.shape),
                                                   offset=offset))
            del view
        return frame

    def close(self) -> None:
        close(self.segment)
        unlink(self.name)
