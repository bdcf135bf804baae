"""A realify run as seen from Blender's main thread.

A run first connects (on the session worker's threads): the daemon must answer, accept the
token, plan the run (``c2r plan``'s answer, shown in the panel; a run that cannot fit stops
here) and accept the settings before anything is rendered. Then the range run renders its
frames through Blender's own render (render_job.py), each streamed to the daemon as Blender
writes it. ``tick`` is the ``bpy.app.timers`` callback (Blender API, bpy.app.timers: a
callback returns the seconds until its next call, or None to stop): it starts the next
frame's render job, reads the frames that finished, and applies what came back (live image,
status, progress). In the interface each tick does a few milliseconds of work, so the
interface stays live; in background mode a tick renders its frame before it returns. Only
one run exists at a time (``ACTIVE``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import bpy
import numpy as np

from . import messages, preferences, results, viewport
from .passes import CapturedFrame, PassCapture
from .render_job import FrameRender
from .session_worker import (
    Closed,
    Connected,
    ConnectSettings,
    Failed,
    FrameToSend,
    FrameWritten,
    Planned,
    PreviewArrived,
    ProgressChanged,
    SessionSettings,
    SessionWorker,
    SHARED_CLIENT,
)

ACTIVE: "RealifyJob | None" = None
TICK_SECONDS = 0.05


def connect_settings(prefs) -> ConnectSettings:
    python = bpy.path.abspath(prefs.daemon_python) if prefs.daemon_python else ""
    return ConnectSettings(prefs.address, prefs.token, prefs.start_daemon, python, preferences.managed_env_dir())


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
        run.release()
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
        self.connected = False
        self.began = False
        self.cancelled = False
        self.closed = False  # the worker's session is over
        self.done = False
        self.returned: list[int] = []  # session indices written, in order
        self.timer = self.tick  # one bound method, so the timer can be found again

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        global ACTIVE
        if ACTIVE is not None:
            raise RuntimeError("a realify run is already going: wait for it, or press Cancel (or ESC) first")
        ACTIVE = self
        report = status()
        report.state, report.is_error, report.progress = "RUNNING", False, 0.0
        report.frames_rendered = report.frames_returned = 0
        report.frames_total = self.total
        report.connection = report.plan = ""
        self._say(f"connecting to the daemon at {self.worker.connection.address} ...")
        self.worker.start()

    def tick(self) -> float | None:
        """One step of the run; returns the delay until the next one, None when the run is over."""
        self.apply_events()
        if self.done:
            return None
        if self.connected and not self.began and self.error is None and not self.cancelled:
            self.began = True
            self._guard(self.begin)
        if self.began:
            self._guard(self.produce)
        if self.closed and self.idle():
            self._finish()
            return None
        return TICK_SECONDS

    def _guard(self, step) -> None:
        try:
            step()
        except Exception as error:  # a failed render stops the run with its message
            self._fail(error)

    def apply_events(self) -> None:
        """Take in what the worker reported since the last call (results, progress, the end).

        Only the newest image reaches the live preview: frames that arrived together would
        each replace the one before within the same tick, at the cost of a full-image upload.
        """
        events = self.worker.poll()
        newest = max((i for i, e in enumerate(events) if isinstance(e, (FrameWritten, PreviewArrived))), default=None)
        for number, event in enumerate(events):
            self._apply(event, show=number == newest)

    def begin(self) -> None:
        """Start producing frames (the daemon has accepted the session)."""

    def produce(self) -> None:
        """Hand on what was produced since the last tick."""

    def idle(self) -> bool:
        """True once nothing of the run is still going in Blender (the worker has closed)."""
        return True

    def cancel(self) -> None:
        """Stop rendering and sending; the daemon drops the session's windows (Session.cancel). Files written stay."""
        if self.done or status().state == "CANCELLING":
            return
        self.cancelled = True
        self.worker.cancel()
        status().state = "CANCELLING"
        self._say("cancelling ...")

    def release(self) -> None:
        """Give back what the run borrowed from the scene."""

    # ---------------------------------------------------------------- events

    def _apply(self, event, show: bool = True) -> None:
        report = status()
        if isinstance(event, Planned):
            report.plan = event.summary
            self._say(event.summary)
        elif isinstance(event, Connected):
            self.connected = True
            report.connection = event.message
            self._say(event.message)
        elif isinstance(event, FrameWritten):
            self.returned.append(event.index)
            report.frames_returned = len(self.returned)
            report.progress = len(self.returned) / max(self.total, 1)
            self.written(event)
            if show:  # the ProgressChanged that follows every written frame refreshes the UI
                self.show(event.image)
        elif isinstance(event, PreviewArrived) and show:
            self.show(event.image)
        elif isinstance(event, ProgressChanged):
            self._say(event.text)
        elif isinstance(event, Failed):
            self._fail(event.error)
        elif isinstance(event, Closed):
            self.closed = True

    def show(self, image: np.ndarray) -> None:
        results.show_live(image)

    def written(self, event: FrameWritten) -> None:
        """A realified frame is on disk (main thread)."""

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
            self.worker.cancel()

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
            self._say(messages.describe(self.error, self.worker.connection))
        elif self.cancelled:
            self._say(f"Cancelled: {len(self.returned)} of {self.total} frames realified; every earlier result is kept")
        else:
            self._say(summary)
        _refresh_ui(None)
        self.done = True
        ACTIVE = None

    def finish(self) -> str:
        """Load the results for A/B; returns the summary line."""
        return f"{len(self.returned)} frames realified"

    def _say(self, text: str) -> None:
        status().message = text
        _refresh_ui(f"coarse2real: {text}")


