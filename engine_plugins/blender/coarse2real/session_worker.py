"""The network side of a realify run, on threads, so Blender's UI never waits on the daemon.

bpy data may only be touched from the main thread; this module never imports bpy. The main
thread hands frames over with ``submit`` and collects what happened with ``poll``; results
are written to disk here (atomically, see ``png.write_png``) so the main thread only loads them.
"""

from __future__ import annotations

import inspect
import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from c2r.client import png

_END = object()


@dataclass
class ConnectSettings:
    address: str
    token: str = ""
    start_daemon: bool = True
    daemon_python: str = ""  # Python that has coarse2real[daemon]; "" = Blender's own
    timeout: float = 10.0


@dataclass
class SessionSettings:
    """Client.realify's keyword arguments, as the panel sets them."""

    prompt: str = ""
    negative_prompt: str = ""
    model: str = ""
    quality: str = "final"
    seed: int | None = None
    strength: float | None = None
    window: int | None = None
    overlap: int | None = None
    resolution: str = ""  # "" = from the quality preset
    buffers: tuple[str, ...] = ("color", "depth", "normals")


@dataclass
class FrameToSend:
    index: int  # 0-based session index
    color: np.ndarray  # (H, W, 3) uint8 sRGB, as displayed
    depth: np.ndarray | None = None  # (H, W) view-axis distance, inf for sky
    normals: np.ndarray | None = None  # (H, W, 3) camera space


# What poll() returns, oldest first.
@dataclass
class Connected:
    message: str


@dataclass
class FrameWritten:
    index: int
    image: np.ndarray = field(repr=False)  # (H, W, 3) uint8, for the live preview


@dataclass
class PreviewArrived:
    index: int
    image: np.ndarray = field(repr=False)


@dataclass
class ProgressChanged:
    text: str


@dataclass
class Failed:
    error: BaseException


@dataclass
class Closed:
    """The session is over (finished, failed or cancelled); always the last event."""


def connect_client(settings: ConnectSettings):
    """c2r.client.connect with the add-on's preferences; the Python override needs client support."""
    from c2r.client import connect

    kwargs = {}
    if settings.daemon_python:
        if "python" not in inspect.signature(connect).parameters:
            raise RuntimeError(
                f"this c2r client cannot start a daemon with {settings.daemon_python}; start one yourself with "
                f"`{settings.daemon_python} -m c2r.cli.main serve`, or clear 'Daemon Python' in the add-on preferences"
            )
        kwargs["python"] = settings.daemon_python
    # Blender gets previews through its own session, so a daemon it starts takes any free preview
    # port rather than failing when 50052 is taken (`c2r info` shows which one it took).
    return connect(settings.address, token=settings.token or None, start_daemon=settings.start_daemon,
                   timeout=settings.timeout, daemon_args=("--preview-port", "0"), **kwargs)  # fmt: skip


class SharedClient:
    """One client for every run in this Blender session.

    A daemon the client started lives as long as its client, and loading a real model takes
    minutes: keeping the client between runs keeps that daemon (and its loaded model) up until
    the add-on is disabled or Blender quits. A lost daemon drops the client; the next run
    connects (or starts one) again.
    """

    def __init__(self, connect: Callable[[ConnectSettings], object] = connect_client):
        self._connect = connect
        self._lock = threading.Lock()
        self._client = None
        self._key: tuple | None = None

    @contextmanager
    def __call__(self, settings: ConnectSettings):
        from c2r.client.errors import DaemonUnavailable

        key = (settings.address, settings.token, settings.daemon_python)
        with self._lock:
            if self._client is not None and self._key != key:
                self._close_locked()
            if self._client is None:
                self._client, self._key = self._connect(settings), key
            client = self._client
        try:
            yield client
        except DaemonUnavailable:
            self.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client, self._key = None, None


SHARED_CLIENT = SharedClient()


class SessionWorker:
    """One realify session: a thread that connects and reads events, one that sends frames."""

    def __init__(self, connection: ConnectSettings, session: SessionSettings, name_for_index: Callable[[int], Path],
                 connect: Callable[[ConnectSettings], object] = SHARED_CLIENT):  # fmt: skip
        self.connection = connection
        self.session_settings = session
        self.name_for_index = name_for_index
        self._connect = connect
        self._outbox: queue.Queue = queue.Queue()
        self._events: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._session = None
        self._send_error: BaseException | None = None
        self._submitted = 0
        self._returned = 0
        self._thread = threading.Thread(target=self._run, name="c2r-session", daemon=True)

    # ---------------------------------------------------------------- main thread

    def start(self) -> None:
        self._thread.start()

    def submit(self, frame: FrameToSend) -> None:
        self._submitted += 1
        self._outbox.put(frame)

    def end(self) -> None:
        self._outbox.put(_END)

    def cancel(self) -> None:
        """Stop sending and tell the daemon to drop this session's windows."""
        self._cancel.set()
        self._outbox.put(_END)
        session = self._session
        if session is not None:
            session.cancel()

    def poll(self) -> list:
        items = []
        while True:
            try:
                items.append(self._events.get_nowait())
            except queue.Empty:
                return items

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ---------------------------------------------------------------- worker threads

    def _run(self) -> None:
        try:
            with self._connect(self.connection) as client:
                self._events.put(Connected(self._connected_message(client)))
                with client.realify(**vars(self.session_settings)) as session:
                    self._session = session
                    if self._cancel.is_set():
                        session.cancel()
                    sender = threading.Thread(target=self._send_all, args=(session,), name="c2r-send", daemon=True)
                    sender.start()
                    self._read_all(session)
                    sender.join()
                if self._send_error is not None:
                    raise self._send_error
        except BaseException as error:  # every failure reaches the panel as a message
            if not self._cancel.is_set():
                self._events.put(Failed(error))
        finally:
            self._events.put(Closed())

    def _connected_message(self, client) -> str:
        info = client.info()
        started = getattr(client, "daemon", None)
        where = f"connected to {self.connection.address} ({info.device or 'unknown device'}, model {info.loaded_model or 'not loaded yet'})"
        if started is None:
            return where
        return f"no daemon answered at {self.connection.address}, so Blender started one (pid {started.pid}); {where}"

    def _send_all(self, session) -> None:
        from c2r.client.errors import C2RError

        while True:
            frame = self._outbox.get()
            if frame is _END or self._cancel.is_set():
                break
            try:
                session.send(frame.index, frame.color, depth=frame.depth, normals=frame.normals)
            except C2RError as error:  # refused here (e.g. too large) or the stream failed: stop the session
                self._send_error = error
                session.cancel()
                return
        if not self._cancel.is_set():
            session.end()

    def _read_all(self, session) -> None:
        from c2r.client.events import Progress, Result, Warning

        for event in session.events():
            if self._cancel.is_set():  # nothing lands on disk after Cancel: what is there stays consistent
                return
            if isinstance(event, Result) and event.preview:
                self._events.put(PreviewArrived(event.index, event.image))
            elif isinstance(event, Result):
                png.write_png(self.name_for_index(event.index), event.image)
                self._returned += 1
                self._events.put(FrameWritten(event.index, event.image))
                self._events.put(ProgressChanged(f"{self._returned}/{self._submitted} frames realified"))
            elif isinstance(event, Progress) and event.kind == "step":
                text = f"window {event.window + 1}: step {event.step}/{event.num_steps}"
                self._events.put(ProgressChanged(text))
            elif isinstance(event, Warning):
                self._events.put(ProgressChanged(f"daemon: {event.message}"))
