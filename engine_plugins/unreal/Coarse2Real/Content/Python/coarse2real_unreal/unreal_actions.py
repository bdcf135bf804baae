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

    return open_settings_panel(settings_path(), current_sequence())


def install_dependencies() -> None:
    """pip runs on a background thread (it downloads); the tick reports the outcome in a dialog."""
    from .background import Background
    from . import unreal_ticker

    python = unreal.get_interpreter_executable_path()
    installing = Background(lambda: dependencies.install(python, PLUGIN_DIR), "c2r-unreal-pip")
    unreal.log("Coarse2Real: installing grpcio, protobuf, numpy, OpenEXR and the coarse2real client (pip, in the background)")

    def step(_delta_seconds: float) -> bool:
        if not installing.done():
            return True
        try:
            target = installing.result()
        except RuntimeError as error:  # pip's own failure, with the command to run by hand
            unreal_realify.report(str(error))
            return False
        missing = dependencies.missing_modules()
        if missing:
            unreal_realify.report(dependencies.missing_message(missing))
        else:
            message = f"Dependencies installed in {target}. Restart the editor if an import still fails."
            unreal.log(f"Coarse2Real: {message}")
            unreal.EditorDialog.show_message("Coarse2Real", message, unreal.AppMsgType.OK)
        return False

    unreal_ticker.every_tick(step, lambda error: unreal_realify.report(f"the installer failed: {error!r}"))
