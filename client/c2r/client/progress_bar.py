"""A terminal progress line for the CLI: tqdm when it is installed, else a plain line.

The ETA shown is the daemon's (it knows the windows still queued and the time per step);
tqdm's own rate-based estimate would jump because results arrive a window at a time.
"""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, total: int, unit: str = "frame", stream=sys.stderr):
        self.total = total
        self.done = 0
        self._stream = stream
        self._last_line = 0.0
        self._status = ""
        try:
            from tqdm import tqdm
        except ImportError:
            self._bar = None
        else:
            self._bar = tqdm(total=total, unit=unit, file=stream, dynamic_ncols=True, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")

    def update(self, done: int | None = None, status: str | None = None, eta: float | None = None) -> None:
        if status is not None:
            self._status = status + (f", eta {eta:.0f}s" if eta else "")
        if done is not None and done != self.done:
            if self._bar is not None:
                self._bar.update(done - self.done)
            self.done = done
        if self._bar is not None:
            self._bar.set_postfix_str(self._status, refresh=True)
        elif time.monotonic() - self._last_line > 1.0 or self.done == self.total:
            self._last_line = time.monotonic()
            print(f"{self.done}/{self.total} frames ({100 * self.done // max(self.total, 1)}%) {self._status}", file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
