"""What the settings panel says about the daemon: its GetInfo reply in words, and its Plan answer.

Plain Python (runs on a background thread and in tests); ``fetch`` is the only part that talks
to the daemon, through the client's ``connect`` (which checks the protocol version), ``info()``
and ``plan()`` (the Plan RPC, protocol 1.1: "does this fit on your GPU, and how long will it take").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .settings import RealifySettings

GIB = 1024**3
PLAN_SINCE_MINOR = 1  # the protocol minor that added the Plan RPC
# What MRQ renders when the job sets no resolution: UMoviePipelineOutputSetting's constructor,
# ``OutputResolution(FIntPoint(1920, 1080))`` (Engine/Plugins/MovieScene/MovieRenderPipeline/Source/
# MovieRenderPipelineCore/Private/MoviePipelineOutputSetting.cpp, UE 4.26-5.7).
MRQ_DEFAULT_SIZE = (1920, 1080)


@dataclass
class PlanSubject:
    """What a render would send: its name, frame size and length (0 frames: one window)."""

    name: str
    width: int
    height: int
    frames: int

    def __str__(self) -> str:
        length = f"{self.frames} frame{'' if self.frames == 1 else 's'}" if self.frames else "one window"
        return f"{self.name} ({length} at {self.width}x{self.height})"


def plan_subject(settings: RealifySettings, sequence_name: str | None, frames: int) -> PlanSubject:
    """The open sequence at the size MRQ will render it (the settings' size, else MRQ's default)."""
    width, height = settings.render_size or MRQ_DEFAULT_SIZE
    if sequence_name is None:
        return PlanSubject("no Level Sequence open", width, height, 0)
    return PlanSubject(sequence_name, width, height, max(frames, 0))


@dataclass
class DaemonReport:
    text: str  # for the panel: the daemon and what it serves, or why it could not be asked
    models: list[str] = field(default_factory=list)
    qualities: list[str] = field(default_factory=list)
    reachable: bool = False
    plan: str = ""  # for the panel: the daemon's Plan answer for these settings, or why there is none
    fits: bool | None = None  # the Plan answer's verdict; None: no answer
    advice: str = ""  # the Plan answer's "what to lower", set when it does not fit on a GPU (empty on a CPU-only daemon)


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


def describe_plan(reply, subject: PlanSubject) -> str:
    """A ``c2r.v1.PlanReply`` as the panel shows it: the daemon's sentence, and what to lower when it does not fit."""
    lines = [f"For {subject}: {reply.summary}"]
    if not reply.fits and reply.advice:
        lines.append(reply.advice)
    return "\n".join(lines)


def ask_plan(client, info, settings: RealifySettings, subject: PlanSubject) -> tuple[str, bool | None, str]:
    """(text, fits, advice) of the daemon's Plan answer for ``subject``; a daemon that cannot plan, or refuses, in words."""
    if info.protocol_minor < PLAN_SINCE_MINOR:
        return (f"the daemon speaks protocol {info.protocol_major}.{info.protocol_minor}, which cannot plan: "
                "update coarse2real where it runs to see here whether these settings fit its GPU"), None, ""  # fmt: skip
    try:
        reply = client.plan(subject.width, subject.height, subject.frames, **settings.session_options())
    except Exception as error:  # noqa: BLE001 - e.g. a model it does not serve: said in words
        return f"the daemon could not plan {subject}: {error}", None, ""
    return describe_plan(reply, subject), reply.fits, reply.advice


def fetch(settings: RealifySettings, subject: PlanSubject) -> DaemonReport:
    """Ask the daemon at ``settings.address`` what it serves and whether ``subject`` fits; failures become text."""
    from c2r.client import connect

    try:
        with connect(settings.address, token=settings.token, start_daemon=False) as client:
            info = client.info()
            report = describe(info)
            report.plan, report.fits, report.advice = ask_plan(client, info, settings, subject)
            return report
    except Exception as error:  # noqa: BLE001 - shown in the panel: no daemon, bad token, version mismatch
        message = f"could not ask the daemon at {settings.address}: {error}"
        return DaemonReport(message, plan="no plan: the daemon did not answer (see Daemon)")
