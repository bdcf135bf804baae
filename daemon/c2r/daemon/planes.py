"""Raw pixel planes from the wire -> numpy arrays, checked for the slot they fill.

Packing (arrays -> planes, for results) is the client's ``pack_plane``: one wire format, one codec.

A plane is trusted for nothing: its dtype must be one the slot accepts, its shape must have
the slot's rank and channel count, and its byte length must be exactly what the shape says.
Each refusal names the slot, the value received and what to send instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from c2r.client.frames import NUMPY_DTYPES, split_frame_data
from c2r.v1 import coarse2real_pb2 as pb

from .errors import InvalidInput


@dataclass
class Received:
    """One ClientMessage of a Realify stream as the daemon reads it (``decode_client_message``)."""

    message: pb.ClientMessage
    size: int  # bytes on the wire
    data: list[dict[str, memoryview]] = field(default_factory=list)  # per frame (one, or a FrameBatch's in order):
    # plane slot -> its pixel bytes, a view of the received bytes (the message's own Plane.data is then empty);
    # empty: the planes' data is in the message

    def frames(self) -> list[tuple[pb.Frame, dict[str, memoryview] | None]]:
        """The frames it carries (a Frame, or a FrameBatch's), each with its split-off plane bytes."""
        kind = self.message.WhichOneof("kind")
        frames = [self.message.frame] if kind == "frame" else list(self.message.frames.frames) if kind == "frames" else []
        return [(frame, self.data[i] if self.data else None) for i, frame in enumerate(frames)]


SPLIT_BYTES = 64 * 2**10  # smaller messages (a shared-memory frame's handle, a tiny frame) are protobuf's alone:
# copying their few bytes costs less than splitting them in Python (a FrameBatch of 48 handles: 0.01 ms against 1.4 ms)


def decode_client_message(raw: bytes) -> Received:
    """Realify's request deserializer: protobuf parses everything but the pixels, which stay where gRPC put them
    (``split_frame_data``: no copy); raises DecodeError for bytes that are no ClientMessage."""
    split = split_frame_data(raw) if len(raw) >= SPLIT_BYTES else None
    if split is None:
        return Received(pb.ClientMessage.FromString(raw), len(raw))
    stripped, data = split
    return Received(pb.ClientMessage.FromString(stripped), len(raw), data)


LITTLE_ENDIAN = {code: dtype.newbyteorder("<") for code, dtype in NUMPY_DTYPES.items()}


def dtype_name(code: int) -> str:
    return pb.DType.Name(code) if code in pb.DType.values() else str(code)


def plane_to_array(plane: pb.Plane, slot: str, dtypes: tuple[int, ...], channels: int | None,
                   shared: memoryview | None = None, data: memoryview | None = None) -> np.ndarray:
    """Decode ``plane`` for ``slot`` ("color", "depth", ...); channels None means an (H, W) plane.

    ``shared``: the frame's shared-memory slot; the plane's bytes are at ``plane.offset`` in it
    (a view, no copy: copy it before trusting its values, the client may still write it).
    ``data``: the plane's bytes when they were split off the message (``Received.data``); else
    ``plane.data`` is read, once (each read of a protobuf bytes field is a copy).
    """
    if plane.dtype not in dtypes:
        allowed = ", ".join(dtype_name(d) for d in dtypes)
        raise InvalidInput(f"frame {slot}: dtype {dtype_name(plane.dtype)} is not accepted here; send one of {allowed}")
    shape = tuple(plane.shape)
    rank_ok = len(shape) == 2 if channels is None else len(shape) == 3 and shape[2] == channels
    if not rank_ok or 0 in shape:
        want = "(H, W)" if channels is None else f"(H, W, {channels})"
        raise InvalidInput(f"frame {slot}: shape {list(shape)} is not {want}; send the plane with shape {want}")
    dtype = LITTLE_ENDIAN[plane.dtype]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a crafted shape cannot overflow past the checks
    data = plane.data if data is None else data
    if shared is not None:
        return _shared_plane(plane, slot, shape, dtype, expected, shared, len(data))
    if len(data) != expected:
        raise InvalidInput(
            f"frame {slot}: {len(data)} bytes for shape {list(shape)} {dtype_name(plane.dtype)}, expected {expected}; "
            "send exactly prod(shape) * itemsize little-endian bytes in C order"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _shared_plane(plane: pb.Plane, slot: str, shape: tuple[int, ...], dtype: np.dtype, nbytes: int,
                  shared: memoryview, data_bytes: int) -> np.ndarray:
    if data_bytes:
        raise InvalidInput(f"frame {slot}: a shared-memory frame carries no plane bytes, got {data_bytes}; "
                           "leave Plane.data empty and give Plane.offset in the slot")
    if plane.offset % 64 or plane.offset + nbytes > len(shared):
        raise InvalidInput(
            f"frame {slot}: {nbytes} bytes at offset {plane.offset} do not fit a {len(shared)}-byte slot at a multiple "
            "of 64; lay the planes out as the SharedRing comment in coarse2real.proto says"
        )
    return np.frombuffer(shared, dtype=dtype, count=math.prod(shape), offset=plane.offset).reshape(shape)
