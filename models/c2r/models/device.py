"""Device names and dtypes, resolved in one place for the backends and the engine."""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> str:
    """The one device-name resolution: "auto" is the first GPU when torch sees one, else the CPU."""
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    return device
