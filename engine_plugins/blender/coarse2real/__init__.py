"""coarse2real for Blender: realify the frame range or the viewport through the local daemon.

A thin layer over ``c2r.client``: capture (passes.py, render_job.py, viewport.py), a worker
thread for the network (session_worker.py), a timer-driven run (job.py), the daemon's Python
and status (daemon_env.py, daemon_control.py) and the UI (panel, operators, preferences).
Installed as an extension, the client and its native wheels come with it.
"""

from __future__ import annotations

import bpy

from . import daemon_control, job, operators, panel, preferences, properties

CLASSES = (preferences.C2RPreferences, *operators.CLASSES, *daemon_control.CLASSES, *panel.CLASSES)


def register() -> None:
    properties.register()
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    job.shut_down()
    daemon_control.shut_down()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
    properties.unregister()
