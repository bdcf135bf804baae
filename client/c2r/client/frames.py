"""numpy arrays <-> wire planes and frames (raw little-endian, C order).

The engine plugins reuse these functions, so every check here names the plane, the value it
got and what to send instead: a wrong frame is refused before it costs a network round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from c2r.v1 import coarse2real_pb2 as pb

from .errors import InvalidInput

DTYPES = {np.dtype(np.uint8): pb.UINT8, np.dtype(np.float16): pb.FLOAT16, np.dtype(np.float32): pb.FLOAT32}
NUMPY_DTYPES = {code: dtype for dtype, code in DTYPES.items()}
COLOR_SPACES = {"srgb": pb.SRGB, "linear": pb.LINEAR}
DEPTH_KINDS = {"distance": pb.DISTANCE, "inverse": pb.INVERSE}


def pack_plane(array: np.ndarray, name: str = "plane") -> pb.Plane:
    """One array as a Plane; float64 is narrowed to float32 (the wire has no float64)."""
    array = np.asarray(array)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    native = array.dtype.newbyteorder("=")
    if native not in DTYPES:
        raise InvalidInput(f"{name} has dtype {array.dtype}: send uint8, float16 or float32")
    little = np.ascontiguousarray(array, dtype=native.newbyteorder("<"))
    return pb.Plane(dtype=DTYPES[native], shape=list(array.shape), data=little.tobytes())


def unpack_plane(plane: pb.Plane) -> np.ndarray:
    """A Plane as a read-only array view of its bytes (no copy)."""
    if plane.dtype not in NUMPY_DTYPES:
        raise InvalidInput(f"plane dtype {pb.DType.Name(plane.dtype)} is not one of UINT8, FLOAT16, FLOAT32")
    dtype = NUMPY_DTYPES[plane.dtype].newbyteorder("<")
    shape = tuple(plane.shape)
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow whatever the shape
    if len(plane.data) != expected:
        raise InvalidInput(f"plane of shape {shape} {dtype.name} needs {expected} bytes, got {len(plane.data)}")
    return np.frombuffer(plane.data, dtype=dtype).reshape(shape)


PLANE_NAMES = ("color", "depth", "normals", "edges")  # wire order (and the shared-memory slot order)


@dataclass
class FramePlanes:
    """One frame's planes as numpy arrays: color (H, W, 3), depth (H, W), normals (H, W, 3), edges (H, W).

    Checked when made: a wrong frame is refused before it costs a round trip. float64 becomes
    float32 (the wire has no float64).
    """

    color: np.ndarray
    depth: np.ndarray | None = None
    normals: np.ndarray | None = None
    edges: np.ndarray | None = None
    color_space: str = "srgb"
    depth_kind: str = "distance"

    def __post_init__(self) -> None:
        for name in PLANE_NAMES:
            array = getattr(self, name)
            if array is not None:
                array = np.asarray(array)
                setattr(self, name, array.astype(np.float32) if array.dtype == np.float64 else array)

    def check(self, index: int) -> "FramePlanes":
        color = self.color
        if color.ndim != 3 or color.shape[2] != 3:
            raise InvalidInput(f"frame {index}: color has shape {color.shape}; send (height, width, 3) RGB")
        for name, array in self.arrays():
            if array.dtype.newbyteorder("=") not in DTYPES:
                raise InvalidInput(f"frame {index}: {name} has dtype {array.dtype}: send uint8, float16 or float32")
        if self.color_space not in COLOR_SPACES:
            raise InvalidInput(f"frame {index}: color_space={self.color_space!r}; choose one of {sorted(COLOR_SPACES)}")
        if (color.dtype == np.uint8) != (self.color_space == "srgb"):
            raise InvalidInput(
                f"frame {index}: {color.dtype} colour with color_space={self.color_space!r}; "
                "send uint8 as 'srgb' or float16/float32 as 'linear'"
            )
        if self.depth_kind not in DEPTH_KINDS:
            raise InvalidInput(f"frame {index}: depth_kind={self.depth_kind!r}; choose one of {sorted(DEPTH_KINDS)}")
        size = color.shape[:2]
        for name, channels in (("depth", None), ("normals", 3), ("edges", None)):
            array = getattr(self, name)
            want = size + ((channels,) if channels else ())
            if array is not None and tuple(array.shape) != want:
                raise InvalidInput(f"frame {index}: {name} has shape {tuple(array.shape)} but the colour is "
                                   f"{size[0]}x{size[1]}: send shape {want}")
        return self

    def arrays(self) -> list[tuple[str, np.ndarray]]:
        """(name, array) of the planes present, in wire order."""
        return [(name, getattr(self, name)) for name in PLANE_NAMES if getattr(self, name) is not None]


def frame_message(index: int, planes: FramePlanes) -> pb.Frame:
    """The Frame message's header fields (no planes): index and the colour and depth conventions."""
    return pb.Frame(index=index, color_space=COLOR_SPACES[planes.color_space], depth_kind=DEPTH_KINDS[planes.depth_kind])


def pack_frame(index: int, planes: FramePlanes) -> pb.Frame:
    """A Frame message carrying ``planes`` as bytes in the stream."""
    planes.check(index)
    frame = frame_message(index, planes)
    for name, array in planes.arrays():
        getattr(frame, name).CopyFrom(pack_plane(array, name))
    return frame


# Bytes of a Frame message beyond its planes' pixel data (indices, shapes, tags), rounded up.
FRAME_OVERHEAD = 1024


def frame_bytes(frame: pb.Frame) -> int:
    """A Frame's size on the wire, about: its planes' data plus a fixed overhead.

    Both ends measure frames this way instead of calling ByteSize(), which walks the whole
    message and costs several milliseconds per 720p frame.
    """
    return FRAME_OVERHEAD + sum(len(getattr(frame, slot).data) for slot in ("color", "depth", "normals", "edges"))


def check_message_size(frame: pb.Frame, limit: int) -> None:
    """Refuse a frame the daemon would reject as oversize, with the ways to make it fit."""
    size = frame_bytes(frame)
    if size > limit:
        raise InvalidInput(
            f"frame {frame.index} is {size / 2**20:.1f} MiB, over the daemon's {limit / 2**20:.0f} MiB message limit: "
            "lower the resolution, send colour as uint8 or half float, or send depth/normals as float16"
        )
