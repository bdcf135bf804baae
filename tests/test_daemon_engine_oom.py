"""The engine's out-of-memory policy, in-process: one retry one offload strategy lower, then a clear "oom".

A CPU machine cannot run out of GPU memory on purpose, so a backend double raises torch's
OutOfMemoryError and the real ``Engine`` is driven over its real ZeroMQ sockets.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import zmq

from c2r.daemon import engine as engine_module
from c2r.daemon.engine_messages import RunWindow, WindowError, WindowResult
from c2r.daemon.ipc import unpack
from c2r.models.backend import Backend, GBuffers, RealifyConfig, WindowRequest
from c2r.models.windows import Window


class OutOfMemoryBackendDouble(Backend):
    """Raises CUDA OOM on its first ``failures`` windows; records each load's offload strategy."""

    def __init__(self, failures: int):
        self.failures = failures
        self.offloads: list[str] = []

    def load(self, device="cpu", dtype="float32", offload="none"):
        self.offloads.append(offload)

    def unload(self):
        pass

    def memory_estimate(self, num_frames, height, width, config):
        return 0

    def realify_window(self, request, on_step=None):
        if self.failures:
            self.failures -= 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return np.zeros((request.clip.num_frames, *request.clip.size, 3), np.uint8)


def run_one_window(monkeypatch, failures: int) -> tuple[list[dict], list[str]]:
    double = OutOfMemoryBackendDouble(failures)
    monkeypatch.setattr("c2r.models.backends.create_backend", lambda model, lora=None, **kw: double)
    ctx = zmq.Context()
    try:
        requests, events = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
        args = argparse.Namespace(
            requests=f"tcp://127.0.0.1:{requests.bind_to_random_port('tcp://127.0.0.1')}",
            events=f"tcp://127.0.0.1:{events.bind_to_random_port('tcp://127.0.0.1')}",
            preview="tcp://127.0.0.1:9", model="tiny", device="cpu", ranks=1)
        engine = engine_module.Engine(args, ctx)
        clip = GBuffers(color=np.zeros((5, 16, 16, 3), np.uint8))
        engine.run_request(RunWindow(1, "s-test", "tiny", "", WindowRequest(clip, RealifyConfig(steps=1), None, Window(0, 0, 5, 0))))
        messages = []
        while events.poll(5000):
            messages.append(unpack(events.recv_multipart()))
            if isinstance(messages[-1], WindowResult | WindowError):
                break
        return messages, double.offloads
    finally:
        ctx.destroy(linger=0)


def test_oom_retries_once_with_model_offload(monkeypatch):
    messages, offloads = run_one_window(monkeypatch, failures=1)
    assert offloads == ["none", "model"]
    assert isinstance(messages[-1], WindowResult) and messages[-1].frames.shape == (5, 16, 16, 3)


def test_second_oom_is_reported_with_what_to_lower(monkeypatch):
    messages, offloads = run_one_window(monkeypatch, failures=2)
    assert offloads == ["none", "model"], "exactly one retry"
    last = messages[-1]
    assert isinstance(last, WindowError) and last.code == "oom"
    assert "offload model" in last.message and "lower the resolution" in last.message
