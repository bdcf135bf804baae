"""What the menu entries do: find the input, check dependencies, start or cancel a run, edit settings."""

from __future__ import annotations

import os

import unreal

from . import dependencies, settings, unreal_realify

PLUGIN_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))
VIEWPORT_SIZE = (640, 360)


def settings_path() -> str:
    """``<Project>/Saved/Coarse2Real/settings.json`` (``Paths.project_saved_dir()``): per project, never versioned."""
    return os.path.join(unreal.Paths.project_saved_dir(), "Coarse2Real", "settings.json")


def current_settings() -> settings.RealifySettings | None:
    """The saved settings; None (and a dialog saying which file and what to do) when they cannot be read."""
    try:
        return settings.load(settings_path())
    except ValueError as error:
        unreal_realify.report(str(error))
        return None


def current_sequence():
    """The Level Sequence open in Sequencer, else the one selected in the Content Browser."""
    sequence = unreal.LevelSequenceEditorBlueprintLibrary.get_current_level_sequence()
    if sequence is not None:
        return sequence
    selected = [a for a in unreal.EditorUtilityLibrary.get_selected_assets() if isinstance(a, unreal.LevelSequence)]
    return selected[0] if selected else None


def realify_current_sequence():
    sequence = current_sequence()
    if sequence is None:
        message = "Open a Level Sequence in Sequencer (or select one in the Content Browser), then press Realify again."
        unreal.EditorDialog.show_message("Coarse2Real", message, unreal.AppMsgType.OK)
        return None
    chosen = current_settings()
    return None if chosen is None else unreal_realify.start(unreal_realify.SequenceRealify(sequence, chosen))


def realify_viewport():
    chosen = current_settings()
    return None if chosen is None else unreal_realify.start(unreal_realify.ViewportRealify(chosen, VIEWPORT_SIZE))


def cancel():
    unreal_realify.cancel_active()


def open_settings():
    from .unreal_settings_panel import open_settings_panel

    return open_settings_panel(settings_path())


def install_dependencies() -> str:
    with unreal.ScopedSlowTask(1, "Coarse2Real: installing grpcio, protobuf, numpy, OpenEXR and the client") as task:
        task.make_dialog(False)
        target = dependencies.install(unreal.get_interpreter_executable_path(), PLUGIN_DIR)
        task.enter_progress_frame(1)
    missing = dependencies.missing_modules()
    if missing:
        unreal.log_error(dependencies.missing_message(missing))
    else:
        unreal.log(f"Coarse2Real: dependencies installed in {target}")
    return target
