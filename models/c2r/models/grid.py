"""The model grid: how an engine frame size maps onto the size a Wan model runs at (and back).

Torch-free so the memory planner (and ``c2r plan``) can size a window without importing torch.
Frames are scaled keeping their aspect and padded to whole transformer tokens: a side must be
a multiple of the VAE's spatial compression times the transformer's patch (8 x 2 = 16 for
Wan2.1's VAE, 16 x 2 = 32 for Wan2.2's TI2V VAE).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

GRID_MULTIPLE = 16  # Wan2.1 VAE (8x) x patch 2
# Target pixel areas of the resolution presets (Wan's 832x480 and 1280x720 training sizes).
RESOLUTION_AREAS = {"480p": 832 * 480, "720p": 1280 * 720}
RESOLUTIONS = (*RESOLUTION_AREAS, "native")


@dataclass(frozen=True)
class Grid:
    """How one engine frame size maps onto the model grid (and back).

    The input (height, width) is scaled to (scaled_height, scaled_width), then padded by
    (pad_top, pad_bottom, pad_left, pad_right) to (model_height, model_width), multiples of
    the model's token cell.
    """

    height: int
    width: int
    model_height: int
    model_width: int
    scaled_height: int
    scaled_width: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int

    @property
    def model_size(self) -> tuple[int, int]:
        return self.model_height, self.model_width

    @property
    def scaled_size(self) -> tuple[int, int]:
        return self.scaled_height, self.scaled_width


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-value // multiple) * multiple)


def _round_nearest(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def grid_for(height: int, width: int, resolution: str = "480p", multiple: int = GRID_MULTIPLE) -> Grid:
    """The model grid for frames of ``height`` x ``width`` at a resolution preset.

    "480p"/"720p" pick a grid of about the preset's pixel area with the input's aspect ratio
    (small inputs are scaled up, large ones down); "native" keeps the size and only pads.
    ``multiple``: pixels per transformer token side (VAE compression x patch; 32 for Wan2.2 TI2V).
    """
    if not (isinstance(height, numbers.Integral) and isinstance(width, numbers.Integral)) or height < 1 or width < 1:
        raise ValueError(f"frame size {height}x{width} (height x width): both must be positive integers")
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution={resolution!r}: choose one of {RESOLUTIONS}")
    if multiple < 1:
        raise ValueError(f"multiple={multiple}: pixels per token side must be positive")
    height, width = int(height), int(width)
    if resolution == "native":
        model_height, model_width = _round_up(height, multiple), _round_up(width, multiple)
        scaled_height, scaled_width = height, width
    else:
        area = RESOLUTION_AREAS[resolution]
        model_height = _round_nearest(math.sqrt(area * height / width), multiple)
        model_width = _round_nearest(math.sqrt(area * width / height), multiple)
        scale = min(model_height / height, model_width / width)
        scaled_height = min(model_height, max(1, round(height * scale)))
        scaled_width = min(model_width, max(1, round(width * scale)))
    pad_h, pad_w = model_height - scaled_height, model_width - scaled_width
    return Grid(
        height, width, model_height, model_width, scaled_height, scaled_width,
        pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2,
    )

