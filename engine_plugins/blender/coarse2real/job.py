"""A realify run as seen from Blender's main thread.

``tick`` is the ``bpy.app.timers`` callback: it renders at most one frame, hands it to the
session worker (network on its own threads), and applies what came back (live image,
status, progress). Between ticks Blender handles events, so the UI stays responsive and ESC
reaches the operator. Only one run exists at a time (``ACTIVE``).
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from . import messages, preferences, results, viewport
from .passes import PassCapture
from .session_worker import (
    Closed,
    Connected,
    ConnectSettings,
    Failed,
    FrameToSend,
    FrameWritten,
    PreviewArrived,
    ProgressChanged,
    SessionSettings,
    SessionWorker,
    SHARED_CLIENT,
)

ACTIVE: "RealifyJob | None" = None
TICK_SECONDS = 0.05


def connect_settings(prefs) -> ConnectSettings:
    return ConnectSettings(prefs.address, prefs.token, prefs.start_daemon, bpy.path.abspath(prefs.daemon_python) if prefs.daemon_python else "")


def session_settings(scene: bpy.types.Scene, prefs, buffers: tuple[str, ...], single_frame: bool = False) -> SessionSettings:
    settings = scene.coarse2real
    window, overlap = (1, 0) if single_frame else (settings.window or None, settings.overlap if settings.window else None)
    return SessionSettings(
        prompt=settings.prompt,
        negative_prompt=settings.negative_prompt,
        model=settings.model,
        quality=prefs.default_preset if settings.preset == "DEFAULT" else settings.preset,
        seed=settings.seed,
        strength=settings.strength,
        window=window,
        overlap=overlap,
        resolution="" if settings.resolution == "DEFAULT" else settings.resolution,
        buffers=buffers,
    )


def shut_down() -> None:
    """On unregister: cancel any run (its status properties are going away) and let go of the daemon."""
    global ACTIVE
    run, ACTIVE = ACTIVE, None
    if run is not None:
        run.cancel()
        run.worker.join(10.0)
        if bpy.app.timers.is_registered(run.timer):
            bpy.app.timers.unregister(run.timer)
    SHARED_CLIENT.close()


def status(context=None):
    return (context or bpy.context).window_manager.coarse2real_status


def _refresh_ui(status_bar_text: str | None) -> None:
    """Status bar text in every window, and a redraw of the areas that show the panel.

    Timer callbacks run without a window in their context, and property changes made from
    Python do not redraw panels by themselves: both are done per window here. Background
    Blender has no windows, so this does nothing there.
    """
    window_manager = bpy.context.window_manager
    for window in window_manager.windows if window_manager else ():
        with bpy.context.temp_override(window=window):
            window.workspace.status_text_set(status_bar_text)
        for area in window.screen.areas:
            if area.type in ("PROPERTIES", "VIEW_3D"):
                area.tag_redraw()


class RealifyJob:
    """What every run shares: the worker, event handling, cancel and the end of a run."""

    def __init__(self, scene: bpy.types.Scene, worker: SessionWorker, total: int):
        self.scene = scene
        self.worker = worker
        self.total = total
        self.error: BaseException | None = None
        self.cancelled = False
        self.done = False
        self.returned: list[int] = []  # session indices written, in order
        self.timer = self.tick  # one bound method, so the timer can be found again

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        global ACTIVE
        if ACTIVE is not None:
            raise RuntimeError("a coarse2real run is already going: wait for it or press Cancel (ESC) first")
        ACTIVE = self
        report = status()
        report.state, report.is_error, report.progress = "RUNNING", False, 0.0
        report.frames_rendered = report.frames_returned = 0
        report.frames_total = self.total
        report.connection = ""
        self._say(f"connecting to {self.worker.connection.address} ...")
        self.worker.start()

    def tick(self) -> float | None:
        """One step of the run; returns the delay until the next one, None when the run is over."""
        self.apply_events()
        if self.done:
            return None
        if self.error is None and not self.cancelled:
            try:
                self.produce()
            except Exception as error:  # a failed render stops the run with its message
                self._fail(error)
        return TICK_SECONDS

    def apply_events(self) -> None:
        """Take in what the worker reported since the last call (results, progress, the end)."""
        for event in self.worker.poll():
            self._apply(event)

    def produce(self) -> None:
        """Render and submit the next frame(s), if any are left."""

    def cancel(self) -> None:
        """Stop rendering and sending; the daemon drops the session's windows (Session.cancel)."""
        if self.done or self.cancelled:
            return
        self.cancelled = True
        status().state = "CANCELLING"
        self._say("cancelling ...")
        self.worker.cancel()
        self.release()

    def release(self) -> None:
        """Give back what the run borrowed from the scene."""

    # ---------------------------------------------------------------- events

    def _apply(self, event) -> None:
        report = status()
        if isinstance(event, Connected):
            report.connection = event.message
            self._say(event.message)
        elif isinstance(event, FrameWritten):
            self.returned.append(event.index)
            report.frames_returned = len(self.returned)
            report.progress = len(self.returned) / max(self.total, 1)
            self.show(event.image)  # the ProgressChanged that follows every written frame refreshes the UI
        elif isinstance(event, PreviewArrived):
            self.show(event.image)
        elif isinstance(event, ProgressChanged):
            self._say(event.text)
        elif isinstance(event, Failed):
            self._fail(event.error)
        elif isinstance(event, Closed):
            self._finish()

    def show(self, image: np.ndarray) -> None:
        results.show_live(image)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
            self.worker.cancel()
            self.release()

    def _finish(self) -> None:
        global ACTIVE
        self.release()
        try:
            summary = self.finish()
        except Exception as error:  # loading the results failed; the run still ends, with the reason
            summary, self.error = "", self.error or error
        report = status()
        report.state = "IDLE"
        if self.error is not None:
            report.is_error = True
            self._say(messages.describe(self.error, self.worker.connection.address))
        elif self.cancelled:
            self._say(f"cancelled: {len(self.returned)} of {self.total} frames realified and kept")
        else:
            self._say(summary)
        _refresh_ui(None)
        self.done = True  # the next tick returns None, which ends the timer
        ACTIVE = None

    def finish(self) -> str:
        """Load the results for A/B; returns the summary line."""
        return f"{len(self.returned)} frames realified"

    def _say(self, text: str) -> None:
        status().message = text
        _refresh_ui(f"coarse2real: {text}")


