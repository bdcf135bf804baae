"""The engine process: owns the device and the model, runs one window at a time.

Started by ``engine_client.EngineClient`` as ``python -m c2r.daemon.engine``; it connects a
PULL socket (requests), PUSH sockets (events) and a PUB socket (previews, into the front
end's relay) to the front end. A heartbeat thread speaks on its own socket from the first instant, before
torch is even imported, so the front end can tell a slow start from a hang; it also exits
the process when the front end is gone, so a killed daemon never leaves an engine behind.

An input thread reads the request socket into a queue the moment anything arrives (the
vLLM v1 engine-core shape): windows queue in order, a ``CancelWindow`` marks its window
cancelled and a ``Stop`` cancels the running one, so neither waits behind a running window
nor is consumed and dropped. Busy loop: take a window, run it through
``Backend.realify_window`` (step callback -> events, and raises ``Cancelled`` once its window
is cancelled), send the frames back, publish them for preview. Messages: ``engine_messages``. A CUDA out-of-memory reloads the model with the
next lower-memory strategy and retries once before reporting "oom", in an engine group too
(an OOM on any rank tears the group down; the retry runs on a fresh group, every rank one
strategy lower). A group whose other rank failed or died (``GroupFailed``) is torn down and
the window retried once on a fresh group; failing again reports "unavailable".

Preview framing (viewers SUBscribe to the relay's address, GetInfo.preview_address): three frames per message:
topic = session id (utf-8), header = JSON {"session", "index", "height", "width",
"preview" (bool: progressive estimate), "step"}, body = raw RGB8 bytes, row 0 at the top.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import resource
import sys
import threading
import time
from typing import Callable

import numpy as np
import zmq

from c2r.daemon.engine_messages import (CancelWindow, Fatal, Heartbeat, Hello, Loaded, RunWindow, Stop, WindowError, WindowEvent,
                                        WindowResult, preview_share)
from c2r.daemon.ipc import Mapped, SharedArrays, pack, unpack

log = logging.getLogger("c2r.engine")
INLINE_BYTES = 2 * 2**20  # frames smaller than this cross as a ZeroMQ frame, larger ones in shared memory (measured: a 1.7 MiB
# message costs the front end 0.9-1.3 ms as a ZeroMQ frame, 1.3-1.8 ms through a segment of its own)


def heartbeat(ctx: zmq.Context, events: str, interval: float, parent: int) -> None:
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(events)
    while True:
        if os.getppid() != parent:
            os._exit(0)
        sock.send_multipart(pack(Heartbeat(os.getpid())))
        time.sleep(interval)


def peak_memory_bytes(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Engine:
    def __init__(self, args: argparse.Namespace, ctx: zmq.Context):
        self.args = args
        self.requests = ctx.socket(zmq.PULL)  # read only by the input thread
        self.requests.connect(args.requests)
        self.events = ctx.socket(zmq.PUSH)
        self.events.setsockopt(zmq.LINGER, 1000)
        self.events.connect(args.events)
        self.preview = ctx.socket(zmq.PUB)
        self.preview.setsockopt(zmq.SNDHWM, 256)
        self.preview.setsockopt(zmq.LINGER, 0)
        self.preview.connect(args.preview)  # the front end's relay (preview.py), which viewers subscribe to
        self.inbox: queue.Queue[tuple[RunWindow | Stop, Mapped | None]] = queue.Queue()  # windows in order (with
        # the front end's window buffers they map), and the final Stop
        self.results = SharedArrays("r-")  # one segment per result, handed to the front end
        self.cancelled: set[int] = set()  # window ids cancelled (maybe before they started); read by the step callback
        self.stopping = threading.Event()
        self.backend = None
        self.backend_key: tuple[str, str] | None = None
        self.offload = "none"
        self.levers = None  # the speed levers the loaded backend was created with
        self.device = self._device(args.device)
        self.group = None  # c2r.models.parallel.group.EngineGroup when this engine leads --ranks > 1 processes
        if args.ranks > 1:
            from c2r.models.parallel.group import EngineGroup

            self.group = EngineGroup(args.ranks, cpu=not self.device.startswith("cuda"))

    @staticmethod
    def _device(wanted: str) -> str:
        from c2r.models.device import resolve_device

        return resolve_device(wanted)

    def read_requests(self) -> None:
        """The input thread: every request off the socket at once, so none waits behind a running window."""
        while True:
            mapped = Mapped(copy_out=False)
            message = unpack(self.requests.recv_multipart(copy=False), writable=True, mapped=mapped)
            if isinstance(message, CancelWindow):
                self.cancelled.add(message.id)
            elif isinstance(message, Stop):
                self.stopping.set()
                self.inbox.put((message, None))
                return
            else:
                self.inbox.put((message, mapped))

    def send(self, message) -> None:
        self.events.send_multipart(pack(message), copy=False)

    def hello(self) -> None:
        from c2r.models.backends import available_models

        self.send(Hello(os.getpid(), self.device, list(available_models()), self.backend_key[0] if self.backend_key else ""))

    def backend_for(self, model: str, lora: str, offload: str | None = None):
        key = (model, lora)
        group_down = self.group is not None and not self.group.up  # torn down after a failure: load on a fresh one
        if self.backend_key != key or (offload is not None and offload != self.offload) or group_down:
            from c2r.models.backends import create_backend
            from c2r.models.memory_plan import levers_for

            if self.backend is not None:
                self.backend.unload()
                self.backend = None
            if self.group is not None:  # every rank loads it, sequence parallel; no offload unless after an OOM
                self.backend, self.backend_key = None, None
                self.offload = offload or "none"
                backend = self.group.load(model, lora, self.offload)
            else:
                levers = levers_for(self.device, model)  # kernels, compile, tiling, offload for this GPU and model
                path = self.args.model_path if model == self.args.model else None  # the folder holds --model only
                backend = create_backend(model, lora=lora or None, levers=levers, model_path=path)
                self.levers = levers
                self.offload = offload or levers.offload
                backend.load(self.device, "bfloat16" if self.device.startswith("cuda") else "float32", self.offload)
            self.backend, self.backend_key = backend, key
            self.send(Loaded(os.getpid(), model))
        return self.backend

    def start(self) -> None:
        """Load the default model; a failure here (no CUDA, weights missing) is reported once as fatal, not retried."""
        import torch

        try:
            if self.device.startswith("cuda") and not torch.cuda.is_available():
                raise RuntimeError(f"--device {self.args.device}: no CUDA device is visible to torch; use --device cpu or auto")
            self.backend_for(self.args.model, "")
        except Exception as e:
            log.exception("the engine cannot start")
            self.send(Fatal(os.getpid(), f"{type(e).__name__}: {e}"))
            raise SystemExit(1) from None
        self.hello()

    def serve(self) -> None:
        threading.Thread(target=self.read_requests, name="engine-input", daemon=True).start()
        self.start()
        while True:
            message, mapped = self.inbox.get()
            if isinstance(message, Stop):
                break
            if mapped.missing:  # the front end dropped the window before it ran (its session went away)
                self.send(WindowError(os.getpid(), message.id, "cancelled", f"window buffers gone: {mapped.missing}"))
            else:
                self.run_request(message)
            del message  # the last reference to the window's views: the mapping can go
            mapped.close()
        if self.group is not None:
            self.group.stop()

    def publish(self, session: str, first: int, frames, preview: bool, step: int = 0) -> None:
        for i, frame in enumerate(frames):
            header = {"session": session, "index": first + i, "height": int(frame.shape[0]),
                      "width": int(frame.shape[1]), "preview": preview, "step": step}
            self.preview.send_multipart([session.encode(), json.dumps(header).encode(), frame.tobytes()])

    def run_request(self, run: RunWindow) -> None:
        from c2r.models.backend import Cancelled
        from c2r.models.parallel import GroupFailed

        rid, request, pid = run.id, run.request, os.getpid()
        window, clip = request.window, request.clip

        def on_step(event) -> None:  # the backends' one step callback: events out, a cancel raised in
            if rid in self.cancelled or self.stopping.is_set():
                raise Cancelled(f"window {request.index} of {run.session} cancelled at step {event.step}")
            if event.kind in ("window_started", "window_done"):
                return  # the engine reports those itself, whatever the backend does
            if event.preview is None:
                self.send(WindowEvent(pid, rid, event.kind, event.step, event.num_steps))
                return
            emitted = event.preview[window.prefix_length : window.length]  # what this window contributes (no padding)
            self.publish(run.session, window.emit_start, emitted, True, event.step)
            # only the share the client is shown crosses to the front end (the rest would be copied out and dropped)
            shown = emitted[preview_share(event.step, event.num_steps, request.config.preview_every)]
            self.send_frames(lambda preview: WindowEvent(pid, rid, event.kind, event.step, event.num_steps, preview), shown)

        started, started_at = time.perf_counter(), time.time()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()
        self.send(WindowEvent(pid, rid, "window_started"))
        try:
            frames = self._run_with_oom_retry(run, on_step)
        except Cancelled as e:
            self.send(WindowError(pid, rid, "cancelled", str(e)))
            return
        except ValueError as e:
            self.send(WindowError(pid, rid, "invalid", str(e)))
            return
        except FileNotFoundError as e:  # a model or LoRA whose weights are not on this machine
            self.send(WindowError(pid, rid, "missing", str(e)))
            return
        except MemoryError as e:  # torch.OutOfMemoryError twice, see _run_with_oom_retry
            self.send(WindowError(pid, rid, "oom", str(e)))
            return
        except GroupFailed as e:  # a rank of the engine group failed twice; the group is rebuilt for the next window
            self.send(WindowError(pid, rid, "unavailable", str(e)))
            return
        except Exception as e:  # a model bug must not kill the engine: report it, keep serving
            log.exception("window %s of %s failed", request.index, run.session)
            self.send(WindowError(pid, rid, "internal", f"{type(e).__name__}: {e}"))
            return
        finally:
            self.cancelled.discard(rid)
        seconds = time.perf_counter() - started
        peak = peak_memory_bytes(self.device)
        log.info("window %s of %s: %dx%dx%d frames in %.2f s, peak memory %.0f MiB, offload %s (ran %.3f-%.3f)",
                 request.index, run.session, clip.num_frames, *clip.size, seconds, peak / 2**20, self.offload,
                 started_at, time.time())  # the engine's own wall clock: when windows of several engines overlapped
        self.send_result(rid, frames, seconds, peak)
        self.publish(run.session, window.emit_start, frames[window.prefix_length :], False)

    def send_result(self, rid: int, frames, seconds: float, peak: int) -> None:
        self.send_frames(lambda shared: WindowResult(os.getpid(), rid, shared, seconds, peak), frames)

    def send_frames(self, message: Callable[[np.ndarray], object], frames) -> None:
        """Send ``message(frames)`` with the frames (a result, a preview estimate) in a shared-memory segment of their
        own: the message carries its handle, and the front end copies them out and unlinks it (through a socket,
        a window's frames cost the front end's ZeroMQ thread a read per 8 KiB). Frames under INLINE_BYTES (a preview
        share of a small clip) go as the message's own ZeroMQ frame instead, never pickled: a segment's life (create,
        map, fault in, unmap, unlink, on both sides) costs more than those few reads."""
        if frames.nbytes < INLINE_BYTES:
            self.send(message(np.ascontiguousarray(frames, np.uint8)))
            return
        shared = self.results.allocate({"frames": (frames.shape, np.uint8)})
        np.copyto(shared["frames"], frames)
        self.events.send_multipart(pack(message(shared["frames"]), self.results))
        self.results.forget(shared)

    def plan_window(self, model: str, lora: str, clip, config):
        """The backend loaded with the offload the planner chooses for this window's shape (logged).

        A 480p preview and a 720p final on one card may plan different offloads; a window that fits
        nowhere runs with the lowest-memory plan and a warning (the OOM retry still stands behind it).
        """
        from c2r.models.memory_plan import advice, plan_for_device

        backend = self.backend_for(model, lora)
        plan = plan_for_device(self.device, model, clip.num_frames, *clip.size, config, self.levers,
                               ranks=self.group.world if self.group is not None else 1)
        if plan is None:  # the CPU: nothing to plan
            return backend
        if plan.fits:
            log.info("plan: %s", plan.summary())
        else:
            log.warning("plan: %s; %s", plan.summary(), advice(plan, config))
        if plan.offload != self.offload:
            backend = self.backend_for(model, lora, plan.offload)
        backend.adopt_plan(plan)
        return backend

    def _run_with_oom_retry(self, run: RunWindow, on_step):
        import torch

        from c2r.models.levers import OFFLOADS

        request = run.request
        if self.group is not None:  # every rank runs the window in lockstep, sequence parallel
            backend = self.backend_for(run.model, run.lora)
        else:
            backend = self.plan_window(run.model, run.lora, request.clip, request.config)
        try:
            return self._realify(backend, run, on_step)
        except torch.OutOfMemoryError as first:
            lower = OFFLOADS[min(OFFLOADS.index(self.offload) + 1, len(OFFLOADS) - 1)]
            log.warning("out of GPU memory with offload %s (%s); retrying once with offload %s", self.offload, first, lower)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            backend = self.backend_for(run.model, run.lora, lower)
            try:
                return self._realify(backend, run, on_step)
            except torch.OutOfMemoryError as second:
                clip = request.clip
                more = f", or a larger --gpus-per-window than {self.group.world}" if self.group is not None else ""
                raise MemoryError(
                    f"out of GPU memory for a {clip.num_frames}-frame {clip.size[0]}x{clip.size[1]} window even with "
                    f"offload {lower} ({second}); lower the resolution, the window or use quality 'preview'{more}"
                ) from None

    def _realify(self, backend, run: RunWindow, on_step):
        """The window on this engine, or over its group: a failed group is rebuilt and the window retried once."""
        if self.group is None:
            return backend.realify_window(run.request, on_step)
        from c2r.models.parallel import GroupFailed

        try:
            return self.group.realify_window(backend, run.request, on_step)
        except GroupFailed as first:
            log.warning("%s; retrying window %s of %s once on a fresh group", first, run.request.index, run.session)
            backend = self.backend_for(run.model, run.lora, self.offload)
            try:
                return self.group.realify_window(backend, run.request, on_step)
            except GroupFailed as second:
                raise GroupFailed(f"{second}, twice on window {run.request.index}; the group was restarted and the "
                                  "daemon is still serving: retry, or see the daemon log for that rank's traceback") from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m c2r.daemon.engine")
    p.add_argument("--requests", required=True)
    p.add_argument("--events", required=True)
    p.add_argument("--preview", required=True)
    p.add_argument("--model", default="tiny")
    p.add_argument("--model-path", default=None, help="diffusers-format folder of --model (other models: the HF cache)")
    p.add_argument("--device", default="auto")
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--heartbeat-interval", type=float, default=0.5)
    p.add_argument("--ranks", type=int, default=1, help="processes one window runs over (an engine group)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s engine[%(process)d] %(levelname)s %(message)s")
    ctx = zmq.Context()
    threading.Thread(target=heartbeat, args=(ctx, args.events, args.heartbeat_interval, args.parent), daemon=True).start()
    Engine(args, ctx).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
