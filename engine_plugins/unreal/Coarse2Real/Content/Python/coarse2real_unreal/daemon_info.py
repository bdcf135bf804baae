"""What the settings panel says about the daemon: its GetInfo reply in words, and the plan command.

Plain Python (runs on a background thread and in tests); ``fetch`` is the only part that talks
to the daemon, through the client's ``connect`` (which checks the protocol version).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .settings import RealifySettings

GIB = 1024**3


@dataclass
class DaemonReport:
    text: str  # for the panel: the daemon and what it serves, or why it could not be asked
    models: list[str] = field(default_factory=list)
    qualities: list[str] = field(default_factory=list)
    reachable: bool = False


def describe(info) -> DaemonReport:
    """A ``c2r.v1.InfoReply`` as the panel shows it."""
    gpus = ", ".join(f"{g.name} ({g.free_bytes / GIB:.0f} of {g.total_bytes / GIB:.0f} GiB free)" for g in info.gpus) or "none (CPU)"
    lines = [
        f"coarse2real daemon {info.daemon_version}, protocol {info.protocol_major}.{info.protocol_minor}, device {info.device or '?'}",
        f"GPUs: {gpus}",
        f"models: {', '.join(info.models) or '(none listed)'}; loaded now: {info.loaded_model or 'none yet'}",
        f"quality presets: {', '.join(info.qualities) or '(none listed)'}",
        *(f"warning: {w}" for w in info.warnings),
    ]
    return DaemonReport("\n".join(lines), list(info.models), list(info.qualities), True)


def fetch(settings: RealifySettings) -> DaemonReport:
    """Ask the daemon at ``settings.address``; any failure becomes the report's text (what to do included)."""
    from c2r.client import connect

    try:
        with connect(settings.address, token=settings.token, start_daemon=False) as client:
            return describe(client.info())
    except Exception as error:  # noqa: BLE001 - shown in the panel: no daemon, bad token, version mismatch
        return DaemonReport(f"could not ask the daemon at {settings.address}: {error}")


def plan_command(settings: RealifySettings) -> str:
    """The ``c2r plan`` command line that answers "does this fit on the daemon's GPU, and how fast" for these settings."""
    parts = ["c2r", "plan", "--quality", settings.quality or "preview"]
    if settings.model:
        parts += ["--model", settings.model]
    if settings.window:
        parts += ["--window", str(settings.window)]
    if settings.render_size:
        parts += ["--size", f"{settings.render_size[0]}x{settings.render_size[1]}"]
    if settings.model_resolution:
        parts += ["--resolution", settings.model_resolution]
    return " ".join(parts)
