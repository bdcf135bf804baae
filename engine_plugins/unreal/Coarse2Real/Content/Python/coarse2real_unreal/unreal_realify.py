"""Realify a Level Sequence or the viewport without ever blocking the editor.

A run is a small state machine stepped from Slate's post-tick (``unreal_ticker``):

1. *connecting*: ``connect()``, the daemon's Plan answer for this run (logged, a warning when it does
   not fit) and the session's start run on a background thread (a daemon that is slow or absent costs
   the editor nothing); the tick polls for them;
2. *streaming*: the producer starts on the game thread (MRQ through the editor's queue, or the
   viewport capture one frame per tick) while ``RealifyStream``'s threads send finished frames and
   write results; each tick updates the progress label on the Realify toolbar button and the live
   preview;
3. *finished*: the results open as Img Media sequences in Media Players next to the source; the
   session and client close on a background thread.

Errors reach the user in a dialog as well as the Output Log. **Coarse2Real > Cancel Realify**
(or the toolbar button while it shows progress) cancels the render and the session at any time;
frames already returned stay on disk. One run at a time.
"""

from __future__ import annotations

import os

import unreal

from . import __version__, dependencies, unreal_menus, unreal_ticker
from .background import Background
from .daemon_info import PlanSubject, ask_plan, plan_subject
from .mrq_files import OutputFolderWatcher, remove_frames
from .settings import RealifySettings

_active: "RealifyRun | None" = None


def require_dependencies() -> bool:
    missing = dependencies.missing_modules()
    if missing:
        report(dependencies.missing_message(missing))
        return False
    return True


def report(message: str) -> None:
    """An error the user must see: the Output Log and a dialog."""
    unreal.log_error(f"Coarse2Real: {message}")
    unreal.EditorDialog.show_message("Coarse2Real", message, unreal.AppMsgType.OK)


def client_name() -> str:
    return f"unreal-{unreal.SystemLibrary.get_engine_version().split('-')[0]} coarse2real-plugin {__version__}"


