"""The Coarse2Real menu (main menu bar) and the Realify toolbar button.

Entries run Python strings, so a reload of this package (or a missing dependency) never
leaves a dangling callback in the editor.
"""

from __future__ import annotations

import unreal

OWNER = "Coarse2Real"
MENU_ENTRIES = (
    # (name, label, tooltip, python command)
    ("RealifySequence", "Realify Level Sequence", "Render the open (or selected) Level Sequence with Movie Render Queue and realify it",
     "import coarse2real_unreal.unreal_actions as a; a.realify_current_sequence()"),
    ("RealifyViewport", "Realify Viewport", "Capture the level viewport with a SceneCapture2D and realify it",
     "import coarse2real_unreal.unreal_actions as a; a.realify_viewport()"),
    ("Cancel", "Cancel Realify", "Cancel the running realify (render and daemon session)",
     "import coarse2real_unreal.unreal_actions as a; a.cancel()"),
    ("InstallDependencies", "Install Dependencies", "pip-install grpcio, protobuf, numpy, OpenEXR and the coarse2real client into this plugin",
     "import coarse2real_unreal.unreal_actions as a; a.install_dependencies()"),
)  # fmt: skip
TOOLBAR_MENU = "LevelEditor.LevelEditorToolBar.PlayToolBar"


def _entry(name: str, label: str, tooltip: str, command: str, kind):
    entry = unreal.ToolMenuEntry(name=f"{OWNER}.{name}", type=kind)
    entry.set_label(label)
    entry.set_tool_tip(tooltip)
    entry.set_string_command(unreal.ToolMenuStringCommandType.PYTHON, "", command)
    return entry


def register() -> None:
    menus = unreal.ToolMenus.get()
    main = menus.find_menu("LevelEditor.MainMenu")
    submenu = main.add_sub_menu(OWNER, "PythonTools", OWNER, "Coarse2Real", "Realify sequences and the viewport with the coarse2real daemon")
    for name, label, tooltip, command in MENU_ENTRIES:
        submenu.add_menu_entry("Realify", _entry(name, label, tooltip, command, unreal.MultiBlockType.MENU_ENTRY))
    toolbar = menus.extend_menu(TOOLBAR_MENU)
    _, label, tooltip, command = MENU_ENTRIES[0]
    toolbar.add_menu_entry("Coarse2Real", _entry("RealifyButton", "Realify", tooltip, command, unreal.MultiBlockType.TOOL_BAR_BUTTON))
    menus.refresh_all_widgets()
