"""What the panel edits (saved with the scene) and what a run reports (not saved).

The run's status lives on the WindowManager, which is never written to the .blend, so a file
saved mid-run does not reopen looking busy.
"""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

PRESETS = [
    ("preview", "Preview", "Few denoising steps at 480p with progressive previews: a quick look"),
    ("final", "Final", "Full denoising at 720p: the result to keep"),
]


# Starting points for the prompt; choosing one fills the Prompt field, which stays editable.
PROMPT_PRESETS = {
    "street": ("Street", "a city street filmed on a real camera, asphalt, concrete and glass, parked cars, natural daylight, photorealistic video"),
    "interior": ("Interior", "a real room filmed on a real camera, wood, fabric and plaster, soft window light, photorealistic video"),
    "forest": ("Forest", "a real forest filmed on a real camera, bark, moss and leaves, dappled sunlight, photorealistic video"),
    "crowd": ("Crowd", "real people walking, natural faces and clothing, candid street footage, photorealistic video"),
    "product": ("Product", "a real product on a studio table, accurate materials, softbox lighting, photorealistic video"),
}


def _apply_prompt_preset(settings, context) -> None:
    if settings.prompt_preset in PROMPT_PRESETS:
        settings.prompt = PROMPT_PRESETS[settings.prompt_preset][1]


def _daemon_models(settings, context, edit_text):
    """The models the daemon reported (Preferences > Check Daemon), for the Model field's search list."""
    from .daemon_control import STATUS

    return [name for name in STATUS.models if edit_text.lower() in name.lower()]


class C2RSceneSettings(bpy.types.PropertyGroup):
    """Saved with the .blend: each scene keeps its own prompt and settings."""

    prompt_preset: EnumProperty(
        name="Look",
        description="A starting prompt for the kind of shot; the Prompt stays editable",
        items=[("CUSTOM", "Custom", "Write the prompt yourself")]
        + [(key, label, text) for key, (label, text) in PROMPT_PRESETS.items()],
        default="CUSTOM",
        update=_apply_prompt_preset,
    )
    prompt: StringProperty(
        name="Prompt",
        description="What the realistic version should look like",
        default="photorealistic video, natural lighting, real materials",
    )
    negative_prompt: StringProperty(name="Negative", description="What to steer away from", default="cartoon, CG render, plastic")
    preset: EnumProperty(
        name="Preset", items=[("DEFAULT", "Default", "The default preset set in the add-on preferences")] + PRESETS, default="DEFAULT"
    )
    seed: IntProperty(name="Seed", description="Same seed, same result", default=0, min=0)
    model: StringProperty(
        name="Model", description="Model name on the daemon (the list comes from Check Daemon in the preferences); empty = the daemon's default",
        default="", search=_daemon_models,
    )  # fmt: skip
    strength: FloatProperty(
        name="Strength", description="1 = from noise (strongest change); lower keeps more of the render",
        default=1.0, min=0.05, max=1.0,
    )  # fmt: skip
    resolution: EnumProperty(
        name="Resolution",
        items=[
            ("DEFAULT", "From Preset", "480p for Preview, 720p for Final"),
            ("480p", "480p", "Model grid about 480 lines, aspect kept"),
            ("720p", "720p", "Model grid about 720 lines, aspect kept"),
            ("native", "Render Size", "The render resolution, only padded to the model grid"),
        ],
        default="DEFAULT",
    )
    window: IntProperty(
        name="Window", description="Frames per model window (4k+1, e.g. 17, 33, 81); 0 = the daemon's default. "
        "Shorter windows return the first frames sooner", default=0, min=0,
    )  # fmt: skip
    overlap: IntProperty(
        name="Overlap", description="Frames shared by consecutive windows (0 or 4j+1); used with Window", default=1, min=0
    )
    send_normals: BoolProperty(name="Send Normals", description="Send the Normal pass as well as Z", default=True)
    write_movie: BoolProperty(name="Write Movie", description="Also write an mp4 (needs PyAV in Blender's Python)", default=False)
    write_layers: BoolProperty(
        name="Write Multilayer EXR",
        description="Also write realified/layers/####.exr for compositors: the render passes (Combined, Depth, Normal) with the realified frame as a pass beside them",
        default=False,
    )


STATES = [
    ("IDLE", "Idle", ""),
    ("RUNNING", "Running", ""),
    ("CANCELLING", "Cancelling", ""),
]


class C2RStatus(bpy.types.PropertyGroup):
    state: EnumProperty(items=STATES, default="IDLE")
    message: StringProperty(default="")
    connection: StringProperty(default="")  # which daemon the last run used, and whether Blender started it
    plan: StringProperty(default="")  # the daemon's plan for the last run (c2r plan): fits or not, about how long
    is_error: BoolProperty(default=False)
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    frames_rendered: IntProperty(default=0)
    frames_returned: IntProperty(default=0)
    frames_total: IntProperty(default=0)


CLASSES = (C2RSceneSettings, C2RStatus)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.coarse2real = bpy.props.PointerProperty(type=C2RSceneSettings)
    bpy.types.WindowManager.coarse2real_status = bpy.props.PointerProperty(type=C2RStatus)


def unregister() -> None:
    del bpy.types.WindowManager.coarse2real_status
    del bpy.types.Scene.coarse2real
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
