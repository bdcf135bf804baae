"""Coarse2Real > Settings...: a details panel for the prompt, presets, model and daemon, with what the daemon serves.

The panel is a Python-defined UObject (``unreal.uclass`` / ``uproperty`` / ``uenum``, PythonScriptPlugin,
UE 5.0-5.7: dev.epicgames.com/documentation/en-us/unreal-engine/python-api/module/unreal) shown with
``EditorDialog.show_object_details_view(title, object, options) -> bool`` (EditorScriptingUtilities,
EditorDialogLibrary.h: a modal details view, True on OK). The daemon is asked first, on a background
thread, and the panel opens once it answered or failed (the editor stays responsive meanwhile): its
version, GPUs, models and quality presets fill the read-only *Daemon* fields, and the model and
quality typed in are checked against them on OK. Settings are saved per project, readable by this
user only (the file holds the token).
"""

from __future__ import annotations

import unreal

from . import settings as settings_module
from . import unreal_ticker
from .background import Background
from .daemon_info import DaemonReport, fetch, plan_command
from .unreal_realify import report

PRESET_NAMES = list(settings_module.PROMPT_PRESETS)


@unreal.uenum()
class Coarse2RealPromptPreset(unreal.EnumBase):
    CUSTOM = unreal.uvalue(0, meta={"DisplayName": PRESET_NAMES[0]})
    OVERCAST_STREET = unreal.uvalue(1, meta={"DisplayName": PRESET_NAMES[1]})
    GOLDEN_HOUR = unreal.uvalue(2, meta={"DisplayName": PRESET_NAMES[2]})
    NIGHT_CITY = unreal.uvalue(3, meta={"DisplayName": PRESET_NAMES[3]})
    INTERIOR_DAYLIGHT = unreal.uvalue(4, meta={"DisplayName": PRESET_NAMES[4]})


@unreal.uclass()
class Coarse2RealSettingsPanel(unreal.Object):
    prompt_preset = unreal.uproperty(Coarse2RealPromptPreset, meta={"Category": "Prompt", "ToolTip": "Fills an empty prompt"})
    prompt = unreal.uproperty(str, meta={"Category": "Prompt", "MultiLine": "true"})
    quality = unreal.uproperty(str, meta={"Category": "Model", "ToolTip": "A quality preset the daemon lists (see Daemon)"})
    model = unreal.uproperty(str, meta={"Category": "Model", "ToolTip": "Empty: the daemon's default"})
    seed = unreal.uproperty(int, meta={"Category": "Model", "ToolTip": "-1: a new seed each run"})
    window = unreal.uproperty(int, meta={"Category": "Model", "ToolTip": "Frames per window (4k+1); 0: the preset's"})
    daemon_address = unreal.uproperty(str, meta={"Category": "Daemon"})
    token = unreal.uproperty(str, meta={"Category": "Daemon", "PasswordField": "true", "ToolTip": "Needed for a daemon on another machine"})
    daemon = unreal.uproperty(str, meta={"Category": "Daemon", "MultiLine": "true", "ToolTip": "What the daemon said (read only)"})
    plan = unreal.uproperty(str, meta={"Category": "Daemon", "ToolTip": "Run this where the daemon runs: memory and time for these settings"})


def panel_from(current: settings_module.RealifySettings, daemon: DaemonReport):
    panel = unreal.new_object(Coarse2RealSettingsPanel)
    values = {
        "prompt": current.prompt, "quality": current.quality, "model": current.model,
        "seed": -1 if current.seed is None else current.seed, "window": current.window or 0,
        "daemon_address": current.address, "token": current.token or "", "daemon": daemon.text, "plan": plan_command(current),
    }  # fmt: skip
    for name, value in values.items():
        panel.set_editor_property(name, value)
    return panel


def settings_from(panel, current: settings_module.RealifySettings) -> settings_module.RealifySettings:
    prompt = panel.get_editor_property("prompt").strip()
    preset = PRESET_NAMES[panel.get_editor_property("prompt_preset").value]
    seed, window = panel.get_editor_property("seed"), panel.get_editor_property("window")
    return settings_module.RealifySettings(
        address=panel.get_editor_property("daemon_address").strip(), token=panel.get_editor_property("token") or None,
        prompt=prompt or settings_module.PROMPT_PRESETS[preset], quality=panel.get_editor_property("quality").strip(),
        model=panel.get_editor_property("model").strip(), seed=None if seed < 0 else seed, window=window or None,
        model_resolution=current.model_resolution, buffers=current.buffers, output_root=current.output_root,
        render_size=current.render_size,
    )  # fmt: skip


def edit(path: str, current: settings_module.RealifySettings, daemon: DaemonReport) -> settings_module.RealifySettings | None:
    """Show the panel (modal); the saved settings on OK, None on Cancel or when they are refused."""
    panel = panel_from(current, daemon)
    options = unreal.EditorDialogLibraryObjectDetailsViewOptions(show_object_name=False, allow_search=False)
    if not unreal.EditorDialog.show_object_details_view("Coarse2Real settings", panel, options):
        return None
    chosen = settings_from(panel, current)
    problems = chosen.problems(daemon.models, daemon.qualities)
    if problems:
        report("Settings not saved:\n- " + "\n- ".join(problems))
        return None
    settings_module.save(chosen, path)
    unreal.log(f"Coarse2Real: settings saved to {path}")
    return chosen


def open_settings_panel(path: str) -> None:
    """Ask the daemon in the background, then open the panel from the editor's tick."""
    try:
        current = settings_module.load(path)
    except ValueError as error:
        report(str(error))
        return
    asking = Background(lambda: fetch(current), "c2r-unreal-info")

    def step(_delta_seconds: float) -> bool:
        if not asking.done():
            return True
        edit(path, current, asking.result())
        return False

    unreal_ticker.every_tick(step, lambda error: report(f"the settings panel failed: {error!r}"))
