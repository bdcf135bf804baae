"""Buttons: Realify frame range, Realify viewport, Cancel.

Invoked from the UI, a run operator stays modal only to catch ESC; the work itself happens
in ``bpy.app.timers`` ticks (see job.py). Run from a script or in background mode
(``execute``), it starts the run and returns; whoever drives the event loop (or calls
``job.ACTIVE.tick()``) moves it on.
"""

from __future__ import annotations

import bpy

from . import job, messages


class _StartRun:
    """Shared by the two run operators: build the job, start it, report failures in words."""

    job_class: type

    @classmethod
    def poll(cls, context):
        return job.ACTIVE is None

    def _start(self, context) -> bool:
        report = job.status(context)
        try:
            run = self.job_class(context)
            run.start()
        except Exception as error:
            text = messages.describe(error) if not isinstance(error, (ValueError, RuntimeError)) else str(error)
            report.state, report.is_error, report.message = "IDLE", True, text
            self.report({"ERROR"}, text)
            return False
        bpy.app.timers.register(run.timer, first_interval=0.0)
        return True

    def execute(self, context):
        return {"FINISHED"} if self._start(context) else {"CANCELLED"}

    def invoke(self, context, event):
        if not self._start(context):
            return {"CANCELLED"}
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        run = job.ACTIVE
        if run is None:
            return {"FINISHED"}
        if event.type == "ESC" and event.value == "PRESS":
            run.cancel()
            return {"FINISHED"}
        return {"PASS_THROUGH"}


class COARSE2REAL_OT_realify_range(_StartRun, bpy.types.Operator):
    """Render the frame range with Z and Normal passes and realify it on the daemon (ESC cancels)"""

    bl_idname = "coarse2real.realify_range"
    bl_label = "Realify Frame Range"
    job_class = job.RealifyRangeJob


class COARSE2REAL_OT_realify_viewport(_StartRun, bpy.types.Operator):
    """Realify a quick low-resolution capture of the current 3D view (ESC cancels)"""

    bl_idname = "coarse2real.realify_viewport"
    bl_label = "Realify Viewport"
    job_class = job.RealifyViewportJob


class COARSE2REAL_OT_cancel(bpy.types.Operator):
    """Stop the running realify: rendering stops and the daemon drops the session"""

    bl_idname = "coarse2real.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return job.ACTIVE is not None

    def execute(self, context):
        job.ACTIVE.cancel()
        return {"FINISHED"}


CLASSES = (COARSE2REAL_OT_realify_range, COARSE2REAL_OT_realify_viewport, COARSE2REAL_OT_cancel)
