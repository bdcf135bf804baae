"""The engine's input thread: requests arriving while a window runs are dispatched, never dropped.

The real ``Engine`` runs in this process on its real ZeroMQ sockets, with a backend double
whose window steps until the step callback cancels it.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import zmq

from c2r.daemon import engine as engine_module
from c2r.daemon.engine_messages import CancelWindow, Hello, RunWindow, Stop, WindowError, WindowResult
from c2r.daemon.ipc import pack, unpack
from c2r.models.backend import Backend, GBuffers, ProgressEvent, RealifyConfig, WindowRequest
from c2r.models.windows import Window

MAX_STEPS = 2000  # 20 s of steps: far more than the cancel needs to arrive


class SteppingBackendDouble(Backend):
    """Steps (10 ms each) until the caller's step callback raises; window 0 of a 'fast' prompt returns at once."""

    def load(self, device="cpu", dtype="float32", offload="none"):
        pass

    def unload(self):
        pass

    def memory_estimate(self, num_frames, height, width, config):
        return 0

    def realify_window(self, request, on_step=None):
        steps = 1 if request.config.prompt == "fast" else MAX_STEPS
        on_step(ProgressEvent.of(request, "window_started"))
        for step in range(1, steps + 1):
            time.sleep(0.01)
            on_step(ProgressEvent.of(request, "step", step))
        return np.zeros((request.clip.num_frames, *request.clip.size, 3), np.uint8)


def run(rid: int, prompt: str) -> RunWindow:
    clip = GBuffers(np.zeros((5, 8, 8, 3), np.uint8))
    return RunWindow(rid, "s-test", "tiny", "", WindowRequest(clip, RealifyConfig(prompt=prompt), None, Window(0, 0, 5, 0)))


def test_a_cancel_and_a_window_sent_mid_window_are_both_dispatched(monkeypatch):
    monkeypatch.setattr("c2r.models.backends.create_backend", lambda model, lora=None, **kw: SteppingBackendDouble())
    ctx = zmq.Context()
    try:
        requests, events = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
        args = engine_module.parse_args([  # the engine's own command line, as the front end builds it
            "--requests", f"tcp://127.0.0.1:{requests.bind_to_random_port('tcp://127.0.0.1')}",
            "--events", f"tcp://127.0.0.1:{events.bind_to_random_port('tcp://127.0.0.1')}",
            "--preview", "tcp://127.0.0.1:9", "--model", "tiny", "--device", "cpu", "--parent", str(os.getpid())])
        engine = engine_module.Engine(args, ctx)
        serving = threading.Thread(target=engine.serve)
        serving.start()
        while not isinstance(unpack(events.recv_multipart()), Hello):  # Loaded, then Hello: the engine takes windows
            pass
        for message in (run(1, "slow"), run(2, "fast"), CancelWindow(1)):
            requests.send_multipart(pack(message))
        outcomes = {}
        while len(outcomes) < 2 and events.poll(30_000):
            message = unpack(events.recv_multipart())
            if isinstance(message, WindowResult | WindowError):
                outcomes[message.id] = message
        requests.send_multipart(pack(Stop()))
        serving.join(30)
        assert not serving.is_alive(), "Stop after the windows ends serve()"
        assert isinstance(outcomes.get(1), WindowError) and outcomes[1].code == "cancelled"
        assert isinstance(outcomes.get(2), WindowResult), "the window queued behind the cancelled one still ran"
    finally:
        ctx.destroy(linger=0)


def test_small_frames_cross_as_a_zeromq_frame_and_large_ones_in_shared_memory():
    """A preview share of a small clip skips the segment's life; a window's result still crosses as a handle."""
    from types import SimpleNamespace

    from c2r.daemon.ipc import Mapped, SharedArrays

    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.bind("inproc://frames")
    push.connect("inproc://frames")
    engine = SimpleNamespace(results=SharedArrays("r-"), events=push)
    engine.send = lambda message: engine_module.Engine.send(engine, message)
    try:
        small = np.arange(96 * 128 * 3, dtype=np.uint8).reshape(1, 96, 128, 3)  # 36 KiB: one preview frame
        large = np.full((4, 480, 640, 3), 7, np.uint8)  # 3.5 MiB
        assert small.nbytes < engine_module.INLINE_BYTES <= large.nbytes
        for frames, through_shm in ((small, False), (large, True)):
            engine_module.Engine.send_frames(engine, lambda f: WindowResult(1, 2, f, 0.5, 0), frames)
            mapped = Mapped(copy_out=True)
            message = unpack(pull.recv_multipart(copy=False), mapped=mapped)
            assert bool(mapped.segments) == through_shm, (frames.shape, list(mapped.segments))
            np.testing.assert_array_equal(message.frames, frames)
            mapped.close()
        assert not engine.results.segments, "the engine forgets each result segment once sent"
    finally:
        engine.results.close()
        ctx.destroy(linger=0)
