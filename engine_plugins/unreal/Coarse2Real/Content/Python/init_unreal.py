"""Unreal runs this at editor start-up for every enabled plugin: add the Coarse2Real menu.

Nothing heavy is imported here; the client and its dependencies load when an entry runs,
so a missing dependency shows its install hint instead of breaking the editor's start.
"""

import unreal

try:
    from coarse2real_unreal import unreal_menus

    unreal_menus.register()
except Exception as error:  # noqa: BLE001 - never break editor start-up over a menu
    unreal.log_error(f"Coarse2Real: could not add the menu: {error}")
