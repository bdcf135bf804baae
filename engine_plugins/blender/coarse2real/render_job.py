"""Blender's own render, one frame at a time, with every frame's passes handed on as it is written.

Facts this rests on (Blender 4.5 source, source/blender/editors/render/render_internal.cc, and
bpy 4.5.15 as seen in tests):

- ``bpy.ops.render.render('INVOKE_DEFAULT')`` in the interface starts Blender's render job
  (``screen_render_invoke``: ``WM_jobs_start``, then a modal handler that swallows ESC): the
  interface stays live, the render window shows progress, and ESC stops it. The render runs on
  the job's thread; ``render_pre`` and ``render_post`` fire there, ``render_complete`` or
  ``render_cancel`` when the job ends.
- Without a window event (background mode: ``blender -b``, bpy as a module) the window manager
  calls the operator's ``exec`` instead (``wm_operator_invoke`` falls back to exec when there
  is no event), which renders before it returns, with the handlers on the main thread. So
  background mode asks for ``EXEC_DEFAULT`` outright, and goes through the same handlers.
- The render job's stop flag cannot be set from Python (ESC sets ``G.is_break``; the job is
  killed only by Blender itself). So a run renders one frame per render call, started from the
  run's ``bpy.app.timers`` tick: pressing Cancel renders no further frame; ESC stops the frame
  being rendered, at once.

Handlers may run on the render job's thread, where bpy data must not be touched
(bpy.app.handlers, "Note on Altering Data"): they only put what happened on a queue, and
``step`` (main thread) does the rest. The scene is rendered through a context override,
not the operator's ``scene=`` argument, which would copy the window scene's current frame
into it (``screen_render_single_layer_set``).
"""

from __future__ import annotations

import queue
from typing import Callable

import bpy

from .passes import CapturedFrame, PassCapture

HANDLERS = ("render_post", "render_complete", "render_cancel")


class FrameRender:
    """Render ``frames`` of ``scene`` through ``capture``, one per call; ``on_frame`` gets each, in order."""

    def __init__(self, scene: bpy.types.Scene, capture: PassCapture, frames: list[int],
                 on_frame: Callable[[CapturedFrame], None], window=None):  # fmt: skip
        self.scene = scene
        self.capture = capture
        self.todo = list(frames)
        self.on_frame = on_frame
        self.window = window  # None in background mode: render with EXEC_DEFAULT
        self.rendering: int | None = None  # the frame whose render call has not ended yet
        self.finished: list[int] = []  # frames rendered (render_post), not read yet
        self.outcome = ""  # "", then "complete", "cancelled" (ESC) or "stopped" (Cancel)
        self._pointer = scene.as_pointer()
        self._events: queue.SimpleQueue = queue.SimpleQueue()  # ("post" | "complete" | "cancel", frame)
        self._handlers = {name: getattr(self, f"_{name}") for name in HANDLERS}
        for name, handler in self._handlers.items():
            getattr(bpy.app.handlers, name).append(handler)

    @property
    def busy(self) -> bool:
        """A render call is going (in the interface: Blender's render job has not ended yet)."""
        return self.rendering is not None

    def step(self) -> None:
        """Main thread, once per tick: read what finished, then start the next frame's render.

        A frame's passes are read once its render call has ended (``render_complete``), so bpy
        data is not touched while Blender's render job still runs.
        """
        self._take_events()
        if self.busy:
            return
        self._read_finished()
        if self.outcome:
            return
        if not self.todo:
            self.outcome = "complete"
            return
        self._render(self.todo[0])
        self._take_events()  # background mode: the frame is rendered by now
        if not self.busy:
            self._read_finished()

    def stop(self) -> None:
        """Render no further frame (Cancel); a frame being rendered in the interface runs to its end."""
        self.todo.clear()
        if not self.outcome:
            self.outcome = "stopped"

    def close(self) -> None:
        for name, handler in self._handlers.items():
            handlers = getattr(bpy.app.handlers, name)
            if handler in handlers:
                handlers.remove(handler)

    def _render(self, frame: int) -> None:
        self.scene.frame_current = frame
        self.rendering = frame
        try:
            if self.window is None:
                with bpy.context.temp_override(scene=self.scene):
                    result = bpy.ops.render.render("EXEC_DEFAULT")
            else:
                with bpy.context.temp_override(window=self.window, scene=self.scene):
                    result = bpy.ops.render.render("INVOKE_DEFAULT")
        except RuntimeError as error:  # e.g. "Operator bpy.ops.render.render.poll() failed"
            self.rendering = None
            raise RuntimeError(f"Blender could not render frame {frame}: {error}") from None
        if "CANCELLED" in result and self._events.empty():
            self.rendering = None
            raise RuntimeError(
                f"Blender did not render frame {frame}: another render may be running (wait for it or press ESC), "
                "or the scene cannot be rendered (Render Properties)"
            )

    def _take_events(self) -> None:
        while True:
            try:
                kind, frame = self._events.get_nowait()
            except queue.Empty:
                return
            if kind == "post":
                self.finished.append(frame)
            elif kind == "cancel":
                self.rendering, self.todo = None, []
                self.outcome = "cancelled"
            elif kind == "complete":
                self.rendering = None

    def _read_finished(self) -> None:
        while self.finished:
            frame = self.finished.pop(0)
            if frame in self.todo:  # (not after Cancel or ESC: nothing more is sent)
                self.todo.remove(frame)
                self.on_frame(self.capture.read(frame))

    # ---------------------------------------------------------------- handlers (possibly the render job's thread)

    def _mine(self, scene) -> bool:
        return self.rendering is not None and scene is not None and scene.as_pointer() == self._pointer

    def _render_post(self, scene, *_):
        if self._mine(scene):
            self._events.put(("post", self.rendering))

    def _render_complete(self, scene, *_):
        if self._mine(scene):
            self._events.put(("complete", self.rendering))

    def _render_cancel(self, scene, *_):
        if self._mine(scene):
            self._events.put(("cancel", self.rendering))
