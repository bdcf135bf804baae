"""Coarse2Real > Settings...: a details panel for the prompt, presets, model and daemon, with what the daemon serves
and whether the open sequence fits its GPU.

The panel is a Python-defined UObject (``unreal.uclass`` / ``uproperty`` / ``uenum``, PythonScriptPlugin,
UE 5.0-5.7: dev.epicgames.com/documentation/en-us/unreal-engine/python-api/module/unreal) shown with
``EditorDialog.show_object_details_view(title, object, options) -> bool`` (EditorScriptingUtilities,
EditorDialogLibrary.h: a modal details view, True on OK). The daemon is asked first, on a background
thread, and the panel opens once it answered or failed (the editor stays responsive meanwhile): its
version, GPUs, models and quality presets fill the read-only *Daemon* fields, and the model and
quality typed in are checked against them on OK. The same thread asks the daemon's Plan RPC about
the open Level Sequence (its frame count, at the size MRQ renders) with the saved settings; the
answer's summary, and its advice when it does not fit, fill *Plan*. A modal panel cannot re-plan
while it is open, so when OK changes what the plan depends on, the daemon is asked again in the
background and a "does not fit, lower this" answer comes up in a dialog, before any render (a daemon
without a GPU says so in the panel, with nothing to lower: that answer only goes to the Output Log). Settings are saved
per project, readable by this user only (the file holds the token).
"""

from __future__ import annotations

import unreal

from . import settings as settings_module
from . import unreal_ticker
from .background import Background
from .daemon_info import DaemonReport, PlanSubject, fetch, plan_subject
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
    plan = unreal.uproperty(str, meta={"Category": "Daemon", "MultiLine": "true",
                                       "ToolTip": "The daemon's answer for the open sequence with the saved settings: does it fit its GPU, how long (read only)"})


def panel_from(current: settings_module.RealifySettings, daemon: DaemonReport):
    panel = unreal.new_object(Coarse2RealSettingsPanel)
    values = {
        "prompt": current.prompt, "quality": current.quality, "model": current.model,
        "seed": -1 if current.seed is None else current.seed, "window": current.window or 0,
        "daemon_address": current.address, "token": current.token or "", "daemon": daemon.text, "plan": daemon.plan,
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


PLAN_INPUTS = ("address", "token", "model", "quality", "window", "model_resolution", "render_size")


def edit(path: str, current: settings_module.RealifySettings, daemon: DaemonReport,
         subject: PlanSubject | None = None) -> settings_module.RealifySettings | None:
    """Show the panel (modal); the saved settings on OK, None on Cancel or when they are refused.

    With ``subject`` (what the plan shown was for), an OK that changes what the plan depends on asks again.
    """  # fmt: skip
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
    if subject is not None and any(getattr(chosen, n) != getattr(current, n) for n in PLAN_INPUTS):
        replan(chosen, subject)
    return chosen


def replan(chosen: settings_module.RealifySettings, subject: PlanSubject) -> None:
    """Ask the daemon about the new settings in the background; "does not fit, lower this" is a dialog, the rest the log."""
    asking = Background(lambda: fetch(chosen, subject), "c2r-unreal-plan")

    def step(_delta_seconds: float) -> bool:
        if not asking.done():
            return True
        answer = asking.result()
        if answer.fits is False and answer.advice:
            report(f"With the settings just saved:\n{answer.plan}")
        else:
            unreal.log(f"Coarse2Real: with the settings just saved: {answer.plan}")
        return False

    unreal_ticker.every_tick(step, lambda error: report(f"asking the daemon for a plan failed: {error!r}"))


def open_settings_panel(path: str, sequence=None) -> None:
    """Ask the daemon in the background (what it serves, and its plan for ``sequence``), then open the panel from the tick."""
    try:
        current = settings_module.load(path)
    except ValueError as error:
        report(str(error))
        return
    if sequence is None:
        subject = plan_subject(current, None, 0)
    else:  # read here, on the game thread: the background thread never touches ``unreal``
        subject = plan_subject(current, sequence.get_name(), sequence.get_playback_end() - sequence.get_playback_start())
    asking = Background(lambda: fetch(current, subject), "c2r-unreal-info")

    def step(_delta_seconds: float) -> bool:
        if not asking.done():
            return True
        edit(path, current, asking.result(), subject)
        return False

    unreal_ticker.every_tick(step, lambda error: report(f"the settings panel failed: {error!r}"))
