"""Anchor-parallel jobs on a real daemon with 2 CPU engines: concurrent pieces, 1:1 frames, resume."""

from __future__ import annotations

import re
import time

import grpc
import numpy as np
import pytest

from c2r.models.anchors import plan_anchors
from c2r.v1 import coarse2real_pb2 as pb
from daemon_process import start_daemon
from daemon_wire import Driver, job_spec, make_input, read_sequence, session_config, wait_terminal

FRAMES = 41  # anchors at 16 and 32: two anchor clips, three chunks
RAN = re.compile(r"engine\[(\d+)\] INFO window (\d+) of (j-\w+): .* \(ran ([\d.]+)-([\d.]+)\)")


def anchored_spec(inputs, output: str) -> pb.JobSpec:
    spec = job_spec(*inputs, output, steps=3)
    spec.config.CopyFrom(session_config(steps=3, window=17, overlap=5, chaining="anchors", anchor_every=16))
    return spec


def frames_done(d, job_id: str) -> int:
    return next(j.frames_done for j in d.stub().ListJobs(pb.ListJobsRequest()).jobs if j.id == job_id)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_input(tmp_path_factory.mktemp("anchor-input"), count=FRAMES, fps=16.0)


def test_anchor_job_runs_pieces_concurrently_and_resumes_after_a_kill(tmp_path, inputs):
    state = tmp_path / "state"
    d = start_daemon(tmp_path / "a", "--engines", "2", state_dir=state, output_root=tmp_path / "out")
    try:
        whole = wait_terminal(d, d.stub().SubmitJob(anchored_spec(inputs, "whole")).id)
        assert whole.state == pb.SUCCEEDED, whole.error
        ran = [(int(pid), int(w), float(s), float(e)) for pid, w, job, s, e in RAN.findall(d.log()) if job == whole.id]
        killed = d.stub().SubmitJob(anchored_spec(inputs, "resumed"))
        deadline = time.monotonic() + 120
        while frames_done(d, killed.id) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        done_before_kill = frames_done(d, killed.id)
    finally:
        d.kill()
    assert 0 < done_before_kill < FRAMES
    frames = read_sequence(tmp_path / "out" / "whole")
    assert len(frames) == FRAMES  # one frame out per frame in
    plan = plan_anchors(FRAMES, 17, 16)
    assert sorted(w for _, w, _, _ in ran) == [p.index for p in plan.pieces]
    anchors = [r for r in ran if r[1] < len(plan.anchors)]
    chunks = [r for r in ran if r[1] >= len(plan.anchors)]
    # the two anchor clips ran at the same time on the two engines, and every chunk after every anchor
    (_, _, s0, e0), (_, _, s1, e1) = anchors
    assert s0 < e1 and s1 < e0 and anchors[0][0] != anchors[1][0]
    assert min(s for _, _, s, _ in chunks) >= max(e for _, _, _, e in anchors)

    d = start_daemon(tmp_path / "b", "--engines", "2", state_dir=state, output_root=tmp_path / "out")
    try:
        resumed = wait_terminal(d, killed.id)
        log = d.log()
    finally:
        d.stop()
    assert resumed.state == pb.SUCCEEDED, resumed.error
    rerun = {int(w) for _, w, job, _, _ in RAN.findall(log) if job == killed.id}
    assert rerun and len(rerun) < len(plan.pieces)  # only the pieces not recorded before the kill ran again
    again = read_sequence(tmp_path / "out" / "resumed")
    assert len(again) == FRAMES
    for a, b in zip(frames, again):
        np.testing.assert_array_equal(a, b)  # the same frames as the uninterrupted run


def test_a_live_session_refuses_anchor_chaining(daemon):
    driver = Driver(daemon.stub(), session_config(chaining="anchors"))
    _, error = driver.rest()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "submit the clip as a job" in error.details()
