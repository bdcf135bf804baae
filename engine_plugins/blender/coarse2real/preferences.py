"""Add-on preferences: where the daemon is, which Python runs it, its status, the default preset."""

from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from . import daemon_env
from .properties import PRESETS

DEFAULT_ADDRESS = "127.0.0.1:50051"


def managed_env_dir() -> Path:
    """The daemon environment the add-on creates, in the extension's user folder.

    Blender API, bpy.utils.extension_path_user: a per-extension folder in the user's
    extensions directory that is kept when the extension is updated.
    """
    return Path(bpy.utils.extension_path_user(__package__, path="", create=True)) / daemon_env.ENV_FOLDER


class C2RPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    address: StringProperty(
        name="Daemon Address", description="Host and port of the coarse2real daemon", default=DEFAULT_ADDRESS
    )
    token: StringProperty(
        name="Token", description="The daemon's token, needed when it listens beyond this machine", subtype="PASSWORD", default=""
    )
    start_daemon: BoolProperty(
        name="Start a local daemon",
        description="If no daemon answers at a local address, Blender starts one there (the panel says so)",
        default=True,
    )
    daemon_python: StringProperty(
        name="Daemon Python",
        description="A Python where coarse2real[daemon] is installed; empty = the environment created below",
        subtype="FILE_PATH",
        default="",
    )
    default_preset: EnumProperty(name="Default Preset", items=PRESETS, default="final")

    def draw(self, context):
        from . import daemon_control

        layout = self.layout
        layout.prop(self, "address")
        layout.prop(self, "token")
        layout.prop(self, "default_preset")
        layout.prop(self, "start_daemon")

        box = layout.box()
        box.label(text="Daemon Python", icon="SCRIPT")
        box.prop(self, "daemon_python", text="Existing Install")
        env = managed_env_dir()
        build = daemon_control.BUILD
        if build is not None and build.status.state == "running":
            state = build.status
            box.progress(factor=(state.step - 1) / max(state.steps, 1), text=f"Step {state.step} of {state.steps}: {state.label}")
            if state.last_line:
                box.label(text=state.last_line)
            box.operator("coarse2real.cancel_daemon_env", icon="CANCEL")
        else:
            if build is not None and build.status.message:
                box.label(text=build.status.message, icon="CHECKMARK" if build.status.state == "done" else "ERROR")
            if daemon_env.env_python(env).is_file():
                box.label(text=f"Managed environment: {env}", icon="CHECKMARK")
            else:
                box.operator("coarse2real.create_daemon_env", icon="IMPORT")
        if build is not None:
            box.label(text=f"Log: {build.log_path}")

        box = layout.box()
        status = daemon_control.STATUS
        box.label(text=f"Daemon: {status.busy + ' ...' if status.busy else status.text}", icon="LINKED" if status.running else "UNLINKED")
        if status.models:
            box.label(text=f"Models: {', '.join(status.models)}")
        row = box.row(align=True)
        row.operator("coarse2real.daemon_status", icon="FILE_REFRESH")
        row.operator("coarse2real.start_daemon", icon="PLAY")
        row.operator("coarse2real.stop_daemon", icon="PAUSE")


def get(context=None) -> C2RPreferences:
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences
