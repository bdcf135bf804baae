"""An engine group (2 gloo processes, CPU) whose follower fails mid-window: no hang, a fresh group, a clear error.

The real ``Engine`` leads a real group in this process (rank 0, as in tests/test_daemon_engine_oom.py) over
its real ZeroMQ sockets; rank 1 is the real follower with a fault injected at its first denoising step
(tests/engine_group_rank.py): it raises, is SIGKILLed, or runs out of memory as CUDA reports it. Rank 0
is then waiting in that step's collective.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zmq

from c2r.daemon import engine as engine_module
from c2r.daemon.engine_messages import RunWindow, WindowError, WindowResult
from c2r.daemon.ipc import unpack
from c2r.models.backend import GBuffers, RealifyConfig, WindowRequest
from c2r.models.backends import create_backend
from c2r.models.parallel import group
from c2r.models.windows import Window

RANK = Path(__file__).with_name("engine_group_rank.py")
CONFIG = RealifyConfig(steps=2, guidance=1.0, window=17, overlap=5, resolution="native", seed=7)


def clip() -> GBuffers:
    return GBuffers(color=np.random.default_rng(0).integers(0, 256, (17, 32, 32, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """The window on one process: what the group must return once it works again."""
    backend = create_backend("tiny")
    backend.load("cpu")
    return backend.realify_window(WindowRequest(clip(), CONFIG, None, Window(0, 0, 17, 0)))


class GroupEngine:
    """An in-process engine leading a 2-rank group whose followers fail as ``faults`` says, one per generation."""

    def __init__(self, tmp_path: Path, monkeypatch, faults: list):
        marks = tmp_path / "marks"
        marks.mkdir()
        monkeypatch.setenv("C2R_TEST_GROUP_FAULTS", json.dumps(faults))
        monkeypatch.setenv("C2R_TEST_GROUP_MARKS", str(marks))
        monkeypatch.setattr(group, "FOLLOWER", [str(RANK)])
        self.marks = marks
        self.ctx = zmq.Context()
        requests, self.events = self.ctx.socket(zmq.PUSH), self.ctx.socket(zmq.PULL)
        args = engine_module.parse_args([
            "--requests", f"tcp://127.0.0.1:{requests.bind_to_random_port('tcp://127.0.0.1')}",
            "--events", f"tcp://127.0.0.1:{self.events.bind_to_random_port('tcp://127.0.0.1')}",
            "--preview", "tcp://127.0.0.1:9", "--model", "tiny", "--device", "cpu", "--parent", str(os.getpid()),
            "--ranks", "2"])
        self.engine = engine_module.Engine(args, self.ctx)
        self.engine.backend_for("tiny", "")
        self.ids = iter(range(1, 100))

    def run(self) -> tuple[WindowResult | WindowError, float]:
        started = time.monotonic()
        self.engine.run_request(RunWindow(next(self.ids), "s-test", "tiny", "", WindowRequest(clip(), CONFIG, None, Window(0, 0, 17, 0))))
        while self.events.poll(1000):
            message = unpack(self.events.recv_multipart())
            if isinstance(message, WindowResult | WindowError):
                return message, time.monotonic() - started
        raise AssertionError("the engine sent no result")

    @property
    def generations(self) -> int:
        return len(list(self.marks.iterdir()))

    def close(self) -> None:
        self.engine.group.teardown()
        self.ctx.destroy(linger=0)


@pytest.fixture
def make_engine(tmp_path, monkeypatch):
    engines = []

    def make(faults: list) -> GroupEngine:
        engines.append(GroupEngine(tmp_path, monkeypatch, faults))
        return engines[-1]

    yield make
    for e in engines:
        e.close()


def close_to(frames: np.ndarray, reference: np.ndarray) -> bool:
    return frames.shape == reference.shape and int(np.abs(frames.astype(int) - reference.astype(int)).max()) <= 1


def test_a_killed_rank_is_replaced_and_the_window_retried(make_engine, reference):
    e = make_engine(["kill"])
    message, seconds = e.run()
    assert isinstance(message, WindowResult), message
    assert close_to(message.frames, reference)  # the retry on the fresh group returns the right frames
    assert e.generations == 2 and seconds < 60


def test_a_rank_that_raises_twice_fails_the_window_clearly_then_the_group_serves_again(make_engine, reference):
    e = make_engine(["raise", "raise"])
    failed, seconds = e.run()
    assert isinstance(failed, WindowError) and failed.code == "unavailable", failed
    assert "rank 1 failed: RuntimeError: injected failure on rank 1" in failed.message
    assert "still serving" in failed.message and seconds < 60
    again, _ = e.run()  # the third group has no fault: the engine serves on
    assert isinstance(again, WindowResult) and close_to(again.frames, reference)
    assert e.generations == 3


def test_an_oom_on_a_rank_retries_one_offload_lower_then_says_what_to_lower(make_engine, reference):
    e = make_engine(["oom", None])
    message, _ = e.run()
    assert isinstance(message, WindowResult) and close_to(message.frames, reference)
    assert e.engine.offload == "model"  # every rank reloaded one strategy lower
    assert e.generations == 2


def test_a_second_oom_in_a_group_is_reported_with_what_to_lower(make_engine):
    e = make_engine(["oom", "oom"])
    message, seconds = e.run()
    assert isinstance(message, WindowError) and message.code == "oom", message
    assert "offload model" in message.message and "--gpus-per-window than 2" in message.message
    assert e.generations == 2 and seconds < 60


def test_an_oom_on_rank_0_tears_the_group_down_and_retries_one_offload_lower(make_engine, reference, monkeypatch):
    e = make_engine([])  # followers without faults: they wait in the step's collective for rank 0
    agreed, failures = group._agreed_step, [1]

    def leader_runs_out(on_step, leader):
        step = agreed(on_step, leader)

        def run(event):
            if leader and failures and event.step >= 1:
                failures.pop()
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected on rank 0)")
            step(event)
        return run

    monkeypatch.setattr(group, "_agreed_step", leader_runs_out)
    message, seconds = e.run()
    assert isinstance(message, WindowResult) and close_to(message.frames, reference), message
    assert e.engine.offload == "model" and e.generations == 2 and seconds < 60
