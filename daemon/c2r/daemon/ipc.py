"""Messages between the front end and an engine: pickle protocol 5, pixels in shared memory.

A window is hundreds of MB of frames. Arrays that live in shared memory the sender owns
(``SharedArrays``: the front end's window buffers, the engine's results) cross as a handle
(segment name, offset, shape, dtype) and are mapped on the other side: no pixel is pickled,
copied into a socket or sent twice (the engine sends its results and preview estimates so, but
frames under ``engine.INLINE_BYTES`` out of band, where a segment would cost more than they do).
Any other array (small: a prefix) goes out of band as its own ZeroMQ frame without a copy;
only a small header is pickled.

Ownership: the front end owns its window buffers (it unlinks them when the window is
released; the engine maps them for one request). The engine creates one segment per result
and forgets it once sent; the front end copies the frames out when it reads the message and
unlinks the segment at once, so a result nobody routes (a replaced engine's) leaks nothing.
Segments of a process that died before handing them over are swept by name (``c2r.client.shm``).
"""

from __future__ import annotations

import io
import math
import pickle
from multiprocessing.shared_memory import SharedMemory

import numpy as np
import zmq

from c2r.client import shm


class SharedArrays:
    """Arrays this process allocates in shared memory, which ``pack`` sends as handles.

    ``keep_bytes``: freed segments are kept for reuse (same size) while live and kept segments
    together stay within it, so a steady stream of windows writes into pages already faulted
    in instead of paying a fresh segment's page faults every window, and the pool never adds
    memory beyond that budget.
    """

    def __init__(self, kind: str, keep_bytes: int = 0):
        self.kind, self.keep_bytes = kind, keep_bytes
        self.segments: dict[str, tuple[SharedMemory, int]] = {}  # name -> (segment, base address)
        self.spare: list[SharedMemory] = []

    def allocate(self, layout: dict[str, tuple[tuple[int, ...], np.dtype]]) -> dict[str, np.ndarray]:
        offsets, total = {}, 0
        for name, (shape, dtype) in layout.items():
            offsets[name] = total
            total = shm.aligned(total + math.prod(shape) * np.dtype(dtype).itemsize)
        reused = next((i for i, seg in enumerate(self.spare) if seg.size == shm.aligned(max(total, 1))), None)
        segment = self.spare.pop(reused) if reused is not None else shm.create(shm.aligned(max(total, 1)), self.kind)
        probe = np.frombuffer(segment.buf, np.uint8, count=1)
        self.segments[segment.name] = (segment, probe.ctypes.data)
        del probe
        return {name: np.ndarray(shape, dtype, buffer=segment.buf, offset=offsets[name])
                for name, (shape, dtype) in layout.items()}

    def handle(self, array: np.ndarray) -> tuple | None:
        if not array.flags.c_contiguous:
            return None
        address = array.ctypes.data
        for name, (segment, base) in self.segments.items():
            if base <= address and address + array.nbytes <= base + segment.size:
                return ("shm", name, address - base, array.shape, array.dtype.str)
        return None

    def _segment_of(self, arrays: dict[str, np.ndarray]) -> str | None:
        handles = [self.handle(a) for a in arrays.values()]
        return handles[0][1] if handles and handles[0] else None

    def free(self, arrays: dict[str, np.ndarray]) -> None:
        """The owner is done with ``arrays``: unmap and unlink their segment."""
        name = self._segment_of(arrays)
        arrays.clear()
        if name is None:
            return
        segment, _ = self.segments.pop(name)
        self.spare.append(segment)
        live = sum(seg.size for seg, _ in self.segments.values())
        while self.spare and live + sum(seg.size for seg in self.spare) > self.keep_bytes:
            old = self.spare.pop(0)
            shm.close(old)
            shm.unlink(old.name)

    def forget(self, arrays: dict[str, np.ndarray]) -> None:
        """Handed over: the receiver unlinks the segment; only unmap it here."""
        name = self._segment_of(arrays)
        arrays.clear()
        if name is not None:
            shm.close(self.segments.pop(name)[0])

    def close(self) -> None:
        for segment in [s for s, _ in self.segments.values()] + self.spare:
            shm.close(segment)
            shm.unlink(segment.name)
        self.segments.clear()
        self.spare.clear()


class Mapped:
    """Segments mapped while unpacking one message.

    ``copy_out``: each array is copied out and, once the message is read, its segment is
    unmapped and unlinked (the front end reading results). Else arrays are views, valid
    until ``close`` (the engine reading a window). A segment that cannot be mapped (its
    owner dropped the window meanwhile) becomes None and is named in ``missing``.
    """

    def __init__(self, copy_out: bool):
        self.copy_out = copy_out
        self.segments: dict[str, SharedMemory] = {}
        self.missing: list[str] = []

    def load(self, name: str, offset: int, shape: tuple, dtype: str) -> np.ndarray | None:
        segment = self.segments.get(name)
        if segment is None:
            try:
                segment = self.segments[name] = shm.attach(name)
            except (OSError, ValueError) as e:
                self.missing.append(f"{name} ({e})")
                return None
        view = np.ndarray(shape, np.dtype(dtype), buffer=segment.buf, offset=offset)
        return view.copy() if self.copy_out else view

    def close(self) -> None:
        for name, segment in self.segments.items():
            shm.close(segment)
            if self.copy_out:
                shm.unlink(name)
        self.segments.clear()


class _Pickler(pickle.Pickler):
    def __init__(self, file, shared: SharedArrays | None, buffers: list):
        super().__init__(file, protocol=5, buffer_callback=buffers.append)
        self.shared = shared

    def persistent_id(self, obj):
        if self.shared is not None and type(obj) is np.ndarray:
            return self.shared.handle(obj)
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, buffers, mapped: Mapped | None):
        super().__init__(file, buffers=buffers)
        self.mapped = mapped

    def persistent_load(self, pid):
        if pid[0] != "shm" or self.mapped is None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid[0]!r}")
        return self.mapped.load(*pid[1:])


def pack(message, shared: SharedArrays | None = None) -> list:
    buffers: list[pickle.PickleBuffer] = []
    header = io.BytesIO()
    _Pickler(header, shared, buffers).dump(message)
    return [header.getvalue(), *(b.raw() for b in buffers)]


def unpack(parts: list, writable: bool = False, mapped: Mapped | None = None):
    """The message from ``recv_multipart`` parts; ``writable`` copies out-of-band arrays so they may be changed;
    ``mapped`` maps shared-memory handles (default: copy each out and unlink it)."""
    raw = [p.buffer if isinstance(p, zmq.Frame) else p for p in parts]
    buffers = [bytearray(b) for b in raw[1:]] if writable else raw[1:]
    if mapped is not None:
        return _Unpickler(io.BytesIO(raw[0]), buffers, mapped).load()
    copied = Mapped(copy_out=True)
    try:
        return _Unpickler(io.BytesIO(raw[0]), buffers, copied).load()
    finally:
        copied.close()


def sweep_stale_segments() -> list[str]:
    """Unlink the segments of coarse2real processes that died holding them (a killed engine's results)."""
    stale = shm.stale_segments()
    for name in stale:
        shm.unlink(name)
    return stale
