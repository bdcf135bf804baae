"""What the user chose for a realify run; plain data so it is the same in and out of the engine."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class RealifySettings:
    """The daemon is never started from the editor: Unreal's ``sys.executable`` is the editor
    itself, not a Python that could run ``c2r serve``; start the daemon yourself."""

    address: str = "127.0.0.1:50051"
    token: str | None = None
    prompt: str = ""
    model: str = ""  # empty: the daemon's default
    quality: str = "preview"
    seed: int | None = None
    window: int | None = None
    model_resolution: str = ""  # "480p", "720p", "native"; empty: from the quality preset
    buffers: tuple[str, ...] = ("color", "depth", "normals")
    output_root: str = os.path.join(os.path.expanduser("~"), "coarse2real-output", "unreal")
    render_size: tuple[int, int] | None = None  # MRQ output (width, height); None keeps the job's default

    def folders(self, name: str) -> tuple[str, str]:
        """(coarse frames folder, realified frames folder) for one sequence or capture."""
        base = os.path.join(self.output_root, name)
        return os.path.join(base, "coarse"), os.path.join(base, "realified")

    def session_options(self) -> dict:
        return {
            "prompt": self.prompt, "model": self.model, "quality": self.quality, "seed": self.seed, "window": self.window,
            "buffers": self.buffers, "resolution": self.model_resolution,
        }  # fmt: skip
