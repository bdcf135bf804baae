"""A daemon that survives its engine and its own death: engine SIGKILL / SIGSTOP, daemon SIGKILL mid-job.

All tests share one private daemon (started with a token, a 3 s heartbeat timeout and no
frame memory, so every received frame goes through the disk spill), because they kill
things; the last one kills the daemon itself and restarts it on the same state.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time

import grpc
import numpy as np
import pytest

from c2r.v1 import coarse2real_pb2 as pb
from daemon_process import start_daemon
from daemon_wire import Driver, collect, finals, frame, job_spec, make_input, read_sequence, session_config, stream, wait_terminal

TOKEN = "test-token"
PRIVATE_FLAGS = ("--heartbeat-timeout", "3", "--session-memory-mb", "0")


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    base = tmp_path_factory.mktemp("recovery")
    holder = {"daemon": start_daemon(base, *PRIVATE_FLAGS, token=TOKEN), "base": base}
    yield holder
    holder["daemon"].stop()


def run_with(d, signal_at_step, count: int = 17, steps: int = 3):
    """Stream ``count`` frames; at the first denoising step call ``signal_at_step(engine_pid)``."""
    driver = Driver(d.stub(), session_config(steps=steps), metadata=d.metadata)
    for i in range(count):
        driver.send(pb.ClientMessage(frame=frame(i)))
    driver.send(pb.ClientMessage(end=pb.EndOfStream()))
    driver.until_step()
    signal_at_step(d.engine_pid())
    return driver


def test_token_is_required_on_every_call(private):
    d = private["daemon"]
    for metadata, words in (((), "missing authorization"), ((("authorization", "Bearer nope"),), "wrong token")):
        with pytest.raises(grpc.RpcError) as e:
            d.stub().GetInfo(pb.InfoRequest(protocol_major=1), metadata=metadata)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and words in e.value.details()
        messages, error = collect(d.stub().Realify(stream(session_config(), [frame(0)]), metadata=metadata))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert d.stub().GetInfo(pb.InfoRequest(protocol_major=1), metadata=d.metadata).device == "cpu"


def _main_thread_wakeups(pid: int) -> int:
    status = open(f"/proc/{pid}/task/{pid}/status").read()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("voluntary_ctxt_switches")))


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and relies on pidfd_open, both Linux")
def test_an_idle_front_end_wakes_about_once_a_second_and_still_restarts_a_killed_engine_at_once(tmp_path):
    """Default --heartbeat-timeout 30: heartbeats every 2 s and a look every 2 s, not 4 wakeups a second; a killed
    engine is seen through its pidfd, not at the next look."""
    d = start_daemon(tmp_path)
    try:
        engine = d.engine_pid()
        args = open(f"/proc/{engine}/cmdline").read().split("\0")
        assert args[args.index("--heartbeat-interval") + 1] == "2", args
        time.sleep(1)
        before = _main_thread_wakeups(d.proc.pid)
        time.sleep(6)
        woke = _main_thread_wakeups(d.proc.pid) - before
        assert woke <= 10, f"the idle front end's event loop woke {woke} times in 6 s (a heartbeat and a look every 2 s: ~6)"
        os.kill(engine, signal.SIGKILL)
        killed = time.monotonic()
        while d.engine_pid() == engine:
            assert time.monotonic() - killed < 1.5, "the killed engine was not replaced within 1.5 s"
            time.sleep(0.01)
        assert time.monotonic() - killed < 0.5, f"replaced after {time.monotonic() - killed:.2f} s: the pidfd was not used"
        assert "exited with code -9" in d.log()
    finally:
        d.stop()


@pytest.mark.parametrize("sig, logged", [(signal.SIGKILL, "exited with code -9"), (signal.SIGSTOP, "no heartbeat")])
def test_engine_failure_mid_window_is_recovered(private, sig, logged):
    d = private["daemon"]
    before = d.engine_pid()
    driver = run_with(d, lambda pid: os.kill(pid, sig))
    messages, error = driver.rest()
    assert error is None, error
    assert [r.index for r in finals(messages)] == list(range(17)), "the window is retried: every frame comes back once"
    assert d.engine_pid() != before
    assert logged in d.log()
    assert not any((d.state_dir / "spill").iterdir()), "spilled frames are deleted with their session"


def test_second_failure_of_a_window_gives_unavailable_and_daemon_keeps_serving(private):
    d = private["daemon"]
    # many steps: both attempts are killed at their first step, long before they could finish
    first = d.engine_pid()
    driver = run_with(d, lambda pid: os.kill(pid, signal.SIGKILL), count=5, steps=12)
    # the retry on the fresh engine: its steps count from 1 again (step events the killed engine sent before
    # it died may still be queued, and must not be taken for the retry's)
    last = 1
    while (step := driver.until_step()[-1].progress.step) > last:
        last = step
    first_retry = d.engine_pid()
    assert first_retry != first
    os.kill(first_retry, signal.SIGKILL)
    messages, error = driver.rest()
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE, error
    assert "failed twice" in error.details() and "still serving" in error.details()
    assert d.engine_pid() != first_retry
    messages, error = collect(d.stub().Realify(stream(session_config(), [frame(0)]), metadata=d.metadata))
    assert error is None and [r.index for r in finals(messages)] == [0]


def test_daemon_sigkilled_mid_job_resumes_without_losing_or_duplicating_frames(private):
    d = private["daemon"]
    video, depth = make_input(private["base"] / "input")
    steps = 4  # window 1 runs for a while after window 0 is recorded: the kill lands inside it
    job = d.stub().SubmitJob(job_spec(video, depth, "shots/resumed", steps), metadata=d.metadata)
    assert job.frames_total == 29 and job.state in (pb.PENDING, pb.RUNNING)
    for event in d.stub().WatchJob(pb.JobRef(id=job.id), metadata=d.metadata, timeout=300):
        if event.progress.kind == pb.Progress.WINDOW_DONE:
            break  # window 0 of 2 is recorded: kill the daemon while window 1 runs
    d.kill(signal.SIGKILL)
    d = private["daemon"] = start_daemon(private["base"], *PRIVATE_FLAGS, token=TOKEN,
                                         state_dir=d.state_dir, output_root=d.output_root)
    listed = {j.id: j for j in d.stub().ListJobs(pb.ListJobsRequest(), metadata=d.metadata).jobs}
    assert job.id in listed and listed[job.id].frames_done >= 17
    assert "resuming job" in d.log()
    done = wait_terminal(d, job.id)
    assert done.state == pb.SUCCEEDED, done.error
    assert done.frames_done == 29
    names = sorted(p.name for p in (d.output_root / "shots" / "resumed").iterdir())
    assert names == [f"{i:05d}.png" for i in range(29)], "every frame exactly once"
    with sqlite3.connect(d.state_dir / "jobs.sqlite3") as db:
        windows = db.execute("SELECT window, first_frame, end_frame FROM windows WHERE job_id = ? ORDER BY window", (job.id,)).fetchall()
    assert windows == [(0, 0, 17), (1, 17, 29)]
    # The same job uninterrupted (same stored seed) gives the same frames: the resume was seamless.
    again = d.stub().SubmitJob(job_spec(video, depth, "shots/straight", steps), metadata=d.metadata)
    assert wait_terminal(d, again.id).state == pb.SUCCEEDED
    resumed, straight = read_sequence(d.output_root / "shots" / "resumed"), read_sequence(d.output_root / "shots" / "straight")
    assert len(straight) == 29 and all(np.array_equal(a, b) for a, b in zip(resumed, straight))