class RealifyRangeJob(RealifyJob):
    """Render the scene's frame range with Z and Normal passes and stream every frame."""

    def __init__(self, context, connect=SHARED_CLIENT):
        scene = context.scene
        if scene.camera is None:
            raise ValueError("the scene has no active camera: add one or set Scene Properties > Camera")
        prefs = preferences.get(context)
        settings = scene.coarse2real
        self.frames = list(range(scene.frame_start, scene.frame_end + 1, scene.frame_step))
        self.folder = results.output_folder(scene)
        self.write_movie = settings.write_movie
        buffers = ("color", "depth", "normals") if settings.send_normals else ("color", "depth")
        worker = SessionWorker(connect_settings(prefs), session_settings(scene, prefs, buffers), self.path_for_index, connect)
        super().__init__(scene, worker, len(self.frames))
        self.send_normals = settings.send_normals
        self.capture: PassCapture | None = None
        self.next = 0
        self.movie: Path | None = None
        self.original_frame = scene.frame_current

    def path_for_index(self, index: int) -> Path:
        return results.frame_path(self.folder, self.frames[index])

    def start(self) -> None:
        self.capture = PassCapture(self.scene)
        try:
            super().start()
        except BaseException:
            self.release()
            raise

    def produce(self) -> None:
        if self.capture is None or self.next >= len(self.frames):
            return
        captured = self.capture.render(self.frames[self.next])
        self.worker.submit(FrameToSend(
            self.next,
            captured.color,
            depth=captured.depth,
            normals=captured.normals.astype(np.float16) if self.send_normals else None,
        ))  # fmt: skip
        self.next += 1
        status().frames_rendered = self.next
        if self.next == len(self.frames):
            self.worker.end()
            self.release()

    def release(self) -> None:
        if self.capture is not None:
            self.capture.close()
            self.capture = None
            self.scene.frame_set(self.original_frame)

    def finish(self) -> str:
        written = [self.frames[i] for i in self.returned]
        if written:  # earlier results for the rest of the range would read as part of this run
            results.remove_stale_frames(self.folder, [f for f in self.frames if f not in written])
        results.load_sequence(self.folder, written)
        note = ""
        if self.write_movie and written:
            self.movie, note = results.write_movie(self.folder, written, self.scene.render.fps / self.scene.render.fps_base)
            note = f"; {note}"
        results.add_ab_strips(self.scene, self.folder, written, self.movie)
        return f"{len(written)} frames realified into {self.folder}{note}"


class RealifyViewportJob(RealifyJob):
    """One frame of the current 3D view, sent as a one-frame window for a quick look."""

    IMAGE = "coarse2real viewport"

    def __init__(self, context, connect=SHARED_CLIENT, capture: viewport.ViewCapture | None = None):
        self.capture = capture or viewport.capture_view(context)
        scene = context.scene
        prefs = preferences.get(context)
        self.path = results.output_folder(scene) / "viewport.png"
        buffers = ("color", "depth", "normals")
        worker = SessionWorker(connect_settings(prefs), session_settings(scene, prefs, buffers, single_frame=True), lambda index: self.path, connect)
        super().__init__(scene, worker, 1)

    def start(self) -> None:
        super().start()
        self.worker.submit(FrameToSend(0, self.capture.color, self.capture.depth, self.capture.normals))
        self.worker.end()

    def show(self, image: np.ndarray) -> None:
        results.show_live(image, self.IMAGE)

    def finish(self) -> str:
        return f"viewport realified: image '{self.IMAGE}' (saved as {self.path})"
