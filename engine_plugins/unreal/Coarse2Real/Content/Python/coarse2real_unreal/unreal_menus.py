"""The Coarse2Real menu (main menu bar) and the Realify toolbar button, which also shows progress.

Entries run Python strings, so a reload of this package (or a missing dependency) never leaves a
dangling callback in the editor. ``ToolMenu.add_menu_entry`` with an entry name already in the
section replaces that entry (Engine/Source/Developer/ToolMenus/Private/ToolMenuSection.cpp,
``FToolMenuSection::AddEntry``: ``Blocks[IndexOfBlock(Args.Name)] = Args``, UE 5.x), which is how the
toolbar button's label follows a run; ``refresh_all_widgets`` redraws it.
"""

from __future__ import annotations

import unreal

OWNER = "Coarse2Real"
REALIFY_TOOLTIP = "Render the open (or selected) Level Sequence with Movie Render Queue and realify it"
MENU_ENTRIES = (
    # (name, label, tooltip, python command)
    ("RealifySequence", "Realify Level Sequence", REALIFY_TOOLTIP,
     "import coarse2real_unreal.unreal_actions as a; a.realify_current_sequence()"),
    ("RealifyViewport", "Realify Viewport", "Capture the level viewport with a SceneCapture2D and realify it",
     "import coarse2real_unreal.unreal_actions as a; a.realify_viewport()"),
    ("Cancel", "Cancel Realify", "Cancel the running realify (render and daemon session)",
     "import coarse2real_unreal.unreal_actions as a; a.cancel()"),
    ("Settings", "Settings...", "Prompt, quality, model, daemon address and token; shows what the daemon serves and whether the open sequence fits its GPU",
     "import coarse2real_unreal.unreal_actions as a; a.open_settings()"),
    ("InstallDependencies", "Install Dependencies", "pip-install grpcio, protobuf, numpy, OpenEXR and the coarse2real client into this plugin",
     "import coarse2real_unreal.unreal_actions as a; a.install_dependencies()"),
)  # fmt: skip
TOOLBAR_MENU = "LevelEditor.LevelEditorToolBar.PlayToolBar"
TOOLBAR_SECTION = "Coarse2Real"


def _entry(name: str, label: str, tooltip: str, command: str, kind):
    entry = unreal.ToolMenuEntry(name=f"{OWNER}.{name}", type=kind)
    entry.set_label(label)
    entry.set_tool_tip(tooltip)
    entry.set_string_command(unreal.ToolMenuStringCommandType.PYTHON, "", command)
    return entry


def _toolbar_button(progress: str | None):
    """Realify when idle; while a run is going, its progress, and pressing it cancels."""
    if progress is None:
        return _entry("RealifyButton", "Realify", REALIFY_TOOLTIP, MENU_ENTRIES[0][3], unreal.MultiBlockType.TOOL_BAR_BUTTON)
    return _entry("RealifyButton", progress, "Realifying; press to cancel", MENU_ENTRIES[2][3], unreal.MultiBlockType.TOOL_BAR_BUTTON)


def register() -> None:
    menus = unreal.ToolMenus.get()
    main = menus.find_menu("LevelEditor.MainMenu")
    submenu = main.add_sub_menu(OWNER, "PythonTools", OWNER, "Coarse2Real", "Realify sequences and the viewport with the coarse2real daemon")
    for name, label, tooltip, command in MENU_ENTRIES:
        submenu.add_menu_entry("Realify", _entry(name, label, tooltip, command, unreal.MultiBlockType.MENU_ENTRY))
    show_progress(None)


def show_progress(progress: str | None) -> None:
    """Put ``progress`` on the toolbar button (None: back to Realify)."""
    menus = unreal.ToolMenus.get()
    menus.extend_menu(TOOLBAR_MENU).add_menu_entry(TOOLBAR_SECTION, _toolbar_button(progress))
    menus.refresh_all_widgets()
