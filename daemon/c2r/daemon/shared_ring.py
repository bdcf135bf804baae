"""The daemon's half of a client's shared-memory frame ring (layout: proto ``SharedRing``).

The daemon maps the client's segment, reads each frame's planes as views of its slot
(``FrameChecker.check(frame, ring.slot(i))``), copies them into its own store, and only
then releases the slot: in batches of half the ring (``copied``), one SlotsReleased message
per batch instead of one per frame, and the rest when the input ends (``unreleased``). The client never waits on a batch: while it waits for a
slot, the daemon holds fewer than half the ring copied and the rest still to read. It unlinks the segment's name as soon as it has mapped it (the memory
lives while either side maps it), so nothing is left in /dev/shm whoever crashes later; a
client that died before offering its ring is swept by its dead pid (``ipc.sweep_stale_segments``).
"""

from __future__ import annotations

import logging

from c2r.client import shm
from c2r.v1 import coarse2real_pb2 as pb

from .errors import InvalidInput

log = logging.getLogger("c2r.daemon")


class RingRefused(Exception):
    """The ring cannot be used; the client falls back to bytes in the stream (the reason says why)."""


class SessionRing:
    def __init__(self, ring: pb.SharedRing, max_bytes: int):
        self.name, self.slots, self.slot_bytes = ring.name, ring.slots, ring.slot_bytes
        total = self.slots * self.slot_bytes  # Python ints: no overflow
        if self.slots < 1 or self.slot_bytes < 64 or self.slot_bytes % 64:
            raise RingRefused(f"ring of {self.slots} slots of {self.slot_bytes} bytes: use 1 or more slots of a "
                              "positive multiple of 64 bytes")
        if total > max_bytes:
            raise RingRefused(f"ring of {total} bytes is over this daemon's limit of {max_bytes} (GetInfo.limits"
                              ".max_ring_bytes); use fewer or smaller slots")
        try:
            self.segment = shm.attach(self.name)
        except (OSError, ValueError) as e:
            raise RingRefused(f"cannot map shared memory {self.name!r} ({e}); is the client on this machine, as this user?") from None
        if self.segment.size < total:
            shm.close(self.segment)
            raise RingRefused(f"segment {self.name!r} has {self.segment.size} bytes, fewer than {self.slots} x {self.slot_bytes}")
        self.view = self.segment.buf[:total]
        self.release_batch = max(1, self.slots // 2)
        self._copied: list[int] = []
        shm.unlink(self.name)  # both sides have it mapped: the name is no longer needed, and now nothing can leak

    def slot(self, index: int, slot: int) -> memoryview:
        if slot >= self.slots:
            raise InvalidInput(f"frame {index}: slot {slot} is not in the ring of {self.slots} slots; use 0..{self.slots - 1}")
        return self.view[slot * self.slot_bytes : (slot + 1) * self.slot_bytes]

    def copied(self, slot: int) -> list[int]:
        """Slot ``slot`` was copied out; the slots to release now (a batch, or none yet)."""
        self._copied.append(slot)
        if len(self._copied) < self.release_batch:
            return []
        batch, self._copied = self._copied, []
        return batch

    def unreleased(self) -> list[int]:
        """The slots copied out but not yet released (the input ended: they go now)."""
        batch, self._copied = self._copied, []
        return batch

    def close(self) -> None:
        try:
            self.view.release()
        except BufferError:  # a frame view still alive: the mapping goes with it
            pass
        shm.close(self.segment)
        log.debug("ring %s unmapped", self.name)
