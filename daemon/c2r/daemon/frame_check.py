"""Checks every incoming frame of a session before it is accepted.

What a session refuses (INVALID_ARGUMENT, with the frame index and value):
- an index other than the next one expected (a gap or a repeat);
- a buffer declared in ``SessionConfig.buffers`` missing from a frame;
- a dtype a slot does not take, or bytes not matching the shape (see ``planes``);
- a size different from the first frame's (shapes may not change mid-stream), or one
  beyond ``Limits`` (GetInfo.limits), refused before any byte of it is used;
- NaN or inf in colour, normals or edges;
- depth that is entirely non-finite, or negative: NaN/inf depth marks sky or missing
  samples and is fine per pixel, but a frame with no finite depth carries no geometry
  (usually a wrong render pass or an unwritten buffer) and negative distances are a
  wrong convention.

The value checks (``check_values``) run on the daemon's own copy of a frame (see
``FrameStore.put``), as min/max reductions over same-width integer views of the floats: no
temporary array, and a float16 plane is never widened. Only a frame that fails (or holds a
-0 depth, which a reduction cannot tell from a negative one) is looked at element by element.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from c2r.v1 import coarse2real_pb2 as pb

from .errors import InvalidInput
from .planes import plane_to_array
from .settings import FrameLimits

FLOATS = (pb.FLOAT16, pb.FLOAT32)
# slot -> (accepted dtypes, channels or None for (H, W))
SLOTS: dict[str, tuple[tuple[int, ...], int | None]] = {
    "color": ((pb.UINT8, *FLOATS), 3),
    "depth": (FLOATS, None),
    "normals": (FLOATS, 3),
    "edges": ((pb.UINT8, *FLOATS), None),
}
BUFFER_SLOTS = {pb.COLOR: "color", pb.DEPTH: "depth", pb.NORMALS: "normals", pb.EDGES: "edges"}
# float dtype -> (same-width unsigned and signed integers, exponent mask). A float is NaN/inf exactly when its exponent
# bits are all set. As a signed integer a positive NaN/inf is >= mask (the top of the range) and a finite negative is
# below INT_MIN + mask; as an unsigned one a negative NaN/inf is >= sign bit | mask and a finite positive below mask.
BITS = {np.dtype(np.float16): (np.uint16, np.int16, 0x7C00), np.dtype(np.float32): (np.uint32, np.int32, 0x7F800000)}


def _views(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(unsigned view, signed view, exponent mask, the signed integer's minimum) of float array ``a``."""
    unsigned, signed, mask = BITS[a.dtype.newbyteorder("=")]
    return a.view(unsigned), a.view(signed), mask, int(np.iinfo(signed).min)


def has_non_finite(a: np.ndarray) -> bool:
    """Any NaN/inf in float16/float32 ``a``: two integer reductions."""
    unsigned, signed, mask, low = _views(a)
    return int(signed.max()) >= mask or int(unsigned.max()) >= (-low | mask)


@dataclass
class CheckedFrame:
    index: int
    planes: dict[str, np.ndarray]  # slot -> array, only the slots the session declared
    color_space: str  # "srgb" | "linear"
    depth_kind: str  # "distance" | "inverse"


