"""Batch jobs on a real local Ray cluster (127.0.0.1, 2 CPU workers): pieces run there, a killed worker's
window is retried, the output has one frame per input frame."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from c2r.models.anchors import plan_anchors
from c2r.v1 import coarse2real_pb2 as pb
from daemon_process import start_daemon
from daemon_wire import job_spec, make_input, read_sequence, session_config, wait_terminal

FRAMES = 41
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # Ray otherwise swaps 127.0.0.1 for the machine's address


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster(monkeypatch):
    """`ray start --head` on 127.0.0.1: 2 CPUs, a 200 MB object store, no dashboard; killed with its process group."""
    for name, value in LOOPBACK.items():
        monkeypatch.setenv(name, value)  # the daemon started below inherits it
    temp = Path(tempfile.mkdtemp(prefix="c2r-ray-", dir="/tmp"))  # Ray's socket paths must stay short
    port = free_port()
    ray = Path(sys.executable).with_name("ray")
    cmd = [str(ray), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
           "--num-cpus", "2", "--num-gpus", "0", "--object-store-memory", str(200 * 10**6), "--include-dashboard",
           "false", "--disable-usage-stats", "--temp-dir", str(temp)]
    log = open(temp / "head.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 90
    try:
        while b"ray start --address" not in (temp / "head.log").read_bytes() and b"Ray runtime started" not in (temp / "head.log").read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, (temp / "head.log").read_text(errors="replace")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def test_anchor_job_on_ray_survives_a_killed_worker(tmp_path, ray_cluster):
    inputs = make_input(tmp_path / "input", count=FRAMES, fps=16.0)
    d = start_daemon(tmp_path / "d", "--ray", ray_cluster)
    try:
        log = d.log()
        pids = {int(i): int(p) for i, p in re.findall(r"ray worker (\d+) is pid (\d+)", log)}
        assert len(pids) == 2 and "2 window worker(s) (1 CPU each)" in log
        spec = job_spec(*inputs, "shot", steps=6)
        spec.config.CopyFrom(session_config(steps=6, window=17, overlap=5, chaining="anchors", anchor_every=16))
        job = d.stub().SubmitJob(spec)
        plan = plan_anchors(FRAMES, 17, 16)
        chunk_running = re.compile(rf"ray worker (\d+): window (\d+) of {job.id} running")
        deadline = time.monotonic() + 120
        while not (hits := [int(w) for w, i in chunk_running.findall(d.log()) if int(i) >= len(plan.anchors)]):
            assert time.monotonic() < deadline, d.log()
            time.sleep(0.02)
        victim = hits[0]
        os.kill(pids[victim], signal.SIGKILL)  # a worker dies in the middle of a chunk
        done = wait_terminal(d, job.id)
        log = d.log()
    finally:
        d.stop()
    assert done.state == pb.SUCCEEDED, done.error
    assert re.search(rf"ray worker {victim} died on window \d+ of {job.id}; retrying it once", log), log
    ran = {int(w) for w in re.findall(rf"ray worker \d+ \(pid \d+\): window (\d+) of {job.id}", log)}
    assert ran == {p.index for p in plan.pieces}  # every piece ran on the cluster
    assert len(read_sequence(d.output_root / "shot")) == FRAMES


def test_cancelling_a_job_stops_its_running_window_on_the_worker(tmp_path, ray_cluster):
    inputs = make_input(tmp_path / "input", count=FRAMES, fps=16.0)
    d = start_daemon(tmp_path / "d", "--ray", ray_cluster)
    try:
        spec = job_spec(*inputs, "long", steps=2000)  # far longer than the test waits
        spec.config.CopyFrom(session_config(steps=2000, window=17, overlap=5))
        job = d.stub().SubmitJob(spec)
        running = re.compile(rf"ray worker (\d+): window 0 of {job.id} running")
        deadline = time.monotonic() + 60
        while not (hit := running.search(d.log())):
            assert time.monotonic() < deadline, d.log()
            time.sleep(0.05)
        time.sleep(3)  # the worker loads the model and is stepping
        cancelled_at = time.monotonic()
        assert d.stub().CancelJob(pb.JobRef(id=job.id)).state == pb.CANCELLED
        stopped = re.compile(rf"ray worker {hit.group(1)}: window 0 of {job.id} stopped: .*cancelled at step (\d+) of 2000")
        while not (line := stopped.search(d.log())):
            assert time.monotonic() - cancelled_at < 30, d.log()
            time.sleep(0.05)
        # the worker is free again (its cancel flag does not stick): a 3-window job uses both workers and succeeds
        after = job_spec(*inputs, "after", steps=2)
        after.config.CopyFrom(session_config(steps=2, window=17, overlap=5))
        done = wait_terminal(d, d.stub().SubmitJob(after).id)
        log = d.log()
    finally:
        d.stop()
    assert int(line.group(1)) < 2000
    assert done.state == pb.SUCCEEDED, done.error
    workers = set(re.findall(rf"ray worker (\d+) \(pid \d+\): window \d+ of {done.id}", log))
    assert hit.group(1) in workers, log
    assert not re.search(rf"window 0 of {job.id} in [\d.]+ s", log)  # the cancelled window never finished
    assert len(read_sequence(d.output_root / "after")) == FRAMES
