"""Read one frame's colour, depth and normals out of the EXR files MRQ (or the capture) wrote.

MRQ's multilayer EXR stores the main pass ("FinalImage") as unprefixed R, G, B, A channels
and every other pass as ``<pass name>.R/.G/.B/.A`` where the pass name of an additional
post-process material is the material's name (or the pass's Name field, UE 5.5+). Files
written one per pass (multilayer off, the viewport capture) have unprefixed channels. The
main pass is linear: MRQ's EXR keeps the HDR scene colour after the tone curve without a
display encoding, so colour travels as linear half floats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conventions import encoded_view_normals_to_camera, scene_depth_to_metres

DEPTH_PASS = "C2R_SceneDepth"
NORMAL_PASS = "C2R_ViewNormal"
COLOR_PASS = ""  # the main pass: unprefixed channels in a multilayer file


@dataclass
class CoarseFrame:
    color: np.ndarray  # (H, W, 3) float16, linear Rec.709
    depth: np.ndarray | None  # (H, W) float32 metres, +inf for sky
    normals: np.ndarray | None  # (H, W, 3) float16, OpenGL camera space


def _open_exr():
    try:
        import OpenEXR
    except ImportError as error:
        raise RuntimeError(
            "the OpenEXR Python package is missing: run Coarse2Real > Install Dependencies (main menu bar) "
            "(or `pip install OpenEXR` into the Python that runs this code)"
        ) from error
    return OpenEXR


def read_channels(path: str) -> dict[str, np.ndarray]:
    """Every channel of every part of an EXR file, by full channel name."""
    openexr = _open_exr()
    channels: dict[str, np.ndarray] = {}
    with openexr.File(path, separate_channels=True) as exr:
        for part in exr.parts:
            channels.update({name: channel.pixels for name, channel in part.channels.items()})
    return channels


def select_layer(channels: dict[str, np.ndarray], layer: str, components: str, path: str) -> np.ndarray:
    """(H, W, len(components)) from ``<layer>.<C>`` channels (plain ``C`` for the unnamed layer)."""
    names = [f"{layer}.{c}" if layer else c for c in components]
    missing = [n for n in names if n not in channels]
    if missing:
        layers = sorted({n.rsplit(".", 1)[0] if "." in n else "(main)" for n in channels})
        raise ValueError(
            f"{path}: no channel(s) {missing}; the file has layers {layers}. Render with the Coarse2Real "
            f"job preset (it adds the {DEPTH_PASS} and {NORMAL_PASS} post-process passes), or pass the "
            "layer names your job uses"
        )
    return np.stack([channels[n] for n in names], axis=-1)


def read_frame(files: dict[str, str], depth_pass: str = DEPTH_PASS, normal_pass: str = NORMAL_PASS) -> CoarseFrame:
    """One frame from {pass name: path}; "" is a multilayer file holding every pass."""

    cache: dict[str, dict[str, np.ndarray]] = {}

    def channels_of(path: str) -> dict[str, np.ndarray]:
        if path not in cache:
            cache[path] = read_channels(path)
        return cache[path]

    def layer(pass_name: str, components: str) -> np.ndarray | None:
        if pass_name in files:  # a file of its own: unprefixed channels
            return select_layer(channels_of(files[pass_name]), "", components, files[pass_name])
        if "" in files:
            channels = channels_of(files[""])
            if pass_name == COLOR_PASS or any(n.startswith(pass_name + ".") for n in channels):
                return select_layer(channels, pass_name, components, files[""])
        return None

    color = layer(COLOR_PASS, "RGB") if "" in files else layer("FinalImage", "RGB")
    if color is None:
        raise ValueError(f"frame files {sorted(files.values())} hold no colour pass (FinalImage)")
    depth = layer(depth_pass, "R")
    normals = layer(normal_pass, "RGB")
    return CoarseFrame(
        color=np.nan_to_num(color.astype(np.float16), nan=0.0, posinf=65504.0, neginf=0.0),
        depth=None if depth is None else scene_depth_to_metres(depth[..., 0]),
        normals=None if normals is None else encoded_view_normals_to_camera(normals),
    )
