"""numpy arrays <-> wire planes and frames (raw little-endian, C order).

The engine plugins reuse these functions, so every check here names the plane, the value it
got and what to send instead: a wrong frame is refused before it costs a network round trip.
"""

from __future__ import annotations

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
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(plane.data) != expected:
        raise InvalidInput(f"plane of shape {shape} {dtype.name} needs {expected} bytes, got {len(plane.data)}")
    return np.frombuffer(plane.data, dtype=dtype).reshape(shape)


def _check_shape(name: str, array: np.ndarray | None, size: tuple[int, int], channels: int | None) -> None:
    if array is None:
        return
    want = size + ((channels,) if channels else ())
    if tuple(array.shape) != want:
        raise InvalidInput(f"{name} has shape {tuple(array.shape)} but the colour is {size[0]}x{size[1]}: send shape {want}")


def pack_frame(
    index: int,
    color: np.ndarray,
    depth: np.ndarray | None = None,
    normals: np.ndarray | None = None,
    edges: np.ndarray | None = None,
    color_space: str = "srgb",
    depth_kind: str = "distance",
) -> pb.Frame:
    """A Frame message from numpy planes: color (H,W,3), depth (H,W), normals (H,W,3), edges (H,W)."""
    color = np.asarray(color)
    if color.ndim != 3 or color.shape[2] != 3:
        raise InvalidInput(f"frame {index}: color has shape {color.shape}; send (height, width, 3) RGB")
    if color.dtype.newbyteorder("=") not in DTYPES:
        raise InvalidInput(f"frame {index}: color has dtype {color.dtype}: send uint8, float16 or float32")
    if color_space not in COLOR_SPACES:
        raise InvalidInput(f"frame {index}: color_space={color_space!r}; choose one of {sorted(COLOR_SPACES)}")
    if (color.dtype == np.uint8) != (color_space == "srgb"):
        raise InvalidInput(
            f"frame {index}: {color.dtype} colour with color_space={color_space!r}; "
            "send uint8 as 'srgb' or float16/float32 as 'linear'"
        )
    if depth_kind not in DEPTH_KINDS:
        raise InvalidInput(f"frame {index}: depth_kind={depth_kind!r}; choose one of {sorted(DEPTH_KINDS)}")
    size = color.shape[:2]
    for name, array, channels in (("depth", depth, None), ("normals", normals, 3), ("edges", edges, None)):
        _check_shape(f"frame {index}: {name}", None if array is None else np.asarray(array), size, channels)
    frame = pb.Frame(
        index=index,
        color=pack_plane(color, "color"),
        color_space=COLOR_SPACES[color_space],
        depth_kind=DEPTH_KINDS[depth_kind],
    )
    if depth is not None:
        frame.depth.CopyFrom(pack_plane(depth, "depth"))
    if normals is not None:
        frame.normals.CopyFrom(pack_plane(normals, "normals"))
    if edges is not None:
        frame.edges.CopyFrom(pack_plane(edges, "edges"))
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
