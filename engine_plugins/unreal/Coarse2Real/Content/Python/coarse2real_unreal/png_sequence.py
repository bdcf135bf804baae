"""Where result frames go: a PNG sequence Unreal's Img Media reads directly.

The frames are encoded by the client's PNG writer (``c2r.client.png``), atomically.
"""

from __future__ import annotations

import os


def result_path(folder: str, stem: str, frame: int, digits: int = 4) -> str:
    """``<folder>/<stem>.<frame>.png``, numbered like the coarse frames it replaces."""
    return os.path.join(folder, f"{stem}.{frame:0{digits}d}.png")
