"""Add-on preferences: where the daemon is, how to start one, the default preset."""

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from .properties import PRESETS

DEFAULT_ADDRESS = "127.0.0.1:50051"


class C2RPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    address: StringProperty(
        name="Daemon Address", description="HOST:PORT of the coarse2real daemon", default=DEFAULT_ADDRESS
    )
    token: StringProperty(
        name="Token", description="The daemon's --token, needed when it listens beyond this machine", subtype="PASSWORD", default=""
    )
    start_daemon: BoolProperty(
        name="Start a local daemon",
        description="If no daemon answers at a local address, start `c2r serve` there (the panel says so)",
        default=True,
    )
    daemon_python: StringProperty(
        name="Daemon Python",
        description="Python executable with coarse2real[daemon] installed, used to start the local daemon; empty = Blender's Python",
        subtype="FILE_PATH",
        default="",
    )
    default_preset: EnumProperty(name="Default Preset", items=PRESETS, default="final")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "address")
        layout.prop(self, "token")
        row = layout.row()
        row.prop(self, "start_daemon")
        sub = row.row()
        sub.enabled = self.start_daemon
        sub.prop(self, "daemon_python", text="Python")
        layout.prop(self, "default_preset")


def get(context=None) -> C2RPreferences:
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences
