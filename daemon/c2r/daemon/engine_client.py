"""The front end's side of the engine: spawn it, feed it windows, watch that it lives.

One reader coroutine owns the event socket and routes the running window's events to its
caller; a watchdog coroutine looks every WATCH_SECONDS (the reader's socket waits without a
timeout, so an idle front end wakes only for heartbeats and the watch): an engine process
that exited (crash, SIGKILL) or sent nothing, not even a heartbeat, for
``heartbeat_timeout`` seconds (hang, SIGSTOP) is killed and a fresh one started. The window that was running is retried once on the new
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
WATCH_SECONDS = 0.5  # how often the watchdog looks: an engine that exited is restarted within this
MAX_START_FAILURES = 3  # engines in a row that die before saying hello: the engine is broken, stop restarting
ERROR_CODES = {"invalid": InvalidInput, "oom": OutOfGpuMemory, "cancelled": SessionCancelled, "missing": WeightsMissing,
               "unavailable": EngineUnavailable}


class EngineDied(Exception):
    pass


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
        self.events = self.ctx.socket(zmq.PULL)
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
        self._tasks: list[asyncio.Task] = []  # the event reader and the watchdog

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> dict:
        """Spawn the engine and wait for its hello (model loaded); raises RuntimeError if it cannot start."""
        self._spawn()
        self._tasks = [asyncio.create_task(self._read_events()), asyncio.create_task(self._watch())]
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
               "--parent", str(os.getpid()), "--ranks", str(self.ranks)] + (["--model-path", str(self.model_path)] if self.model_path else [])
        env = dict(os.environ)
        if self.visible_gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.visible_gpu  # the engine sees its one GPU as cuda:0
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env)
        self._spawned_at = self._last_seen = time.monotonic()
        self.ready.clear()
        (self.state_dir / f"engine-{self.index}.pid").write_text(f"{self.proc.pid}\n")
        log.info("engine %d process started (pid %d)", self.index, self.proc.pid)

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.proc and self.proc.poll() is None:
            await self.requests.send_multipart(pack(Stop()))
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 5)
            except asyncio.TimeoutError:
                self._kill()
        self.ctx.destroy(linger=0)

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

    async def _read_events(self) -> None:
        while True:
            try:
                message = unpack(await self.events.recv_multipart(copy=False))
                if self.proc is not None and message.pid == self.proc.pid:  # else: a replaced engine's
                    self._last_seen = time.monotonic()
                    self._route(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # the reader must outlive any bad message
                log.exception("engine %d: error handling an engine message", self.index)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
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
