"""Python arguments -> SessionConfig / InfoRequest, shared by sessions, jobs and the CLI.

The session knobs are read from the wire contract itself: a SessionConfig field carrying
the `knob` option (coarse2real.proto) is a keyword of ``session_config`` and of
``Client.realify``, and a `c2r realify` / `c2r jobs submit` option (``cli_options``). A
knob left as None stays unset on the wire, so the daemon applies its quality preset and
defaults (and reports the effective values in SessionStarted).
"""

from __future__ import annotations

from typing import Iterable

from google.protobuf.descriptor import FieldDescriptor

from c2r.v1 import coarse2real_pb2 as pb

from .errors import InvalidInput
from .version import __version__

CLIENT_NAME = f"c2r-python-client {__version__}"
PROTOCOL_MAJOR = pb.PROTOCOL_MAJOR
PROTOCOL_MINOR = pb.PROTOCOL_MINOR
BUFFERS = {"color": pb.COLOR, "depth": pb.DEPTH, "normals": pb.NORMALS, "edges": pb.EDGES}

SESSION_FIELDS = pb.SessionConfig.DESCRIPTOR.fields_by_name
# name -> field descriptor of every session knob, in the .proto's order
KNOBS: dict[str, FieldDescriptor] = {
    f.name: f for f in pb.SessionConfig.DESCRIPTOR.fields if f.GetOptions().Extensions[pb.knob]
}


def knob_help(field: FieldDescriptor) -> str:
    return field.GetOptions().Extensions[pb.knob]


def is_set(config: pb.SessionConfig, name: str) -> bool:
    """Whether the client chose a value: presence for `optional` fields, non-empty/non-zero for the rest."""
    field = SESSION_FIELDS[name]
    return config.HasField(name) if field.has_presence else getattr(config, name) != field.default_value


def info_request(client_name: str = CLIENT_NAME) -> pb.InfoRequest:
    return pb.InfoRequest(protocol_major=PROTOCOL_MAJOR, protocol_minor=PROTOCOL_MINOR, client_name=client_name)


def session_config(buffers: Iterable[str] = ("color", "depth"), client_name: str = CLIENT_NAME, **knobs) -> pb.SessionConfig:
    """A SessionConfig for ``buffers`` with the given knobs (any name in ``KNOBS``: prompt, model,
    quality, steps, seed, lora, ...; None leaves one to the daemon)."""
    buffers = tuple(buffers)
    unknown = [b for b in buffers if b not in BUFFERS]
    if unknown or "color" not in buffers:
        raise InvalidInput(f"buffers={buffers}: include 'color' and choose the rest from {sorted(BUFFERS)}")
    config = pb.SessionConfig(
        protocol_major=PROTOCOL_MAJOR,
        protocol_minor=PROTOCOL_MINOR,
        client_name=client_name,
        buffers=[BUFFERS[b] for b in buffers],
        result_encoding=pb.RAW_RGB8,
    )
    for name, value in knobs.items():
        if name not in KNOBS:
            raise InvalidInput(f"{name}={value!r} is not a session setting; use one of {sorted(KNOBS)}")
        if value is None:
            continue
        try:
            setattr(config, name, value)
        except (TypeError, ValueError):
            kind = "text" if KNOBS[name].type == FieldDescriptor.TYPE_STRING else "a non-negative number"
            raise InvalidInput(f"{name}={value!r} cannot be sent: use {kind}") from None
    return config


def plan_request(width: int, height: int, frames: int = 0, buffers: Iterable[str] = ("color", "depth"),
                 client_name: str = CLIENT_NAME, **knobs) -> pb.PlanRequest:
    """A PlanRequest: the engine's frame size, the sequence length (0: one window) and the session's knobs."""
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or value < 1:
            raise InvalidInput(f"plan: {name}={value!r}: give the engine's frame {name} in pixels (a positive whole number)")
    if not isinstance(frames, int) or frames < 0:
        raise InvalidInput(f"plan: frames={frames!r}: give the sequence's frame count, or 0 for one window")
    return pb.PlanRequest(config=session_config(buffers, client_name, **knobs), width=width, height=height, frames=frames)