class RealifyRun:
    """What every run shares; subclasses say how frames are produced and what is reviewed."""

    passes: tuple[str, ...] = ("",)

    def __init__(self, name: str, settings: RealifySettings, first_frame: int, fps: float):
        self.name = name
        self.settings = settings
        self.first_frame = first_frame
        self.fps = fps
        self.coarse_dir, self.results_dir = settings.folders(name)
        self.preview_file = os.path.join(os.path.dirname(self.results_dir), "live_preview.png")
        self.state = "connecting"
        self.cancelled = False
        self.client = self.session = self.stream = self.preview = None
        self._connecting: Background | None = None
        self._shown_image = 0
        self._label = ""

    # ---------------------------------------------------------------- producer hooks

    def produce_start(self) -> None:
        raise NotImplementedError

    def produce_tick(self) -> None:
        """Game-thread work for this tick (the viewport captures a frame here)."""

    def produce_cancel(self) -> None:
        raise NotImplementedError

    def review_folders(self) -> dict[str, str]:
        return {"Realified": self.results_dir}

    def plan_subject(self) -> PlanSubject:
        """What this run will send, for the daemon's Plan (read on the game thread)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- the state machine

    def start(self) -> None:
        for folder in (self.coarse_dir, self.results_dir):  # stale frames would be streamed as new ones
            remove_frames(folder, self.name)
        settings, name, subject = self.settings, client_name(), self.plan_subject()  # read here, on the game thread
        self._connecting = Background(lambda: open_session(settings, name, subject), "c2r-unreal-connect")
        unreal.log(f"Coarse2Real: {self.name}: connecting to the daemon at {settings.address}")
        unreal_ticker.every_tick(self.tick, self._crashed)

    def tick(self, _delta_seconds: float) -> bool:
        """One step; False once the run is over (the ticker then unregisters it)."""
        if self.state == "connecting":
            return self._tick_connecting()
        self.produce_tick()
        self._show_progress()
        if not self.stream.wait(0):
            return True
        self._finish()
        return False

    def _tick_connecting(self) -> bool:
        if not self._connecting.done():
            return True
        try:
            self.client, self.session, (plan, fits, advice) = self._connecting.result()
        except Exception as error:  # noqa: BLE001 - no daemon, bad token, version mismatch: all said in the message
            self._end(f"{self.name}: {error}")
            return False
        if fits is False and advice:
            unreal.log_warning(f"Coarse2Real: {plan}")  # the run goes ahead: the plan is an estimate, the daemon decides
        else:
            unreal.log(f"Coarse2Real: {plan}")
        if self.cancelled:
            self._end(None)
            return False
        from .realify_stream import RealifyStream
        from .unreal_preview import LivePreview

        watcher = OutputFolderWatcher(self.coarse_dir, self.name, self.first_frame, self.passes)
        self.stream = RealifyStream(self.session, watcher, self.results_dir, self.name, preview_path=self.preview_file).start()
        self.preview = LivePreview(unreal.get_editor_subsystem(unreal.UnrealEditorSubsystem).get_editor_world())
        try:
            self.produce_start()
        except Exception as error:  # noqa: BLE001 - MRQ busy, no map...: stop the session, say why
            self.stream.cancel()
            self.stream.wait()
            self._end(f"{self.name}: {error}")
            return False
        self.state = "streaming"
        return True

    def _show_progress(self) -> None:
        status = self.stream.status
        label = f"{self.name}: {status.frames_sent} sent, {status.frames_returned} realified"
        if label != self._label:
            self._label = label
            unreal_menus.show_progress(label)
        latest = status.latest_image
        if latest is not None and latest[0] != self._shown_image:
            self._shown_image = latest[0]
            self.preview.show(latest[1], latest[2], latest[3])

    def _finish(self) -> None:
        status = self.stream.status
        problem = None if status.error is None else f"{self.name}: {status.error}"
        if problem is None and not status.cancelled:
            from .unreal_review import review_side_by_side

            review_side_by_side(self.name, self.review_folders(), self.fps)
        unreal.log(f"Coarse2Real: {self.name}: {status.summary()}; results in {self.results_dir}")
        self._end(problem)

    def _crashed(self, error: BaseException) -> None:
        if self.state == "streaming":
            try:
                self.produce_cancel()  # a render or capture must not outlive its run
            finally:
                self.stream.cancel()
        self._end(f"{self.name} stopped on an internal error: {error!r}; the Output Log has the details")

    def _end(self, problem: str | None) -> None:
        global _active
        if problem is not None:
            report(problem)
        unreal_menus.show_progress(None)
        parts = [p for p in (self.session, self.client) if p is not None]
        Background(lambda: [p.close() for p in parts], "c2r-unreal-close")  # closing may wait for the daemon
        _active = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.state == "streaming":
            self.produce_cancel()
            self.stream.cancel()


def open_session(settings: RealifySettings, name: str, subject: PlanSubject):
    """(client, session, (plan text, fits, advice)) once the daemon accepted the session; runs on a background thread."""
    from c2r.client import connect

    client = connect(settings.address, token=settings.token, start_daemon=False)
    try:
        plan = ask_plan(client, client.daemon_info, settings, subject)
        return client, client.realify(client_name=name, **settings.session_options()), plan
    except BaseException:
        client.close()
        raise


class SequenceRealify(RealifyRun):
    """MRQ renders the sequence (one multilayer EXR per frame) while the frames stream."""

    def __init__(self, sequence, settings: RealifySettings):
        from .unreal_capture import display_fps

        super().__init__(sequence.get_name(), settings, sequence.get_playback_start(), display_fps(sequence))
        self.sequence = sequence
        self.render = None

    def produce_start(self) -> None:
        from .unreal_materials import ensure_pass_materials
        from .unreal_mrq import QueueRender

        world = unreal.get_editor_subsystem(unreal.UnrealEditorSubsystem).get_editor_world()
        self.render = QueueRender(self.sequence, world.get_path_name(), self.coarse_dir, ensure_pass_materials(),
                                  self.settings.render_size, self.on_render_finished)  # fmt: skip
        unreal.log(f"Coarse2Real: rendering {self.name} to {self.coarse_dir}, streaming to {self.settings.address}")

    def on_render_finished(self, success: bool) -> None:
        if success:
            self.stream.rendering_finished()
        else:
            unreal.log_warning(f"Coarse2Real: the render of {self.name} failed or was cancelled; cancelling the session")
            self.stream.cancel()

    def produce_cancel(self) -> None:
        self.render.cancel()

    def review_folders(self) -> dict[str, str]:
        return {"Coarse": self.coarse_dir, "Realified": self.results_dir}

    def plan_subject(self) -> PlanSubject:
        return plan_subject(self.settings, self.name, self.sequence.get_playback_end() - self.sequence.get_playback_start())


class ViewportRealify(RealifyRun):
    """A SceneCapture2D captures the viewport, one frame per tick, through the open sequence's range."""

    def __init__(self, settings: RealifySettings, size: tuple[int, int]):
        from .unreal_capture import CAPTURE_PASSES, sequencer_frames

        frames, self.step, fps = sequencer_frames()
        super().__init__("Viewport", settings, frames[0], fps)
        self.passes = CAPTURE_PASSES
        self.frames = frames
        self.size = size
        self.capture = None

    def produce_start(self) -> None:
        from .unreal_capture import capture_frames
        from .unreal_materials import ensure_pass_materials

        self.capture = capture_frames(self.coarse_dir, self.name, self.frames, self.size, ensure_pass_materials(), self.step)

    def produce_tick(self) -> None:
        if self.capture is not None and next(self.capture, None) is None:
            self.capture = None  # the generator ran out: every frame is on disk
            self.stream.rendering_finished()

    def produce_cancel(self) -> None:
        if self.capture is not None:
            self.capture.close()  # destroys the capture actor
            self.capture = None

    def plan_subject(self) -> PlanSubject:
        return PlanSubject(self.name, self.size[0], self.size[1], len(self.frames))


def start(run: RealifyRun) -> RealifyRun | None:
    """Start ``run`` unless another is running or the dependencies are missing."""
    global _active
    if _active is not None:
        unreal.log_warning(f"Coarse2Real: {_active.name} is still realifying; cancel it first (Coarse2Real > Cancel Realify)")
        return None
    if not require_dependencies():
        return None
    _active = run
    try:
        run.start()
    except Exception:
        _active = None  # e.g. an output folder it cannot clear: nothing is running, the next press may try again
        raise
    return run


def cancel_active() -> None:
    if _active is None:
        unreal.log("Coarse2Real: nothing is realifying")
        return
    _active.cancel()