class FrameChecker:
    """Validates one session's frames in order; remembers the first frame's size and conventions."""

    def __init__(self, declared: list[str], first_index: int = 0, limits: FrameLimits = FrameLimits()):
        self.declared = declared
        self.next_index = first_index
        self.limits = limits
        self.size: tuple[int, int] | None = None
        self.color_kind: tuple[int, str] | None = None

    def check(self, frame: pb.Frame, shared: memoryview | None = None, data: dict[str, memoryview] | None = None) -> CheckedFrame:
        """The frame's planes as views (of the message, of the bytes split off it ``data``, or of its shared-memory
        slot ``shared``), their shapes checked.

        The values are not checked yet: call ``check_values`` on a copy.
        """
        if frame.index != self.next_index:
            what = "a repeat" if frame.index < self.next_index else "a gap"
            raise InvalidInput(
                f"frame index {frame.index} received where {self.next_index} was expected ({what}); "
                f"send frames with consecutive indices starting at 0, resending from frame {self.next_index}"
            )
        data = data or {}
        planes = {slot: self._plane(frame, slot, shared, data.get(slot)) for slot in self.declared}
        color_space = self._color_space(frame, planes["color"])
        depth_kind = "inverse" if frame.depth_kind == pb.INVERSE else "distance"
        return CheckedFrame(frame.index, planes, color_space, depth_kind)

    def accepted(self, index: int) -> None:
        """Frame ``index``'s values passed and it is stored: the next index is expected."""
        self.next_index = index + 1

    def _plane(self, frame: pb.Frame, slot: str, shared: memoryview | None, data: memoryview | None) -> np.ndarray:
        if not frame.HasField(slot):
            raise InvalidInput(
                f"frame {frame.index}: the session declared buffer {slot.upper()} but the frame has no {slot} plane; "
                "send it in every frame, or leave it out of SessionConfig.buffers"
            )
        dtypes, channels = SLOTS[slot]
        plane = getattr(frame, slot)
        if len(plane.shape) >= 2:
            self.limits.check(frame.index, slot, tuple(plane.shape))
        try:
            array = plane_to_array(plane, slot, dtypes, channels, shared, data)
        except InvalidInput as e:
            raise InvalidInput(f"frame {frame.index}: {e}") from None
        size = (int(array.shape[0]), int(array.shape[1]))
        if self.size is None:
            self.size = size
        elif size != self.size:
            raise InvalidInput(
                f"frame {frame.index}: {slot} is {size[0]}x{size[1]} (HxW) but this session's frames are "
                f"{self.size[0]}x{self.size[1]}; the size may not change mid-stream: end this session and start a new one"
            )
        return array

    def _color_space(self, frame: pb.Frame, color: np.ndarray) -> str:
        unspecified = "srgb" if color.dtype == np.uint8 else "linear"
        space = {pb.SRGB: "srgb", pb.LINEAR: "linear"}.get(frame.color_space, unspecified)
        if (space == "srgb") != (color.dtype == np.uint8):
            raise InvalidInput(
                f"frame {frame.index}: colour space {space.upper()} with {color.dtype} data; "
                "send SRGB colour as UINT8 or LINEAR colour as FLOAT16/FLOAT32"
            )
        kind = (color.dtype.itemsize, space)
        if self.color_kind is None:
            self.color_kind = kind
        elif kind != self.color_kind:
            raise InvalidInput(
                f"frame {frame.index}: colour changed to {space} {color.dtype} mid-stream; keep one colour format per session"
            )
        return space

    def check_values(self, index: int, planes: dict[str, np.ndarray]) -> None:
        for slot in ("color", "normals", "edges"):
            a = planes.get(slot)
            if a is not None and a.dtype != np.uint8 and has_non_finite(a):
                raise InvalidInput(
                    f"frame {index}: {slot} has {int(np.count_nonzero(~np.isfinite(a)))} NaN/inf values; {slot} must be "
                    "finite everywhere (check the render pass; clamp or zero invalid pixels before sending)"
                )
        depth = planes.get("depth")
        if depth is None:
            return
        unsigned, signed, mask, low = _views(depth)
        lowest = int(signed.min())
        if int(unsigned.min()) >= mask and lowest >= low + mask:  # no finite positive, no finite negative
            raise InvalidInput(
                f"frame {index}: depth has no finite value (all NaN/inf); NaN/inf marks sky or missing samples per pixel, "
                "but a whole frame of it means the depth pass is missing: send a real depth pass, or leave DEPTH out of buffers"
            )
        if lowest >= low + mask:
            return  # nothing finite below zero (NaN/-inf are missing samples)
        negative = depth[np.signbit(depth) & np.isfinite(depth) & (depth != 0)]  # -0 is 0
        if negative.size:
            raise InvalidInput(
                f"frame {index}: depth has negative values (min {float(negative.min()):g}); send positive view distances "
                "(DISTANCE) or positive disparities (INVERSE), e.g. negate an OpenGL-style view-space z"
            )
