"""Blender's own render job over the frame range, with every frame's passes handed on as it is written.

``bpy.ops.render.render('INVOKE_DEFAULT', animation=True)`` starts the same render job as
Ctrl+F12: the interface stays live, the render window shows progress, and ESC cancels it
(firing ``render_cancel``). Blender calls the render handlers in this order: ``render_pre``
and ``render_post`` around every frame, then ``render_complete`` or ``render_cancel`` once
(Blender API, bpy.app.handlers; the order seen with bpy 4.5, and described at
b3d.interplanety.org/en/render-event-order).
When ``render_post`` fires, the compositor's File Output node has written the frame's passes.

In the interface the render runs on a job thread, and the handlers run there too; bpy data
may only be touched from the main thread (bpy.app.handlers, "Note on Altering Data"), so a
handler only notes the frame and ``collect`` (called from the run's ``bpy.app.timers`` tick)
reads it. In background mode the same operator renders the whole range before it returns,
with the handlers on the main thread, so each frame is read (and streamed) inside its handler.
"""

from __future__ import annotations

import threading
from typing import Callable

import bpy

from .passes import CapturedFrame, PassCapture

HANDLERS = ("render_post", "render_complete", "render_cancel")


class AnimationRender:
    """One animation render of ``scene`` through ``capture``; ``on_frame`` gets each frame, in order."""

    def __init__(self, scene: bpy.types.Scene, capture: PassCapture, on_frame: Callable[[CapturedFrame], None],
                 on_cancel: Callable[[], None] = lambda: None):  # fmt: skip
        self.scene = scene
        self.capture = capture
        self.on_frame = on_frame
        self.on_cancel = on_cancel  # called in the render_cancel handler: must not touch bpy data
        self.pending: list[int] = []  # frames rendered, not read yet
        self.outcome = ""  # "", then "complete" or "cancelled"
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._handlers = {name: getattr(self, f"_{name}") for name in HANDLERS}

    def start(self, window=None) -> None:
        """Start the render job; ``window`` (None in background mode) is where its progress shows."""
        for name, handler in self._handlers.items():
            getattr(bpy.app.handlers, name).append(handler)
        try:
            # `scene=` renders the run's scene, whichever scene the window shows by then (Blender API,
            # bpy.ops.render.render: "Scene to render, current scene if not specified").
            if window is not None:
                with bpy.context.temp_override(window=window):
                    bpy.ops.render.render("INVOKE_DEFAULT", animation=True, scene=self.scene.name)
            else:
                bpy.ops.render.render("INVOKE_DEFAULT", animation=True, scene=self.scene.name)
        except BaseException:
            self.stop()
            raise

    def collect(self) -> None:
        """Read every frame rendered since the last call (main thread only)."""
        while True:
            with self._lock:
                if not self.pending:
                    return
                frame = self.pending.pop(0)
            self.on_frame(self.capture.read(frame))

    def stop(self) -> None:
        """Remove the handlers (the render may go on; frames it renders now are not read)."""
        for name, handler in self._handlers.items():
            handlers = getattr(bpy.app.handlers, name)
            if handler in handlers:
                handlers.remove(handler)

    # ---------------------------------------------------------------- handlers (possibly the render thread)

    def _mine(self, scene) -> bool:
        return scene is not None and scene.name == self.scene.name

    def _render_post(self, scene, *_):
        if not self._mine(scene):
            return
        with self._lock:
            self.pending.append(scene.frame_current)
        if threading.current_thread() is threading.main_thread():
            try:
                self.collect()
            except Exception as error:  # raised inside Blender's render loop it would only be printed
                self.error = self.error or error

    def _render_complete(self, scene, *_):
        if self._mine(scene):
            self.outcome = self.outcome or "complete"

    def _render_cancel(self, scene, *_):
        if self._mine(scene):
            self.outcome = self.outcome or "cancelled"
            self.on_cancel()
