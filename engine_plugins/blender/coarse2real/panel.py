"""The coarse2real panel (Properties > Render and the 3D View sidebar): settings, run buttons, progress, messages."""

from __future__ import annotations

import textwrap

import bpy

from . import job


class _RealifyPanel:
    """The same panel in two places: Properties > Render and the 3D View's sidebar (N)."""

    bl_label = "coarse2real"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.coarse2real
        report = job.status(context)
        layout.use_property_split = True
        layout.prop(settings, "prompt_preset")
        layout.prop(settings, "prompt")
        layout.prop(settings, "negative_prompt")
        layout.prop(settings, "preset")
        layout.prop(settings, "model")
        layout.prop(settings, "seed")
        layout.prop(settings, "strength", slider=True)
        layout.prop(settings, "resolution")
        row = layout.row(align=True)
        row.prop(settings, "window")
        sub = row.row(align=True)
        sub.enabled = settings.window > 0
        sub.prop(settings, "overlap")
        layout.prop(settings, "send_normals")
        layout.prop(settings, "write_movie")
        layout.prop(settings, "write_layers")
        row = layout.row(align=True)
        row.enabled = job.ACTIVE is None
        row.operator("coarse2real.realify_range", icon="RENDER_ANIMATION")
        row.operator("coarse2real.realify_viewport", icon="VIEW3D")
        if job.ACTIVE is not None:
            box = layout.box()
            box.progress(
                factor=report.progress,
                text=f"{report.frames_returned}/{report.frames_total} realified ({report.frames_rendered} rendered)",
            )
            box.operator("coarse2real.cancel", icon="CANCEL")
        if report.plan:
            draw_message(layout, report.plan, "TIME", context.region.width)
        if report.connection:
            draw_message(layout, report.connection, "LINKED", context.region.width)
        if report.message:
            draw_message(layout, report.message, "ERROR" if report.is_error else "INFO", context.region.width)


class COARSE2REAL_PT_render(_RealifyPanel, bpy.types.Panel):
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"


class COARSE2REAL_PT_sidebar(_RealifyPanel, bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "coarse2real"


CLASSES = (COARSE2REAL_PT_render, COARSE2REAL_PT_sidebar)


def draw_message(layout, text: str, icon: str, region_width: int) -> None:
    """Messages say what to do, so they are long: wrap them instead of letting the label cut them off."""
    column = layout.column(align=True)
    width = max(20, region_width // 7)  # about 7 px per character in the default UI font
    for number, line in enumerate(textwrap.wrap(text, width)):
        column.label(text=line, icon=icon if number == 0 else "BLANK1")
