"""Device names and dtypes, resolved in one place for the backends and the engine."""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> str:
    """The one device-name resolution: "auto" is the first GPU when torch sees one, else the CPU."""
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    return device


def check_load(dtype: str, offload: str) -> None:
    """The arguments every backend's ``load`` takes, refused with the choices when unknown."""
    from .levers import OFFLOADS

    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r}: choose one of {sorted(DTYPES)}")
    if offload not in OFFLOADS:
        raise ValueError(f"offload={offload!r}: choose one of {OFFLOADS}")
