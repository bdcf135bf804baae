"""The network side of a realify run, on threads, so Blender's UI never waits on the daemon.

bpy data may only be touched from the main thread; this module never imports bpy. The main
thread hands frames over with ``submit`` and collects what happened with ``poll``; results
are written to disk here (atomically, see ``png.write_png``) so the main thread only loads them.
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from c2r.client import png

from . import daemon_env
from .messages import DoesNotFit

_END = object()


@dataclass
class ConnectSettings:
    address: str
    token: str = ""
    start_daemon: bool = True
    daemon_python: str = ""  # Python that has coarse2real[daemon]; "" = the managed environment
    managed_env: Path | None = None  # the add-on's own daemon environment (daemon_env.ENV_FOLDER)
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
    """The daemon answered, accepted the token and the session's settings: frames may be rendered now."""

    message: str


@dataclass
class Planned:
    """The daemon's planner on this run (``c2r plan``): fits or not, time per window, in one sentence."""

    summary: str


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
    """c2r.client.connect with the add-on's preferences.

    A daemon Blender starts runs in a Python that has coarse2real[daemon] (daemon_env), never in
    Blender's own, which holds only the client; without one the run stops here, before anything
    is rendered, saying how to get one.
    """
    from c2r.client import connect
    from c2r.client.launcher import answers

    python = None
    if settings.start_daemon and not answers(settings.address, timeout=1.0):
        python = daemon_env.resolve_python(settings.daemon_python, settings.managed_env or Path(daemon_env.ENV_FOLDER))
    # Blender gets previews through its own session, so a daemon it starts takes any free preview
    # port rather than failing when 50052 is taken.
    return connect(settings.address, token=settings.token or None, start_daemon=settings.start_daemon,
                   timeout=settings.timeout, daemon_args=("--preview-port", "0"), python=python)  # fmt: skip


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


def gib(size: int) -> str:
    return f"{size / 2**30:.0f} GB"


def describe_info(info) -> str:
    """GetInfo in words: device, memory, loaded model, version."""
    if info.gpus:
        gpu = info.gpus[0]
        device = f"{gpu.name}, {gib(gpu.free_bytes)} free of {gib(gpu.total_bytes)}"
    else:
        device = "no GPU (CPU only: slow)" if info.device in ("", "cpu") else info.device
    model = f"model {info.loaded_model} loaded" if info.loaded_model else "no model loaded yet"
    return f"{device}; {model}; coarse2real {info.daemon_version}"


class SessionWorker:
    """One realify session: a thread that connects and reads events, one that sends frames."""

    def __init__(self, connection: ConnectSettings, session: SessionSettings, name_for_index: Callable[[int], Path],
                 total: int, size: tuple[int, int], connect: Callable[[ConnectSettings], object] = SHARED_CLIENT):  # fmt: skip
        self.connection = connection
        self.total = total
        self.size = size  # (width, height) of the frames the run renders, for the plan
        self.shared_memory: bool | None = None  # how frames went: None until the session opened
        self.session_settings = session
        self.name_for_index = name_for_index
        self._connect = connect
        self._outbox: queue.Queue = queue.Queue()
        self._events: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._session = None
        self._send_error: BaseException | None = None
        self._returned = 0
        self._thread = threading.Thread(target=self._run, name="c2r-session", daemon=True)

    # ---------------------------------------------------------------- main thread

    def start(self) -> None:
        self._thread.start()

    def submit(self, frame: FrameToSend) -> None:
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
                connected = self._connected_message(client)
                self._events.put(Planned(self._plan(client)))
                with client.realify(**vars(self.session_settings)) as session:
                    self._session = session
                    self.shared_memory = session.shared_memory
                    self._events.put(Connected(connected))
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
        where = f"daemon at {self.connection.address}: {describe_info(client.info())}"
        started = getattr(client, "daemon", None)
        if started is None:
            return where
        return f"Blender started the daemon (process {started.pid}); {where}"

    def _plan(self, client) -> str:
        """The daemon's plan for this run; a run that cannot fit on the daemon's GPU stops here, before rendering."""
        width, height = self.size
        plan = client.plan(width, height, self.total, **vars(self.session_settings))
        if plan.gpu_name and not plan.fits:
            raise DoesNotFit(" ".join(part for part in (plan.summary, plan.advice) if part))
        return plan.summary

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
                self._events.put(ProgressChanged(f"{self._returned}/{self.total} frames realified"))
            elif isinstance(event, Progress) and event.kind == "step":
                text = f"{self._returned}/{self.total} frames realified; window {event.window + 1}, step {event.step} of {event.num_steps}"
                self._events.put(ProgressChanged(text))
            elif isinstance(event, Warning):
                self._events.put(ProgressChanged(f"note from the daemon: {event.message}"))
