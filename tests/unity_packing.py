"""The Unity package's packing rules re-implemented in Python from its spec (a test reference).

Used by the conformance test to send exactly what the C# ``PlanePacker`` and the URP
capture shader produce, without Unity: colour is an RGBA32 sRGB readback, depth a reversed-Z
device depth turned into linear eye depth (``LinearEyeDepth`` with ``_ZBufferParams``) with
sky as +inf, normals an RGBAHalf readback of view-space normals; every readback has Unity's
bottom row first, and every plane goes out top row first, little-endian, alpha dropped.
"""

from __future__ import annotations

import numpy as np

from c2r.v1 import coarse2real_pb2 as pb


def linear_eye_depth_reversed_z(device: np.ndarray, near: float, far: float) -> np.ndarray:
    """Unity's LinearEyeDepth on a reversed-Z depth buffer; device 0 (cleared) is sky."""
    x, y = -1.0 + far / near, 1.0
    eye = 1.0 / (x / far * device.astype(np.float64) + y / far)
    eye[device <= 0.0] = np.inf
    return eye.astype(np.float32)


def plane(rows_bottom_up: np.ndarray, channels: int | None, dtype, code: int) -> pb.Plane:
    top_down = np.ascontiguousarray(rows_bottom_up[::-1])
    if channels is not None:
        top_down = np.ascontiguousarray(top_down[..., :channels])
    data = top_down.astype(np.dtype(dtype).newbyteorder("<"), copy=False).tobytes()
    return pb.Plane(dtype=code, shape=list(top_down.shape), data=data)


def unity_frame(index: int, rgba32: np.ndarray, device_depth: np.ndarray, normals_rgba_half: np.ndarray | None,
                near: float, far: float) -> pb.Frame:  # fmt: skip
    """A Frame message as RealifyStreamingSession.SendAsync builds it from GBufferCapture's readbacks."""
    frame = pb.Frame(
        index=index,
        color=plane(rgba32, 3, np.uint8, pb.UINT8),
        color_space=pb.SRGB,
        depth=plane(linear_eye_depth_reversed_z(device_depth, near, far), None, np.float32, pb.FLOAT32),
        depth_kind=pb.DISTANCE,
    )
    if normals_rgba_half is not None:
        frame.normals.CopyFrom(plane(normals_rgba_half, 3, np.float16, pb.FLOAT16))
    return frame


def mono_tools(*names: str) -> list[str]:
    """Paths of Mono's tools (mcs, mono, nunit-console); skip where absent (the README's test command
    installs Python packages only; with Debian's mono-mcs, libnunit-cil-dev and nunit-console these run),
    FAIL where CI_REQUIRE_MONO is set, for a CI that installs them."""
    import os
    import shutil

    import pytest

    found = [shutil.which(name) for name in names]
    if all(found):
        return found
    missing = [n for n, f in zip(names, found) if not f]
    message = f"{missing} not installed (Debian: apt-get install mono-mcs libnunit-cil-dev nunit-console)"
    if os.environ.get("CI_REQUIRE_MONO"):
        pytest.fail(f"{message}: CI_REQUIRE_MONO is set, so this CI promised Mono; this is a broken CI setup, not a reason to skip")
    pytest.skip(message)


def formula_readbacks(index: int, height: int, width: int):
    """The readbacks Tests/Conformance~/PackFixture.cs packs (row 0 = the bottom, as Unity reads back)."""
    y, x = np.mgrid[0:height, 0:width]
    rgba = np.stack([(x * 7 + y * 3 + index) % 256, (x + y * 5) % 256, (index * 11 + x * y) % 256, np.full_like(x, 255)], axis=-1)
    depth = np.where(y >= height - 4, 0.0, (1 + y + index) / 64.0).astype(np.float32)
    normals = np.stack([(x % 4) / 4.0, -(y % 2) / 2.0, np.ones_like(x, float), np.ones_like(x, float)], axis=-1).astype(np.float16)
    return rgba.astype(np.uint8), depth, normals
