"""The front end's side of the engine: spawn it, feed it windows, watch that it lives.

One reader thread owns the event socket: it blocks on it, unpacks what arrives (result frames
are copied out of shared memory there, off the event loop) and hands the loop whatever it
read in one call, which routes the running window's events to its caller. An engine that exits
(crash, SIGKILL) is seen at once where the OS can say so (a pidfd on Linux), else within
WATCH_SECONDS; one that sends nothing, not even a heartbeat, for ``heartbeat_timeout`` seconds
(hang, SIGSTOP) is found by a watchdog that looks every heartbeat interval (an eighth of the
timeout, at most 2 s). Either is killed and a fresh one started. So an idle front end wakes
about once a second: one heartbeat and one look. The window that was running is retried once on the new
engine; failing again gives up with UNAVAILABLE. The front end itself never goes down.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import zmq
import zmq.asyncio

from .engine_messages import (CancelWindow, Event, Fatal, Hello, Loaded, RunWindow, Stop, WindowError, WindowEvent,
                              WindowResult)
from .errors import ClientError, EngineUnavailable, InvalidInput, OutOfGpuMemory, SessionCancelled, WeightsMissing
from .ipc import SharedArrays, pack, sweep_stale_segments, unpack
from .scheduler import WindowScheduler, WindowTask

log = logging.getLogger("c2r.daemon")
WATCH_SECONDS = 0.5  # without a pidfd (macOS, Windows): how often the watchdog looks, so an exited engine restarts within it
MAX_HEARTBEAT_SECONDS = 2.0
MAX_START_FAILURES = 3  # engines in a row that die before saying hello: the engine is broken, stop restarting
ERROR_CODES = {"invalid": InvalidInput, "oom": OutOfGpuMemory, "cancelled": SessionCancelled, "missing": WeightsMissing,
               "unavailable": EngineUnavailable}


class EngineDied(Exception):
    pass


def heartbeat_interval(timeout: float) -> float:
    """How often the engine says it lives: eight heartbeats per ``timeout``, at most every 2 s."""
    return min(MAX_HEARTBEAT_SECONDS, timeout / 8)


class EngineClient:
    def __init__(self, index: int, model: str, device: str, visible_gpu: str | None, preview_address: str, state_dir: Path,
                 heartbeat_timeout: float, buffers: SharedArrays, startup_timeout: float = 600.0,
                 model_path: Path | None = None, ranks: int = 1):
        self.index, self.model, self.device_wanted, self.visible_gpu = index, model, device, visible_gpu
        self.model_path = model_path
        self.ranks = ranks  # > 1: an engine group running each window over that many GPUs (processes on the CPU)
        self.preview, self.state_dir = preview_address, state_dir
        self.buffers = buffers  # the front end's window buffers: windows go to the engine as their handles
        self.heartbeat_timeout, self.startup_timeout = heartbeat_timeout, startup_timeout
        self.ctx = zmq.asyncio.Context()
        self.requests = self.ctx.socket(zmq.PUSH)
        self.requests.setsockopt(zmq.LINGER, 0)
        self.requests_address = f"tcp://127.0.0.1:{self.requests.bind_to_random_port('tcp://127.0.0.1')}"
        self.events_ctx = zmq.Context()  # a blocking socket, read by the reader thread only
        self.events = self.events_ctx.socket(zmq.PULL)
        self.events.setsockopt(zmq.LINGER, 0)
        self.events_address = f"tcp://127.0.0.1:{self.events.bind_to_random_port('tcp://127.0.0.1')}"
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}  # from the engine's Hello: pid, device, models, loaded_model
        self.ready = asyncio.Event()
        self.broken: str | None = None
        self._start_failures = 0
        self._spawned_at = 0.0
        self._last_seen = 0.0
        self._rids = itertools.count(1)
        self._current: tuple[int, WindowTask, asyncio.Queue] | None = None
        self._tasks: list[asyncio.Task] = []  # the watchdog
        self._reader: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pidfd: int | None = None  # readable when the engine process exits (Linux)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> dict:
        """Spawn the engine and wait for its hello (model loaded); raises RuntimeError if it cannot start."""
        self._loop = asyncio.get_running_loop()
        self._reader = threading.Thread(target=self._read_events, name=f"engine-{self.index}-events", daemon=True)
        self._reader.start()
        self._spawn()
        self._tasks = [asyncio.create_task(self._watch())]
        ready = asyncio.create_task(self.ready.wait())
        while not ready.done():
            await asyncio.wait([ready], timeout=0.2)
            if self.broken:
                ready.cancel()
                raise RuntimeError(self.broken)
        return self.info

    def _spawn(self) -> None:
        cmd = [sys.executable, "-m", "c2r.daemon.engine", "--requests", self.requests_address, "--events",
               self.events_address, "--preview", self.preview, "--model", self.model, "--device", self.device_wanted,
               "--parent", str(os.getpid()), "--ranks", str(self.ranks),
               "--heartbeat-interval", f"{heartbeat_interval(self.heartbeat_timeout):g}"] + (["--model-path", str(self.model_path)] if self.model_path else [])
        env = dict(os.environ)
        if self.visible_gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.visible_gpu  # the engine sees its one GPU as cuda:0
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env)
        self._spawned_at = self._last_seen = time.monotonic()
        self.ready.clear()
        self._watch_exit()
        (self.state_dir / f"engine-{self.index}.pid").write_text(f"{self.proc.pid}\n")
        log.info("engine %d process started (pid %d)", self.index, self.proc.pid)

    def _watch_exit(self) -> None:
        """Be woken the moment the engine process exits (Linux pidfd); elsewhere the watchdog's look finds it."""
        self._unwatch_exit()
        if not hasattr(os, "pidfd_open") or self._loop is None:
            return
        try:
            self._pidfd = os.pidfd_open(self.proc.pid)
        except OSError:  # an old kernel: the watchdog looks every WATCH_SECONDS instead
            return
        self._loop.add_reader(self._pidfd, self._exited)

    def _unwatch_exit(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    def _exited(self) -> None:
        """The watched engine exited (each spawn replaces the watch, so it is always the current one)."""
        self._unwatch_exit()
        try:
            if reason := self._failure():
                self._recover(reason)
        except Exception:  # the loop's callback must not raise
            log.exception("engine %d: restarting the engine failed", self.index)

    def _kill(self) -> None:
        self._unwatch_exit()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    async def stop(self) -> None:
        self._unwatch_exit()  # the engine exits now on purpose: not a crash to recover from
        for task in self._tasks:
            task.cancel()
        if self.proc and self.proc.poll() is None:
            await self.requests.send_multipart(pack(Stop()))
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 5)
            except asyncio.TimeoutError:
                self._kill()
        self.ctx.destroy(linger=0)
        if self._reader is None:  # never started: nobody else closes the socket
            self.events.close(linger=0)
        # term() makes the reader thread's recv raise ContextTerminated; it closes its socket, then term() returns
        await asyncio.to_thread(self.events_ctx.term)

    # ------------------------------------------------------------------ watchdog + routing

    def _failure(self) -> str | None:
        if self.proc is None:  # given up: nothing to watch
            return None
        code = self.proc.poll()
        if code is not None:
            return f"the engine process exited with code {code}"
        silent = time.monotonic() - self._last_seen
        if silent > self.heartbeat_timeout:
            return f"the engine sent no heartbeat for {silent:.1f} s (limit {self.heartbeat_timeout:g} s): it hangs"
        if not self.ready.is_set() and time.monotonic() - self._spawned_at > self.startup_timeout:
            return f"the engine did not load the model within {self.startup_timeout:g} s"
        return None

    def _read_events(self) -> None:
        """The reader thread: block on the socket, unpack everything waiting, hand it to the loop in one call."""
        while True:
            messages = []
            try:
                parts = self.events.recv_multipart(copy=False)
                while parts is not None:
                    try:
                        messages.append(unpack(parts))
                    except Exception:  # the reader must outlive any bad message
                        log.exception("engine %d: cannot read an engine message", self.index)
                    try:
                        parts = self.events.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        parts = None
            except zmq.ContextTerminated:
                self.events.close(linger=0)
                return
            except zmq.ZMQError:
                log.exception("engine %d: the event socket failed", self.index)
                return
            if messages:
                try:
                    self._loop.call_soon_threadsafe(self._deliver, messages)
                except RuntimeError:  # the loop is closed: the daemon is stopping
                    return

    def _deliver(self, messages: list) -> None:
        for message in messages:
            try:
                if self.proc is not None and message.pid == self.proc.pid:  # else: a replaced engine's
                    self._last_seen = time.monotonic()
                    self._route(message)
            except Exception:  # one bad message must not stop the rest
                log.exception("engine %d: error handling an engine message", self.index)

    async def _watch(self) -> None:
        every = WATCH_SECONDS if self._pidfd is None else heartbeat_interval(self.heartbeat_timeout)
        while True:
            await asyncio.sleep(every)
            try:
                if reason := self._failure():
                    self._recover(reason)
            except Exception:  # the watchdog must outlive a failed restart
                log.exception("engine %d: restarting the engine failed", self.index)

    def _route(self, message: Event) -> None:
        if isinstance(message, Fatal):
            self._give_up(f"the engine cannot start: {message.message}")
        elif isinstance(message, Hello):
            self.info = {"pid": message.pid, "device": message.device, "models": message.models,
                         "loaded_model": message.loaded_model}
            self._start_failures = 0
            self.ready.set()
            log.info("engine %d ready (pid %d) on %s with model %s", self.index, message.pid, message.device,
                     message.loaded_model)
        elif isinstance(message, Loaded):
            self.info["loaded_model"] = message.model
        elif isinstance(message, WindowEvent | WindowResult | WindowError) and self._current and message.id == self._current[0]:
            self._current[2].put_nowait(message)

    def _recover(self, reason: str) -> None:
        log.error("engine %d: %s; restarting it", self.index, reason)
        was_ready = self.ready.is_set()
        self._kill()
        sweep_stale_segments()
        if self._current:
            self._current[2].put_nowait(EngineDied(reason))
        self._start_failures = 0 if was_ready else self._start_failures + 1
        if self._start_failures >= MAX_START_FAILURES:
            self._give_up(f"the engine failed to start {MAX_START_FAILURES} times; last: {reason}")
            return
        self._spawn()

    def _give_up(self, reason: str) -> None:
        """No more restarts: every waiting and future window fails with ``reason``."""
        self.broken = reason
        log.error("engine %d: %s; giving up (see the engine's log above)", self.index, reason)
        self._kill()
        self.proc = None
        self.ready.set()  # wake every waiter: they see ``broken`` and fail their window
        if self._current:
            self._current[2].put_nowait(EngineDied(reason))

    # ------------------------------------------------------------------ running windows

    async def dispatch(self, scheduler: WindowScheduler) -> None:
        """The front end's half of the busy loop: windows from the scheduler, one at a time, to the engine."""
        while True:
            task = await scheduler.next()
            try:
                frames = await self._run_with_retry(task)
            except ClientError as e:
                scheduler.finished(task, error=e)
            except Exception as e:  # a front-end bug fails this window only
                log.exception("window of %s failed", task.owner)
                scheduler.finished(task, error=ClientError(f"internal daemon error: {e}; see the daemon log"))
            else:
                scheduler.finished(task, frames)

    async def _run_with_retry(self, task: WindowTask):
        for attempt in (1, 2):
            await self.ready.wait()
            if self.broken:
                raise EngineUnavailable(f"{self.broken}; restart the daemon (c2r serve) after fixing the cause")
            try:
                return await self._run_once(task)
            except EngineDied as e:
                if attempt == 2:
                    raise EngineUnavailable(
                        f"the engine failed twice on window {task.request.index} of {task.owner} ({e}); "
                        "the daemon restarted it and is still serving: retry, or lower the resolution or window"
                    ) from None
                log.warning("retrying window %s of %s once on a fresh engine", task.request.index, task.owner)

    async def _run_once(self, task: WindowTask) -> WindowResult:
        rid = next(self._rids)
        queue: asyncio.Queue = asyncio.Queue()
        self._current = (rid, task, queue)
        try:
            run = RunWindow(rid, task.owner, task.model, task.lora, task.request)
            await self.requests.send_multipart(pack(run, self.buffers), copy=False)
            while True:
                message = await queue.get()
                if isinstance(message, EngineDied):
                    raise message
                if isinstance(message, WindowEvent):
                    task.on_event({"kind": message.kind, "step": message.step, "num_steps": message.num_steps,
                                   "preview": message.preview})
                elif isinstance(message, WindowResult):
                    return message
                else:
                    raise ERROR_CODES.get(message.code, ClientError)(message.message)
        finally:
            self._current = None

    async def cancel(self, owner: str) -> None:
        """Stop the window ``owner`` has on the engine now, if any (queued ones are the scheduler's)."""
        if self._current and self._current[1].owner == owner:
            await self.requests.send_multipart(pack(CancelWindow(self._current[0])))
