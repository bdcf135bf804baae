"""Work the game thread must not wait for (connecting, closing a session), on a thread of its own.

The editor's tick polls ``done()`` and takes ``result()`` once it is; nothing here touches
``unreal``, which may only be called from the game thread.
"""

from __future__ import annotations

import threading
from typing import Any, Callable


class Background:
    def __init__(self, work: Callable[[], Any], name: str):
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self._value = work()
        except BaseException as error:  # noqa: BLE001 - handed to the game thread by result()
            self._error = error

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> Any:
        """The work's return value, or its exception raised here; only once ``done()``."""
        if not self.done():
            raise RuntimeError("Background.result() before the work finished: poll done() from the tick first")
        if self._error is not None:
            raise self._error
        return self._value
