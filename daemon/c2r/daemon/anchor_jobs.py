"""A job with ``chaining anchors``: anchor clips first, then every chunk, each stage all at once.

The plan is ``c2r.models.anchors``. All pieces of a stage are submitted to the scheduler
together, so a pool of K engines (or a Ray cluster, ``cluster``) runs K of them at a time;
the only wait is between the stages (a chunk needs both its anchors). Each finished piece is
staged and recorded like a sequential job's window (the job store's ``windows`` rows, by
piece index): a daemon killed at any point resumes with the pieces not yet recorded, and
the anchors' whole clips (the context frame too) are kept in their own stage for the
chunks still to run, so the output has every frame exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from c2r.models.anchors import Piece, emitted, piece_request, plan_anchors
from c2r.v1 import coarse2real_pb2 as pb

from .frame_store import FrameStore
from .job_io import JobInput, Stage
from .job_store import JobStore
from .scheduler import WindowScheduler, WindowTask
from .session_config import ResolvedSession

log = logging.getLogger("c2r.daemon")
Publish = Callable[[pb.Job, pb.Progress | None], None]
EventFn = Callable[[Piece, dict], None]


class AnchoredJob:
    def __init__(self, job_id: str, resolved: ResolvedSession, scheduler: WindowScheduler, store: JobStore,
                 stage: Stage, anchor_stage: Stage, publish: Publish, on_event: EventFn):
        self.job_id, self.resolved, self.scheduler, self.store = job_id, resolved, scheduler, store
        self.stage, self.anchor_stage, self.publish, self.on_event = stage, anchor_stage, publish, on_event

    async def run(self, job_input: JobInput, frames: FrameStore) -> None:
        config = self.resolved.config
        plan = plan_anchors(job_input.clip.num_frames, config.window, config.anchor_every)
        await asyncio.to_thread(lambda: [frames.put(f) for f in job_input.frames(0)])  # pieces read anywhere
        done = {index for index, _, _ in self.store.windows(self.job_id)}
        for stage in (plan.anchor_clips, plan.chunks):
            pieces = [asyncio.ensure_future(self._piece(p, frames)) for p in stage if p.index not in done]
            try:
                await asyncio.gather(*pieces)
            except BaseException:  # one piece failed (or the job was cancelled): none of the others goes on
                for piece in pieces:
                    piece.cancel()
                self.scheduler.drop_owner(self.job_id)
                raise
        self.anchor_stage.remove()

    async def _piece(self, piece: Piece, frames: FrameStore) -> None:
        request = await asyncio.to_thread(piece_request, piece, frames.frames(piece.start, piece.end), self.resolved.config,
                                          self.anchor_stage.get)
        task = WindowTask(self.job_id, False, self.resolved.model, self.resolved.lora, request,
                          on_event=lambda event: self.on_event(piece, event))
        self.on_event(piece, {"kind": "queued", "position": self.scheduler.submit(task)})
        result = await task.result
        out = result.frames

        def stage_it() -> None:
            if piece.kind == "anchor":
                for i, frame in enumerate(out):
                    self.anchor_stage.put(piece.start + i, frame)
            for i, frame in enumerate(emitted(piece, out, self.anchor_stage.get)):
                self.stage.put(piece.emit_start + i, frame)

        await asyncio.to_thread(stage_it)
        self.store.window_done(self.job_id, piece.index, piece.emit_start, piece.emit_end)
        finished = sum(end - start for _, start, end in self.store.windows(self.job_id))
        job = self.store.update(self.job_id, frames_done=finished)
        log.info("job %s: %s %d done (frames %d-%d) in %.2f s", self.job_id, piece.kind, piece.index, piece.emit_start,
                 piece.emit_end - 1, result.seconds)
        self.publish(job, pb.Progress(kind=pb.Progress.WINDOW_DONE, window=piece.index, first_frame=piece.start,
                                      end_frame=piece.end, frames_returned=finished))