class RealifyRangeJob(RealifyJob):
    """Render the scene's frame range with Blender's render, streaming every frame as it is written."""

    def __init__(self, context, connect=SHARED_CLIENT):
        scene = context.scene
        if scene.camera is None:
            raise ValueError("the scene has no active camera: add one or set Scene Properties > Camera")
        prefs = preferences.get(context)
        settings = scene.coarse2real
        self.frames = list(range(scene.frame_start, scene.frame_end + 1, scene.frame_step))
        self.folder = results.output_folder(scene)
        self.write_movie = settings.write_movie
        # The context's view layer belongs to the scene on screen, which need not be this one.
        layer = context.view_layer.name if context.view_layer else ""
        self.view_layer = scene.view_layers.get(layer) or scene.view_layers[0]
        # Where the render jobs show their progress; background mode renders without one (render_job.py).
        self.window = None if bpy.app.background else context.window
        buffers = ("color", "depth", "normals") if settings.send_normals else ("color", "depth")
        worker = SessionWorker(connect_settings(prefs), session_settings(scene, prefs, buffers), self.path_for_index,
                               len(self.frames), results.render_size(scene), connect)  # fmt: skip
        super().__init__(scene, worker, len(self.frames))
        self.send_normals = settings.send_normals
        self.write_layers = settings.write_layers
        self.layers: list[int] = []  # frames whose multilayer EXR is written
        self.layers_note = ""  # why no multilayer EXR could be written, if so
        self.spill: Path | None = None  # the render passes of frames sent, until their realified frame is back
        self.capture: PassCapture | None = None
        self.render: FrameRender | None = None
        self.sent: set[int] = set()
        self.movie: Path | None = None

    def path_for_index(self, index: int) -> Path:
        return results.frame_path(self.folder, self.frames[index])

    def begin(self) -> None:
        self.capture = PassCapture(self.scene, self.view_layer, keep_passes=self.write_layers)
        if self.write_layers:
            self.spill = Path(tempfile.mkdtemp(prefix="c2r-layers-"))
        self.render = FrameRender(self.scene, self.capture, self.frames, self.send, self.window)

    def send(self, captured: CapturedFrame) -> None:
        """One rendered frame to the daemon (called as Blender finishes each frame)."""
        if self.cancelled or self.error is not None:
            return
        index = self.frames.index(captured.frame)
        self.worker.submit(FrameToSend(
            index,
            captured.color,
            depth=captured.depth,
            normals=captured.normals.astype(np.float16) if self.send_normals else None,
        ))  # fmt: skip
        self.sent.add(index)
        if captured.passes is not None:
            np.savez(self.spill / f"{captured.frame}.npz", **captured.passes)
        status().frames_rendered = len(self.sent)
        if len(self.sent) == len(self.frames):
            self.worker.end()

    def produce(self) -> None:
        render = self.render
        if render is None:
            return
        if self.cancelled or self.error is not None or self.closed:
            render.stop()
        render.step()
        if render.outcome == "cancelled":  # ESC in Blender's render window
            self.cancel()

    def written(self, event: FrameWritten) -> None:
        """With Write Multilayer EXR: the frame's render passes and the realified frame, as one file."""
        if not self.write_layers or self.layers_note:
            return
        frame = self.frames[event.index]
        spilled = self.spill / f"{frame}.npz"
        try:
            with np.load(spilled) as passes:
                planes = dict(passes)
            results.write_layers(results.layers_path(self.folder, frame), self.view_layer.name, planes, event.image)
        except Exception as error:  # e.g. no OpenEXR in this Blender's Python: the PNG sequence is complete anyway
            self.layers_note = f"multilayer EXR stopped after {len(self.layers)} frames: {error}"
            return
        spilled.unlink()
        self.layers.append(frame)

    def idle(self) -> bool:
        return self.render is None or not self.render.busy

    def release(self) -> None:
        if self.render is not None:
            self.render.close()
        if self.capture is not None:
            self.capture.close()
            self.capture = None
        if self.spill is not None:
            shutil.rmtree(self.spill, ignore_errors=True)
            self.spill = None

    def finish(self) -> str:
        written = [self.frames[i] for i in self.returned]
        results.load_sequence(self.folder, written)
        notes = []
        if self.write_layers and written:
            notes.append(self.layers_note or f"multilayer EXR of {len(self.layers)} frames in {self.folder / results.LAYERS_SUBFOLDER}")
        if self.write_movie and written:
            self.movie, note = results.write_movie(self.folder, written, self.scene.render.fps / self.scene.render.fps_base)
            notes.append(note)
        results.add_ab_strips(self.scene, self.folder, written, self.movie)
        return "; ".join([f"{len(written)} frames realified into {self.folder}", *notes])


class RealifyViewportJob(RealifyJob):
    """One frame of the current 3D view, sent as a one-frame window for a quick look."""

    IMAGE = "coarse2real viewport"

    def __init__(self, context, connect=SHARED_CLIENT, capture: viewport.ViewCapture | None = None):
        self.capture = capture or viewport.capture_view(context)
        scene = context.scene
        prefs = preferences.get(context)
        self.path = results.output_folder(scene) / "viewport.png"
        buffers = ("color", "depth", "normals")
        height, width = self.capture.color.shape[:2]
        worker = SessionWorker(connect_settings(prefs), session_settings(scene, prefs, buffers, single_frame=True),
                               lambda index: self.path, 1, (width, height), connect)  # fmt: skip
        super().__init__(scene, worker, 1)

    def begin(self) -> None:
        self.worker.submit(FrameToSend(0, self.capture.color, self.capture.depth, self.capture.normals))
        self.worker.end()

    def show(self, image: np.ndarray) -> None:
        results.show_live(image, self.IMAGE)

    def finish(self) -> str:
        return f"viewport realified: image '{self.IMAGE}' (saved as {self.path})"
