"""Stream an engine's frame files to the daemon while it renders, and write the results back.

Two threads keep the editor's game thread free: the sender polls the output folder, reads
each finished frame and sends it (``Session.send`` blocks while the daemon is behind); the
receiver writes every final result as a PNG next to its coarse frame number (and, for a live
view, the latest progressive preview to one file). The editor polls ``status`` from its tick and
calls ``rendering_finished`` or ``cancel``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from c2r.client.events import Progress, Result
from c2r.client.png import write_png

from .exr_gbuffer import CoarseFrame, read_frame
from .mrq_files import OutputFolderWatcher
from .png_sequence import result_path


@dataclass
class StreamStatus:
    frames_sent: int = 0
    frames_returned: int = 0
    last_progress: str = ""
    error: BaseException | None = None
    cancelled: bool = False
    done: bool = False  # both threads have stopped
    latest_image: tuple[int, str, int, int] | None = None  # (count, PNG path, width, height) of the newest frame back

    def summary(self) -> str:
        state = "cancelled" if self.cancelled else "failed" if self.error else "done" if self.done else "running"
        return f"{state}: {self.frames_sent} frames sent, {self.frames_returned} realified {self.last_progress}".rstrip()


class RealifyStream:
    """Frames from ``watcher`` into ``session``; results to ``<results_folder>/<stem>.<frame>.png``."""

    def __init__(
        self,
        session,
        watcher: OutputFolderWatcher,
        results_folder: str,
        result_stem: str,
        read: Callable[[dict[str, str]], CoarseFrame] = read_frame,
        poll_seconds: float = 0.1,
        preview_path: str | None = None,
    ):
        self.session = session
        self.watcher = watcher
        self.results_folder = results_folder
        self.result_stem = result_stem
        self.read = read
        self.poll_seconds = poll_seconds
        self.preview_path = preview_path  # where progressive previews go (a live view), None: dropped
        self.status = StreamStatus()
        self._render_done = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._send_all,), name="c2r-unreal-send", daemon=True),
            threading.Thread(target=self._guard, args=(self._receive_all,), name="c2r-unreal-receive", daemon=True),
        ]

    def start(self) -> "RealifyStream":
        for thread in self._threads:
            thread.start()
        return self

    def rendering_finished(self) -> None:
        """The engine wrote its last frame: send what is left, then end the session."""
        self._render_done.set()

    def cancel(self) -> None:
        """Stop sending, tell the daemon to drop this session's work; results so far stay on disk."""
        self.status.cancelled = True
        self._stop.set()
        self.session.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """True once both threads have stopped (finished, failed or cancelled)."""
        for thread in self._threads:
            thread.join(timeout)
        self.status.done = not any(t.is_alive() for t in self._threads)
        return self.status.done

    def _guard(self, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as error:  # noqa: BLE001 - reported through status, the other thread must stop too
            if not self.status.cancelled and self.status.error is None:
                self.status.error = error
                self._stop.set()
                self.session.cancel()

    def _send_all(self) -> None:
        while not self._stop.is_set():
            final = self._render_done.is_set()
            ready = self.watcher.poll(final=final)
            for index, files in ready:
                if self._stop.is_set():
                    return
                frame = self.read(files)
                self.session.send(index, frame.color, frame.depth, frame.normals, color_space="linear")
                self.status.frames_sent += 1
            if final and not ready:
                self.watcher.check_nothing_left()
                self.session.end()
                return
            if not ready:
                self._stop.wait(self.poll_seconds)

    def _receive_all(self) -> None:
        shown = 0
        for event in self.session.events():
            if isinstance(event, Result) and (not event.preview or self.preview_path is not None):
                # Encoded here, off the game thread; the editor only points its live view at the file.
                if event.preview:
                    path = self.preview_path
                else:
                    path = result_path(self.results_folder, self.result_stem, self.watcher.first_frame + event.index)
                write_png(path, event.image)
                self.status.frames_returned += not event.preview
                shown += 1
                self.status.latest_image = (shown, path, event.image.shape[1], event.image.shape[0])
            elif isinstance(event, Progress):
                self.status.last_progress = f"(window {event.window}: {event.kind} {event.step}/{event.num_steps})"
