"""What the menu entries do: find the input, check dependencies, start or cancel a run."""

from __future__ import annotations

import os

import unreal

from . import dependencies, unreal_realify

PLUGIN_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))


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
    return unreal_realify.realify_sequence(sequence)


def realify_viewport():
    return unreal_realify.realify_viewport()


def cancel():
    unreal_realify.cancel_active()


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
