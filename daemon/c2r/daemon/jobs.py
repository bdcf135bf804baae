"""Batch export jobs: submit, run window by window, resume after a restart, watch, cancel.

A job runs through the same window loop as an interactive session, at batch priority.
Each finished window's frames are staged and recorded (``job_store``) before the next
one starts, so a daemon killed at any instant resumes every unfinished job at its first
unrecorded window, with the prefix read back from the stage: the output has every frame
exactly once, as an uninterrupted run would.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator

import grpc

from c2r.models.backend import fit_window_to_rate
from c2r.models.windows import Window
from c2r.v1 import coarse2real_pb2 as pb

from .anchor_jobs import AnchoredJob
from .errors import ClientError, InvalidInput
from .frame_store import FrameStore
from .job_io import JobInput, JobSource, Stage, output_target, write_output
from .ipc import SharedArrays
from .job_store import TERMINAL, JobStore
from .paths import readable_input, safe_output
from .scheduler import WindowScheduler
from .session_config import resolve
from .settings import LOCAL_HOSTS, DaemonSettings
from .window_loop import PROGRESS_KINDS, run_windows

log = logging.getLogger("c2r.daemon")


class StageSink:
    """WindowSink of a job: frames to the stage, then the window to the job store."""

    def __init__(self, manager: "JobManager", job_id: str, stage: Stage):
        self.manager, self.job_id, self.stage = manager, job_id, stage

    def prefix(self, window: Window):
        return self.stage.get(window.start, window.emit_start)

    async def emit(self, window: Window, frames, seconds: float) -> None:
        await asyncio.to_thread(lambda: [self.stage.put(window.emit_start + i, f) for i, f in enumerate(frames)])
        job = self.manager.store.window_done(self.job_id, window.index, window.emit_start, window.end)
        log.info("job %s: window %d done (frames %d-%d) in %.2f s", self.job_id, window.index, window.emit_start, window.end - 1, seconds)
        self.manager.publish(job, pb.Progress(kind=pb.Progress.WINDOW_DONE, window=window.index, first_frame=window.start,
                                              end_frame=window.end, frames_returned=window.end))


class JobManager:
    def __init__(self, settings: DaemonSettings, scheduler: WindowScheduler, cancel_running, buffers: SharedArrays):
        self.settings, self.scheduler, self.cancel_running = settings, scheduler, cancel_running
        self.buffers = buffers  # window buffers in shared memory, mapped by the engines
        self.store = JobStore(settings.state_dir / "jobs.sqlite3")
        self.models: list[str] = []
        self.tasks: dict[str, asyncio.Task] = {}
        self.watchers: dict[str, list[asyncio.Queue]] = {}
        self.stopping = False

    def start(self, models: list[str]) -> None:
        """Called once the engine is up: resume every job a previous daemon left unfinished."""
        self.models = models
        for job_id in self.store.unfinished():
            log.info("resuming job %s after %d finished windows", job_id, len(self.store.windows(job_id)))
            self._launch(job_id)

    def _stage(self, job_id: str, name: str = "frames") -> Stage:
        return Stage(self.settings.state_dir / "jobs" / job_id / name)

    def _inputs(self, spec: pb.JobSpec) -> tuple[Path, Path | None, Path | None]:
        root, confined = self.settings.output_root, self.settings.host not in LOCAL_HOSTS
        color = readable_input(root, spec.input, "input", confined)
        depth = readable_input(root, spec.depth, "depth", confined) if spec.depth else None
        normals = readable_input(root, spec.normals, "normals", confined) if spec.normals else None
        return color, depth, normals

    async def submit(self, spec: pb.JobSpec) -> pb.Job:
        resolved = resolve(spec.config, self.models, self.settings)
        if spec.fps < 0:
            raise InvalidInput(f"job fps={spec.fps}: give a positive frame rate, or 0 for the input's")
        target = output_target(safe_output(self.settings.output_root, spec.output), spec.format)
        job_input = await asyncio.to_thread(JobInput, *self._inputs(spec), spec.fps)
        stored = pb.JobSpec()
        stored.CopyFrom(spec)
        stored.config.CopyFrom(resolved.effective)  # the drawn seed too: a resumed job repeats the same run
        stored.fps = spec.fps or job_input.clip.fps
        job_id = f"j-{uuid.uuid4().hex[:12]}"
        self.store.create(job_id, stored, str(target))
        job = self.store.update(job_id, frames_total=job_input.clip.num_frames)
        log.info("job %s submitted: %s -> %s, %d frames", job_id, spec.input, target, job_input.clip.num_frames)
        self._launch(job_id)
        return job

    def _launch(self, job_id: str) -> None:
        self.tasks[job_id] = asyncio.create_task(self._run(job_id))

    async def _run(self, job_id: str) -> None:
        job = self.store.get(job_id)
        spec, stage = job.spec, self._stage(job_id)
        store: FrameStore | None = None
        try:
            resolved = resolve(spec.config, self.models, self.settings)
            job_input = await asyncio.to_thread(JobInput, *self._inputs(spec), spec.fps)
            if not spec.config.HasField("input_fps"):  # the model resamples to its own rate and back
                resolved.config = replace(resolved.config, input_fps=job_input.clip.fps)
                if not spec.config.HasField("window"):
                    resolved.config = fit_window_to_rate(resolved.config, resolved.model)
            # sequential windows resume after the recorded ones; anchor pieces may read any frame
            first = 0 if resolved.config.chaining == "anchors" else len(self.store.windows(job_id))
            store = FrameStore(self.settings.state_dir / "spill" / job_id, self.settings.session_memory_mb * 2**20,
                               resolved.config.window, resolved.config.overlap, first_window=first,
                               allocate=self.buffers.allocate, free=self.buffers.free)
            self.publish(self.store.update(job_id, state=pb.RUNNING, frames_total=job_input.clip.num_frames))
            if resolved.config.chaining == "anchors":
                await AnchoredJob(job_id, resolved, self.scheduler, self.store, stage, self._stage(job_id, "anchors"),
                                  self.publish, lambda p, e: self._on_event(job_id, p.window, e)).run(job_input, store)
            else:
                source = JobSource(job_input, resolved.config.window, resolved.config.overlap, store, first)
                await run_windows(job_id, False, resolved, self.scheduler, source, StageSink(self, job_id, stage),
                                  lambda w, e: self._on_event(job_id, w, e), first=first)
            await asyncio.to_thread(write_output, stage, job_input.clip.num_frames, Path(job.output), spec.fps)
            stage.remove()
            self.publish(self.store.update(job_id, state=pb.SUCCEEDED))
            log.info("job %s succeeded: %s", job_id, job.output)
        except asyncio.CancelledError:
            if self.stopping:
                raise  # the daemon is shutting down: the job stays RUNNING and resumes at the next start
            self.publish(self.store.update(job_id, state=pb.CANCELLED, error="cancelled by a client"))
            stage.remove()
            self._stage(job_id, "anchors").remove()
        except ClientError as e:
            log.error("job %s failed: %s", job_id, e)
            self.publish(self.store.update(job_id, state=pb.FAILED, error=str(e)))
        except Exception as e:  # a bug or an I/O error fails this job, not the daemon
            log.exception("job %s failed", job_id)
            self.publish(self.store.update(job_id, state=pb.FAILED, error=f"{type(e).__name__}: {e}"))
        finally:
            if store is not None:
                store.close()
            self.tasks.pop(job_id, None)

    def _on_event(self, job_id: str, window: Window, event: dict) -> None:
        kind = PROGRESS_KINDS.get(event["kind"])
        if kind is not None:
            progress = pb.Progress(kind=kind, window=window.index, first_frame=window.start, end_frame=window.end,
                                   step=event.get("step", 0), num_steps=event.get("num_steps", 0),
                                   queue_position=event.get("position", 0))
            self.publish(self.store.get(job_id), progress)

    def publish(self, job: pb.Job, progress: pb.Progress | None = None) -> None:
        for queue in self.watchers.get(job.id, []):
            queue.put_nowait(pb.JobEvent(job=job, progress=progress))

    def _get(self, job_id: str) -> pb.Job:
        job = self.store.get(job_id)
        if job is None:
            raise ClientError(f"no job {job_id!r} on this daemon; ListJobs shows the known ones", code=grpc.StatusCode.NOT_FOUND)
        return job

    async def watch(self, job_id: str) -> AsyncIterator[pb.JobEvent]:
        job = self._get(job_id)
        queue: asyncio.Queue = asyncio.Queue()
        self.watchers.setdefault(job_id, []).append(queue)
        try:
            yield pb.JobEvent(job=job)
            while job.state not in TERMINAL:
                event = await queue.get()
                job = event.job
                yield event
        finally:
            self.watchers[job_id].remove(queue)

    async def cancel(self, job_id: str) -> pb.Job:
        job = self._get(job_id)
        task = self.tasks.get(job_id)
        if task is not None:
            self.scheduler.drop_owner(job_id)
            await self.cancel_running(job_id)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        elif job.state not in TERMINAL:
            self.publish(self.store.update(job_id, state=pb.CANCELLED, error="cancelled by a client"))
        return self.store.get(job_id)

    def list(self) -> list[pb.Job]:
        return self.store.list()

    async def stop(self) -> None:
        """Stop running jobs without touching their state, so the next daemon resumes them."""
        self.stopping = True
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
