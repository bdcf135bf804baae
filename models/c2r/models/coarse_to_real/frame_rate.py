"""C2R runs at 16 fps; results go back 1:1 at the input's frame rate.

Into the model: model frame k shows the input frame nearest its time, input index
round(k * input_fps / 16) (C2R's own rule), for every k whose time lies inside the window.
Back out: input frame i gets the generated frame nearest its time, round(i * 16 / input_fps).
So every output frame is a generated frame: above 16 fps some generated frames are shown
twice (at 24 fps one output frame in three repeats its neighbour), below 16 fps some generated
frames are not shown. No frame is blended (blending moving content ghosts). ``input_fps`` 0 (or
16) means the frames already are at the model's rate: nothing is resampled.
"""

from __future__ import annotations

import math

MODEL_FPS = 16.0


def _nearest(x: float) -> int:
    return int(math.floor(x + 0.5))


def is_resampled(input_fps: float) -> bool:
    return bool(input_fps) and abs(input_fps - MODEL_FPS) > 1e-6


def model_frame_sources(num_frames: int, input_fps: float) -> list[int]:
    """For each model frame of a window of ``num_frames`` input frames: the input frame it shows."""
    if num_frames < 1:
        raise ValueError("a window needs at least one frame")
    if input_fps < 0:
        raise ValueError(f"fps={input_fps}: give the input's frame rate (or 0 when it is already {MODEL_FPS:g} fps)")
    if not is_resampled(input_fps):
        return list(range(num_frames))
    count = math.floor((num_frames - 1) * MODEL_FPS / input_fps + 1e-9) + 1
    return [min(num_frames - 1, _nearest(k * input_fps / MODEL_FPS)) for k in range(count)]


def output_frame_sources(num_frames: int, input_fps: float, model_frames: int) -> list[int]:
    """For each of ``num_frames`` input frames: the model frame returned for it."""
    if not is_resampled(input_fps):
        return list(range(num_frames))
    return [min(model_frames - 1, _nearest(i * MODEL_FPS / input_fps)) for i in range(num_frames)]


def known_model_frames(sources: list[int], prefix_length: int) -> int:
    """How many leading model frames show input frames of the already-generated prefix."""
    return sum(1 for s in sources if s < prefix_length)
