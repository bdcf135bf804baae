"""Typed messages between the front end and an engine process: one dataclass per kind.

Requests go front end -> engine on one PUSH/PULL pair; the engine reads them on an input
thread into a queue (see ``engine``), so a ``CancelWindow`` or ``Stop`` that arrives while a
window runs is seen by the running window's step callback and never lost. Events go engine
-> front end on another pair and carry the engine's pid, so the front end can drop what a
replaced engine still says. They cross the socket with ``ipc.pack``/``ipc.unpack``.

numpy and the model layer's plain types only: both the front end (no torch) and the engine import this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from c2r.models.backend import WindowRequest


def preview_share(step: int, num_steps: int, every: int) -> slice:
    """Which of a window's emitted frames the estimate at ``step`` shows: a window's estimates take turns (every E-th
    frame, E the estimates a window makes), so all its previews together cost what its results cost. The engine
    sends only this share to the front end; the session maps it back to frame indices."""
    estimates = max(1, (num_steps - 1) // every) if num_steps > 0 and every > 0 else 1
    return slice((max(step // max(every, 1), 1) - 1) % estimates, None, estimates)

# ------------------------------------------------------------------ requests (front end -> engine)


@dataclass
class RunWindow:
    id: int  # unique per engine client; the events of this window carry it
    session: str  # the owner (session or job id), for logs and the preview topic
    model: str
    lora: str  # a path on the daemon's disk, or "" for none
    request: WindowRequest


@dataclass
class CancelWindow:
    id: int


@dataclass
class Stop:
    """Finish (or cancel) the running window, then exit."""


Request = RunWindow | CancelWindow | Stop

# ------------------------------------------------------------------ events (engine -> front end)


@dataclass
class Heartbeat:
    pid: int


@dataclass
class Hello:
    """The default model is loaded: the engine takes windows."""

    pid: int
    device: str
    models: list[str]
    loaded_model: str


@dataclass
class Loaded:
    pid: int
    model: str


@dataclass
class Fatal:
    """The engine cannot start (no device, weights missing); it exits after this."""

    pid: int
    message: str


@dataclass
class WindowEvent:
    pid: int
    id: int
    kind: str  # "window_started" | "step" | "preview" (ProgressEvent kinds; the engine sends its own window_started)
    step: int = 0
    num_steps: int = 0
    # "preview" only: (N, H, W, 3) uint8, the estimate's share of the window's emitted frames (``preview_share``), not all T
    preview: np.ndarray | None = field(default=None, repr=False)


@dataclass
class WindowResult:
    pid: int
    id: int
    frames: np.ndarray = field(repr=False)  # (T, H, W, 3) uint8, prefix frames included
    seconds: float = 0.0
    peak_bytes: int = 0


# WindowError.code -> how the front end reports it (see engine_client.ERROR_CODES)
ERROR_KINDS = ("invalid", "oom", "cancelled", "missing", "unavailable", "internal")


@dataclass
class WindowError:
    pid: int
    id: int
    code: str  # one of ERROR_KINDS
    message: str


Event = Heartbeat | Hello | Loaded | Fatal | WindowEvent | WindowResult | WindowError
