"""Whole clips in and out of memory for the research tools (datagen, train, eval).

A thin layer over ``c2r.client.media``, which streams frames one by one for the daemon; the
research tools want a clip as one (T, H, W, 3) uint8 array, with its frame rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from c2r.client import media
from c2r.models.preprocess import linear_to_srgb


def read_clip(path: str | Path, fps: float | None = None, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """(frames (T, H, W, 3) uint8 sRGB, fps) of a video, image folder/pattern or EXR sequence."""
    clip = media.open_clip(path, fps)
    frames = []
    for frame in clip:
        frames.append(frame)
        if max_frames and len(frames) >= max_frames:
            break
    if not frames:
        raise media.MediaError(f"{path}: the clip has no frames")
    video = np.stack(frames)
    if clip.color_space == "linear":
        video = linear_to_srgb(torch.from_numpy(video.astype(np.float32))).mul(255).round().to(torch.uint8).numpy()
    return video, clip.fps


def read_depth(path: str | Path, num_frames: int) -> np.ndarray:
    """(T, H, W) float32 depth for the first ``num_frames`` frames."""
    planes = media.open_depth(path)
    if len(planes) < num_frames:
        raise media.MediaError(f"{path}: {len(planes)} depth frames for a {num_frames}-frame clip; give one depth frame per colour frame")
    return np.stack([planes[i] for i in range(num_frames)])


def write_clip(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    writer = media.open_writer(path, fps)
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.close()
    return Path(path)
