"""The daemon from the preferences: create its environment, start, stop, and its status.

Everything slow (pip, starting a daemon, GetInfo) runs on a thread; a ``bpy.app.timers``
callback redraws the preferences until it is over, so the interface never waits on it.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field

import bpy

from . import daemon_env, messages, preferences
from .session_worker import SHARED_CLIENT, describe_info

POLL_SECONDS = 0.25


@dataclass
class DaemonStatus:
    text: str = "not checked yet"
    running: bool = False
    started_by_blender: bool = False
    models: list[str] = field(default_factory=list)
    busy: str = ""  # what is being done right now ("checking", "starting"), "" when nothing


STATUS = DaemonStatus()
BUILD: daemon_env.EnvironmentBuilder | None = None


def _redraw_preferences() -> None:
    window_manager = bpy.context.window_manager
    for window in window_manager.windows if window_manager else ():
        for area in window.screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()


def _watch(is_over) -> None:
    """Redraw the preferences every POLL_SECONDS until ``is_over()``."""

    def poll():
        _redraw_preferences()
        return None if is_over() else POLL_SECONDS

    bpy.app.timers.register(poll, first_interval=POLL_SECONDS)


# ---------------------------------------------------------------- status, start, stop


def query(start: bool, context=None) -> threading.Thread:
    """GetInfo on a thread (starting a local daemon first when ``start``); fills STATUS."""
    from .job import connect_settings

    settings = connect_settings(preferences.get(context))
    settings.start_daemon = start
    STATUS.busy = "starting the daemon" if start else "checking"

    def run():
        try:
            with SHARED_CLIENT(settings) as client:
                info = client.info()
                daemon = getattr(client, "daemon", None)
            STATUS.text = f"running at {settings.address}: {describe_info(info)}"
            STATUS.running, STATUS.models = True, sorted(info.models)
            STATUS.started_by_blender = daemon is not None
        except Exception as error:  # shown in the preferences, in words
            STATUS.text, STATUS.running, STATUS.started_by_blender = messages.describe(error, settings), False, False
        finally:
            STATUS.busy = ""

    thread = threading.Thread(target=run, name="c2r-daemon-status", daemon=True)
    thread.start()
    _watch(lambda: not thread.is_alive())
    return thread


def stop() -> str:
    if not STATUS.started_by_blender:
        return "This daemon was not started by Blender: stop it where it runs"
    SHARED_CLIENT.close()
    STATUS.text, STATUS.running, STATUS.started_by_blender = "stopped", False, False
    return "Daemon stopped"


# ---------------------------------------------------------------- the managed environment


def shut_down() -> None:
    """On unregister: stop an environment build that is still going."""
    if BUILD is not None and BUILD.status.state == "running":
        BUILD.cancel()
        BUILD.join(30.0)


def start_build(pip_options: tuple[str, ...] = (), package: str = daemon_env.PACKAGE) -> daemon_env.EnvironmentBuilder:
    """Create the managed environment with Blender's own Python as the base (it has venv and ensurepip)."""
    global BUILD
    if BUILD is not None and BUILD.status.state == "running":
        raise daemon_env.DaemonSetupError("the daemon environment is being created already")
    env_dir = preferences.managed_env_dir()
    steps = daemon_env.install_steps(env_dir, sys.executable, daemon_env.has_nvidia_gpu(), package, pip_options)
    builder = daemon_env.EnvironmentBuilder(env_dir, steps, env_dir.parent / "daemon-env.log")
    builder.start()
    BUILD = builder
    _watch(lambda: builder.status.state != "running")
    return builder


class COARSE2REAL_OT_create_daemon_env(bpy.types.Operator):
    """Create a Python environment for the daemon in Blender's user folder: PyTorch (CUDA build on NVIDIA GPUs) and coarse2real[daemon], downloaded once (about 3 GB)"""

    bl_idname = "coarse2real.create_daemon_env"
    bl_label = "Create Daemon Environment"

    @classmethod
    def poll(cls, context):
        return BUILD is None or BUILD.status.state != "running"

    def execute(self, context):
        try:
            start_build()
        except daemon_env.DaemonSetupError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        return {"FINISHED"}


class COARSE2REAL_OT_cancel_daemon_env(bpy.types.Operator):
    """Stop creating the daemon environment (the half-made one is removed)"""

    bl_idname = "coarse2real.cancel_daemon_env"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return BUILD is not None and BUILD.status.state == "running"

    def execute(self, context):
        BUILD.cancel()
        return {"FINISHED"}


class COARSE2REAL_OT_daemon_status(bpy.types.Operator):
    """Ask the daemon what it runs on: GPU, free memory, loaded model, version, models"""

    bl_idname = "coarse2real.daemon_status"
    bl_label = "Check Daemon"

    def execute(self, context):
        query(start=False, context=context)
        return {"FINISHED"}


class COARSE2REAL_OT_start_daemon(bpy.types.Operator):
    """Start the daemon on this machine (it stays up, model loaded, until Blender quits)"""

    bl_idname = "coarse2real.start_daemon"
    bl_label = "Start Daemon"

    def execute(self, context):
        query(start=True, context=context)
        return {"FINISHED"}


class COARSE2REAL_OT_stop_daemon(bpy.types.Operator):
    """Stop the daemon Blender started"""

    bl_idname = "coarse2real.stop_daemon"
    bl_label = "Stop Daemon"

    def execute(self, context):
        self.report({"INFO"}, stop())
        return {"FINISHED"}


CLASSES = (
    COARSE2REAL_OT_create_daemon_env,
    COARSE2REAL_OT_cancel_daemon_env,
    COARSE2REAL_OT_daemon_status,
    COARSE2REAL_OT_start_daemon,
    COARSE2REAL_OT_stop_daemon,
)
