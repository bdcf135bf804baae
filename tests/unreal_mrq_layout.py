"""Write EXR frames the way Movie Render Queue lays them out (a helper for the Unreal tests).

Facts used (from MRQ's EXR writer, MoviePipelineEXROutput.cpp, UE 5.x):
* multilayer on: one file per output frame, named by the output setting's file name format;
  the plugin's format is ``{sequence_name}.{frame_number}`` with 4-digit zero padding, and
  ``{render_pass}`` resolves to "" because passes become layers;
* the first pass (FinalImage) is written with unprefixed channel names R, G, B, A; every other
  pass as ``<pass name>.R/.G/.B/.A``; an additional post-process material's pass name is the
  material's name (no Name field set);
* 8- and 16-bit passes are written as HALF, 32-bit ("high precision") passes as FLOAT; the
  compression is the output setting's (the plugin picks ZIP).
* multilayer off: one file per pass, ``{sequence_name}.{render_pass}.{frame_number}``.
"""

from __future__ import annotations

import os

import numpy as np
import OpenEXR


def _rgba(prefix: str, rgb: np.ndarray, dtype) -> dict[str, np.ndarray]:
    alpha = np.ones(rgb.shape[:2], dtype)
    names = [f"{prefix}.{c}" if prefix else c for c in "RGBA"]
    planes = [rgb[..., 0], rgb[..., 1], rgb[..., 2], alpha]
    return {n: np.ascontiguousarray(p, dtype=dtype) for n, p in zip(names, planes)}


def write_exr(path: str, channels: dict[str, np.ndarray]) -> None:
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, channels).write(path)


def mrq_frame(color_linear: np.ndarray, depth_cm: np.ndarray, normals_encoded: np.ndarray, depth_pass: str, normal_pass: str) -> dict:
    """Channels of one multilayer frame: colour half, the two material passes 32-bit."""
    channels = _rgba("", color_linear, np.float16)
    channels.update(_rgba(depth_pass, np.repeat(depth_cm[..., None], 3, axis=-1), np.float32))
    channels.update(_rgba(normal_pass, normals_encoded, np.float32))
    return channels


def write_mrq_multilayer(folder: str, sequence: str, frame: int, channels: dict) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{sequence}.{frame:04d}.exr")
    write_exr(path, channels)
    return path


def synthetic_frame(index: int, height: int, width: int, rng: np.random.Generator):
    """Linear colour, depth in cm (with a sky band at the top) and encoded view-space normals."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    color = np.stack([x / width, y / height, np.full_like(x, (index % 7) / 7)], axis=-1) * 0.8 + rng.random((height, width, 3)) * 0.05
    depth = 200.0 + 10.0 * y + 5.0 * index
    depth[: height // 8] = 3.0e38  # sky: reversed-Z with an infinite far plane gives a huge depth
    normal = np.zeros((height, width, 3), np.float32)
    normal[..., 2] = -1.0  # facing the camera in Unreal's view space (+Z is forward)
    return color.astype(np.float32), depth.astype(np.float32), normal * 0.5 + 0.5
