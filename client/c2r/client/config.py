"""Python arguments -> SessionConfig / InfoRequest, shared by sessions, jobs and the CLI.

Options left as None stay unset on the wire, so the daemon applies its quality preset and
defaults (and reports the effective values in SessionStarted).
"""

from __future__ import annotations

from typing import Iterable

from .version import __version__
from c2r.v1 import coarse2real_pb2 as pb

from .errors import InvalidInput

CLIENT_NAME = f"c2r-python-client {__version__}"
PROTOCOL_MAJOR = pb.PROTOCOL_MAJOR
PROTOCOL_MINOR = pb.PROTOCOL_MINOR
BUFFERS = {"color": pb.COLOR, "depth": pb.DEPTH, "normals": pb.NORMALS, "edges": pb.EDGES}


def info_request(client_name: str = CLIENT_NAME) -> pb.InfoRequest:
    return pb.InfoRequest(protocol_major=PROTOCOL_MAJOR, protocol_minor=PROTOCOL_MINOR, client_name=client_name)


def session_config(
    prompt: str = "",
    model: str = "",
    quality: str = "final",
    seed: int | None = None,
    strength: float | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    window: int | None = None,
    overlap: int | None = None,
    buffers: Iterable[str] = ("color", "depth"),
    negative_prompt: str = "",
    resolution: str = "",
    preview_every: int = 0,
    lora: str = "",
    client_name: str = CLIENT_NAME,
) -> pb.SessionConfig:
    buffers = tuple(buffers)
    unknown = [b for b in buffers if b not in BUFFERS]
    if unknown or "color" not in buffers:
        raise InvalidInput(f"buffers={buffers}: include 'color' and choose the rest from {sorted(BUFFERS)}")
    config = pb.SessionConfig(
        protocol_major=PROTOCOL_MAJOR,
        protocol_minor=PROTOCOL_MINOR,
        client_name=client_name,
        prompt=prompt,
        negative_prompt=negative_prompt,
        model=model or "",
        quality=quality or "",
        buffers=[BUFFERS[b] for b in buffers],
        result_encoding=pb.RAW_RGB8,
        resolution=resolution or "",
        preview_every=preview_every,
        lora=lora or "",
    )
    for name, value in (("seed", seed), ("strength", strength), ("steps", steps), ("guidance", guidance), ("window", window), ("overlap", overlap)):
        if value is None:
            continue
        try:
            setattr(config, name, value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{name}={value!r} cannot be sent: use a non-negative number") from None
    return config
