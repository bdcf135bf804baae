"""Batch jobs on the shared daemon: a job to mp4, cancel, and every refusal of a bad path."""

from __future__ import annotations

import os
import stat

import av
import grpc
import pytest

from c2r.v1 import coarse2real_pb2 as pb
from daemon_wire import job_spec, make_input, session_config, wait_terminal


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_input(tmp_path_factory.mktemp("job-input"), count=9, fps=10.0)


def test_job_writes_mp4_with_input_frame_count_and_fps(daemon, inputs):
    spec = job_spec(*inputs, "clips/one.mp4")
    spec.format = pb.MP4
    job = daemon.stub().SubmitJob(spec)
    done = wait_terminal(daemon, job.id)
    assert done.state == pb.SUCCEEDED, done.error
    assert done.output == str(daemon.output_root.resolve() / "clips" / "one.mp4")
    with av.open(done.output) as container:
        stream = container.streams.video[0]
        assert float(stream.average_rate) == pytest.approx(10.0)
        assert sum(1 for _ in container.decode(video=0)) == 9
    assert any(j.id == job.id and j.state == pb.SUCCEEDED for j in daemon.stub().ListJobs(pb.ListJobsRequest()).jobs)


def test_cancel_job(daemon, inputs):
    spec = job_spec(*inputs, "clips/cancelled")
    spec.config.steps = 50
    job = daemon.stub().SubmitJob(spec)
    cancelled = daemon.stub().CancelJob(pb.JobRef(id=job.id))
    assert cancelled.state == pb.CANCELLED
    assert not any((daemon.output_root / "clips" / "cancelled").glob("*.png"))


@pytest.mark.parametrize("output, words", [
    ("../escape.mp4", "'..'"),
    ("/tmp/escape.mp4", "absolute"),
    ("link/escape.mp4", "outside the output root"),
    ("", "empty"),
    ("clip.gif", "unknown type"),
    ("shot\0.mp4", "NUL character"),
])
def test_output_outside_the_root_is_refused(daemon, inputs, tmp_path, output, words):
    link = daemon.output_root / "link"
    if not link.exists():
        link.symlink_to(tmp_path, target_is_directory=True)
    spec = job_spec(*inputs, output)
    spec.format = pb.OUTPUT_FORMAT_UNSPECIFIED  # the type comes from the name
    with pytest.raises(grpc.RpcError) as e:
        daemon.stub().SubmitJob(spec)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in e.value.details()


def test_a_nul_in_an_input_path_is_invalid_argument(daemon, inputs):
    with pytest.raises(grpc.RpcError) as e:
        daemon.stub().SubmitJob(job_spec(str(inputs[0]) + "\0.mp4", inputs[1], "x.mp4"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "NUL character" in e.value.details()


def test_state_folder_and_job_database_are_private_whatever_the_umask(daemon):
    assert os.umask(os.umask(0)) & 0o077 != 0o077, "the test daemon runs under a umask that would leave them readable"
    assert stat.S_IMODE(daemon.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((daemon.state_dir / "jobs.sqlite3").stat().st_mode) == 0o600


def test_missing_input_and_unknown_job(daemon, inputs, tmp_path):
    with pytest.raises(grpc.RpcError) as e:
        daemon.stub().SubmitJob(job_spec(tmp_path / "nope.mp4", inputs[1], "x.mp4"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "does not exist" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        daemon.stub().CancelJob(pb.JobRef(id="j-missing"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and "ListJobs" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        daemon.stub().SubmitJob(pb.JobSpec(input=str(inputs[0]), output="y.mp4", config=session_config(quality="ultra")))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'ultra'" in e.value.details()
