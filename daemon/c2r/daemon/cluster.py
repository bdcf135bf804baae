"""Batch jobs on a Ray cluster (``c2r serve --ray ADDRESS``): windows and anchor pieces as actor tasks.

The front end stays where it is: it owns the job store, the stages and the outputs, and
plans every job exactly as locally (sequential windows, or anchor clips and chunks). Only
the running of a window moves: ``ClusterScheduler`` has the local scheduler's interface
(``submit`` a ``WindowTask``, its ``result`` future resolves), so ``jobs`` and
``anchor_jobs`` run unchanged on it, and frames come back through Ray's object store into
the job's stage and output root on the daemon's machine. A job is recorded piece by piece
as it is locally, so a restarted daemon resumes it; a worker that dies mid-window is
restarted by Ray (``max_restarts``) and the window is run again, once. Cancelling a job
drops its queued windows and stops its running ones at their next step (``ray.cancel``, see
``cluster_worker``); stopping the daemon cancels nothing, so its jobs resume at the next start.

Workers: one ``WindowWorker`` actor per GPU of the cluster (``num_gpus=gpus_per_window``),
or one per CPU on a CPU-only cluster, each taking the next queued window when free.
Interactive sessions stay on the local engines: a live stream needs its window now.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass

import numpy as np

from .errors import EngineUnavailable, SessionCancelled
from .scheduler import WindowTask
from .settings import DaemonSettings

log = logging.getLogger("c2r.daemon")
RETRIES = 1  # a window whose worker died is run once more (on the restarted actor)
RESTART_WAIT_S = 120.0  # how long Ray may take to restart a dead worker before its window fails


@dataclass
class ClusterResult:
    """What a finished window hands back, as ``engine_messages.WindowResult`` does."""

    frames: np.ndarray
    seconds: float


def import_ray():
    try:
        import ray
    except ImportError:
        raise RuntimeError("--ray needs Ray: pip install 'coarse2real[cluster]' on this machine and on every node") from None
    return ray


class ClusterScheduler:
    """The window queue of batch jobs, served by Ray actors instead of local engine processes."""

    def __init__(self, settings: DaemonSettings):
        self.settings = settings
        self.queue: asyncio.Queue[WindowTask] = asyncio.Queue()
        self.running: list[WindowTask] = []
        self.calls: dict[WindowTask, object] = {}  # the running tasks' Ray calls (ObjectRefs), for ray.cancel
        self.dropped: set[int] = set()  # ids of queued tasks whose owner was cancelled
        self._seq = itertools.count()
        self._workers: list = []
        self._loops: list[asyncio.Task] = []

    def start(self) -> int:
        """Connect to the cluster and place the workers; returns how many."""
        ray = import_ray()
        from .cluster_worker import WindowWorker

        ray.init(address=self.settings.ray, log_to_driver=False, ignore_reinit_error=True)
        resources = ray.cluster_resources()
        per = self.settings.gpus_per_window
        gpus = int(resources.get("GPU", 0)) // per if self.settings.device != "cpu" else 0
        count = gpus or int(resources.get("CPU", 1)) // per
        options = {"num_gpus": per, "num_cpus": 1} if gpus else {"num_cpus": per}
        actor = ray.remote(max_restarts=-1, max_task_retries=0, **options)(WindowWorker)
        device = "cuda" if gpus else "cpu"
        self._workers = [actor.remote(device, per) for _ in range(count)]
        for i, pid in enumerate(ray.get([w.pid.remote() for w in self._workers], timeout=120)):  # all placed before serving
            log.info("ray worker %d is pid %d", i, pid)
        self._loops = [asyncio.create_task(self._serve(i, w)) for i, w in enumerate(self._workers)]
        log.info("ray cluster at %s: %d window worker(s) (%s)", self.settings.ray, count,
                 f"{per} GPU(s) each" if gpus else f"{per} CPU each")
        return count

    # --- the scheduler interface jobs use -------------------------------------------------------
    def submit(self, task: WindowTask) -> int:
        task.seq = next(self._seq)
        self.queue.put_nowait(task)
        return self.queue.qsize() - 1 + len(self.running)

    def drop_owner(self, owner: str) -> None:
        """Forget an owner's queued windows and stop its running ones (at their next step, on their workers)."""
        for task in list(self.queue._queue):  # noqa: SLF001 - asyncio.Queue has no removal
            if task.owner == owner:
                task.result.cancel()
        for task in [t for t in self.running if t.owner == owner]:
            task.result.cancel()
            if (call := self.calls.get(task)) is not None:
                import_ray().cancel(call)

    # --- workers -------------------------------------------------------------------------------
    async def _serve(self, index: int, worker) -> None:
        ray = import_ray()
        while True:
            task = await self.queue.get()
            if task.result.done():  # dropped while queued
                continue
            self.running.append(task)
            try:
                result = await self._run(ray, index, worker, task)
            except Exception as e:  # noqa: BLE001 - any failure fails this window only
                if not task.result.done():
                    task.result.set_exception(e)
            else:
                if not task.result.done():
                    task.result.set_result(result)
            finally:
                self.running.remove(task)

    async def _run(self, ray, index: int, worker, task: WindowTask) -> ClusterResult:
        from ray.exceptions import RayActorError, RayTaskError, TaskCancelledError

        request = task.request
        task.on_event({"kind": "window_started"})
        failures = 0
        while True:
            log.info("ray worker %d: window %d of %s running", index, request.index, task.owner)
            try:
                self.calls[task] = call = worker.run.remote(task.model, task.lora, request)
                frames, seconds, pid, started, finished = await call
            except (TaskCancelledError, RayTaskError) as e:
                if not task.result.cancelled():
                    raise
                log.info("ray worker %d: window %d of %s stopped: %s", index, request.index, task.owner,
                         str(e).strip().splitlines()[-1])
                raise SessionCancelled("cancelled by a client") from None
            except RayActorError as e:  # died under the window (ActorDiedError, or ActorUnavailableError: restarting)
                failures += 1
                if failures > RETRIES:
                    raise EngineUnavailable(f"ray worker {index} died twice on window {request.index} of {task.owner} "
                                            f"({type(e).__name__}); check the cluster's nodes and logs") from None
                log.warning("ray worker %d died on window %d of %s; retrying it once", index, request.index, task.owner)
                await self._until_back(index, worker)
                continue
            finally:
                self.calls.pop(task, None)
            log.info("ray worker %d (pid %d): window %d of %s in %.2f s (ran %.3f-%.3f)", index, pid, request.index,
                     task.owner, seconds, started, finished)
            return ClusterResult(frames, seconds)

    @staticmethod
    async def _until_back(index: int, worker) -> None:
        """Wait until Ray has restarted a dead worker (it answers a call), so the retry is not refused meanwhile."""
        from ray.exceptions import RayActorError

        deadline = time.monotonic() + RESTART_WAIT_S
        while True:
            try:
                await worker.pid.remote()
                return
            except RayActorError:
                if time.monotonic() > deadline:
                    raise EngineUnavailable(f"ray worker {index} did not come back within {RESTART_WAIT_S:g} s of dying; "
                                            "check the cluster's nodes and logs") from None
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._workers:
            import_ray().shutdown()
