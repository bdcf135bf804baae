"""Run a step on every Slate post-tick until it says it is finished.

``unreal.register_slate_post_tick_callback(callable) -> handle`` and
``unreal.unregister_slate_post_tick_callback(handle)`` (PythonScriptPlugin, the ``unreal`` module's
functions, UE 5.0-5.7: dev.epicgames.com/documentation/en-us/unreal-engine/python-api/module/unreal).
The callable gets the frame's delta time and runs on the game thread, between frames, so a step
may call any ``unreal`` API; it must return quickly (poll, never wait).
"""

from __future__ import annotations

from typing import Callable

import unreal


def every_tick(step: Callable[[float], bool], on_error: Callable[[BaseException], None]) -> None:
    """Call ``step(delta_seconds)`` each tick while it returns True; an exception stops it and goes to ``on_error``."""
    handle = None

    def tick(delta_seconds: float) -> None:
        keep_going = False
        try:
            keep_going = step(delta_seconds)
        except Exception as error:  # noqa: BLE001 - a broken step must not raise into Slate every frame
            on_error(error)
        finally:
            if not keep_going:
                unreal.unregister_slate_post_tick_callback(handle)

    handle = unreal.register_slate_post_tick_callback(tick)
