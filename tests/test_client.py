"""The client against a real daemon process on 127.0.0.1 with the tiny model."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from c2r.client import (
    Cancelled, Client, DaemonUnavailable, Finished, InvalidInput, Progress, Result, Unauthorized, VersionMismatch, connect,
)  # fmt: skip
from c2r.client import aio
from c2r.client.client import check_versions
from c2r.client import media
from c2r.v1 import coarse2real_pb2 as pb

MINOR = pb.PROTOCOL_MINOR

# Small, fast sessions: 5-frame windows sharing 1 frame, 1 step, no upscaling to a preset grid.
FAST = dict(model="tiny", quality="preview", steps=1, window=5, overlap=1, resolution="native")


def frames(count: int, size: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield rng.integers(0, 256, (size, size, 3), dtype=np.uint8), rng.uniform(1, 10, (size, size)).astype(np.float32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def client(daemon):
    with connect(daemon.address, token=daemon.token, start_daemon=False) as c:
        yield c


def test_handshake_reports_the_protocol_and_the_tiny_model(client):
    info = client.info()
    assert info.protocol_major == 1 and "tiny" in info.models
    assert client.max_message_bytes == info.max_message_bytes


def test_frames_come_back_in_order_with_the_input_size(client):
    with client.realify(**FAST) as session:
        assert session.effective.window == 5 and session.effective.steps == 1
        for i, (color, depth) in enumerate(frames(11)):
            session.send(i, color, depth)
        session.end()
        events = list(session.events())
    finals = [e for e in events if isinstance(e, Result) and not e.preview]
    assert [r.index for r in finals] == list(range(11))
    assert all(r.image.shape == (32, 32, 3) and r.image.dtype == np.uint8 for r in finals)
    assert any(isinstance(e, Progress) and e.kind == "step" for e in events)
    assert isinstance(events[-1], Finished) and (events[-1].frames_received, events[-1].frames_returned) == (11, 11)


def test_a_gap_in_frame_indices_is_invalid_input_naming_the_index(client):
    with client.realify(**FAST) as session:
        (color, depth), = frames(1)
        session.send(0, color, depth)
        session.send(2, color, depth)
        session.end()
        with pytest.raises(InvalidInput) as error:
            list(session.events())
    assert "2" in str(error.value) and "1" in str(error.value)


def test_an_unknown_preset_is_refused_when_the_session_opens(client):
    with pytest.raises(InvalidInput, match="unknown quality preset 'cinematic'.*choose one of"):
        client.realify(model="tiny", quality="cinematic")


def test_the_daemon_refuses_a_client_of_another_protocol_major(daemon, monkeypatch):
    import c2r.client.config as config

    monkeypatch.setattr(config, "PROTOCOL_MAJOR", 99)  # what info_request() states to the daemon
    with pytest.raises(VersionMismatch, match=f"client speaks protocol 99.{MINOR} but this daemon speaks 1.{MINOR}.*install"):
        connect(daemon.address, token=daemon.token, start_daemon=False)


def test_the_client_refuses_a_daemon_of_another_protocol_major(daemon, monkeypatch):
    import c2r.client.client as client_module

    # the major the client's own handshake check expects (it states 1 to the daemon, which accepts and answers 1.MINOR)
    monkeypatch.setattr(client_module, "PROTOCOL_MAJOR", 2)
    with pytest.raises(VersionMismatch, match=rf"the daemon at .* speaks protocol 1\.{MINOR}, this client 2\.{MINOR}; install the same"):
        connect(daemon.address, token=daemon.token, start_daemon=False)


def test_nothing_listening_is_daemon_unavailable_with_what_to_do():
    with pytest.raises(DaemonUnavailable, match="c2r serve"):
        connect(f"127.0.0.1:{free_port()}", start_daemon=False, timeout=0.5)
    with pytest.raises(DaemonUnavailable, match="only starts daemons on this machine"):
        connect("192.0.2.1:50051", start_daemon=True, timeout=0.3)  # TEST-NET-1: never answers


def test_cancel_stops_the_session_and_refuses_more_frames(client):
    with client.realify(**{**FAST, "steps": 50}) as session:
        for i, (color, depth) in enumerate(frames(5)):
            session.send(i, color, depth)
        session.cancel()
        events = list(session.events())  # ends quietly after our own cancel
        assert not any(isinstance(e, Finished) for e in events)
        with pytest.raises(Cancelled, match="start a new session"):
            session.send(5, *next(frames(1)))


def test_asyncio_client_round_trip(daemon):
    async def main():
        async with await aio.connect(daemon.address, token=daemon.token, start_daemon=False) as client:
            async with await client.realify(**FAST) as session:
                for i, (color, depth) in enumerate(frames(6, seed=1)):
                    await session.send(i, color, depth)
                await session.end()
                return [r.index async for r in session.results()]

    assert asyncio.run(main()) == list(range(6))


def test_asyncio_jobs_submit_and_watch(daemon, tmp_path):
    writer = media.open_writer(tmp_path / "in.mp4", 10)
    for color, _ in frames(5, seed=4):
        writer.write(color)
    writer.close()

    async def main():
        async with await aio.connect(daemon.address, token=daemon.token, start_daemon=False) as client:
            job = await client.submit_job(str(tmp_path / "in.mp4"), "aio-job/frames", format="png", buffers=("color",), **FAST)
            states = [event.job.state async for event in client.watch_job(job.id)]
            return job, states, await client.list_jobs()

    job, states, listed = asyncio.run(main())
    assert states[-1] == pb.SUCCEEDED and job.id in [j.id for j in listed]
    assert len(media.sequence_files(daemon.output_root / "aio-job" / "frames")) == 5


def test_asyncio_cancel_ends_the_events_quietly_and_bad_frames_raise(daemon):
    async def main():
        async with await aio.connect(daemon.address, token=daemon.token, start_daemon=False) as client:
            async with await client.realify(**{**FAST, "steps": 50}) as session:
                for i, (color, depth) in enumerate(frames(5, seed=3)):
                    await session.send(i, color, depth)
                with pytest.raises(InvalidInput, match="depth has shape"):
                    await session.send(5, color, depth[:4])
                await session.cancel()
                return [e async for e in session.events()]

    assert not any(isinstance(e, (Finished, Result)) and not getattr(e, "preview", False) for e in asyncio.run(main()))


def test_connect_starts_a_daemon_when_none_runs_and_a_kill_says_where_to_resume(tmp_path, capfd):
    address = f"127.0.0.1:{free_port()}"
    daemon_args = ("--state-dir", str(tmp_path / "state"), "--output-root", str(tmp_path / "out"),
                   "--preview-port", "0", "--device", "cpu")  # fmt: skip
    client = connect(address, token="s3cret", model="tiny", daemon_args=daemon_args, python=sys.executable)
    try:
        assert f"no daemon at {address}; started one (pid {client.daemon.pid}" in capfd.readouterr().err
        assert client.info().loaded_model == "tiny"
        with pytest.raises(Unauthorized, match="missing authorization.*connect\\(token=...\\)"):
            connect(address, start_daemon=False)  # the started daemon got the token; a client without it is refused
        session = client.realify(**FAST)
        for i, (color, depth) in enumerate(frames(9, seed=2)):
            session.send(i, color, depth)  # windows [0,5) and [4,9): a kill after the first leaves 5..8 to resend
        returned = []
        with pytest.raises(DaemonUnavailable) as error:
            for result in session.results():
                returned.append(result.index)
                if len(returned) == 5:
                    os.killpg(client.daemon.pid, signal.SIGKILL)
        assert returned == [0, 1, 2, 3, 4]
        assert error.value.resume_from == 5 and "resend from frame 5" in str(error.value)
    finally:
        daemon = client.daemon
        client.close()
    assert daemon.process.poll() is not None  # close() reaps the daemon it started


def test_a_session_retries_while_the_daemon_is_not_yet_listening():
    port = free_port()
    double = subprocess.Popen([sys.executable, str(Path(__file__).with_name("realify_server_double.py")), str(port), "1.0"])
    try:
        with Client(f"127.0.0.1:{port}") as client:  # no handshake: the double only speaks Realify
            with client.realify(model="tiny") as session:  # first attempts see UNAVAILABLE, a retry succeeds
                assert session.session_id == "double"
                session.send(0, *next(frames(1)))
                session.end()
                assert [type(e) for e in session.events()] == [Finished]
    finally:
        double.kill()
        double.wait()


def test_a_frame_over_the_message_limit_is_refused_before_sending(client):
    client.max_message_bytes = 2**20
    with client.realify(shared_memory=False, **FAST) as session:  # in shared memory the message limit does not apply
        with pytest.raises(InvalidInput, match="12.0 MiB, over the daemon's 1 MiB message limit: lower the resolution"):
            session.send(0, np.zeros((1024, 1024, 3), np.float32), color_space="linear")


def test_minor_version_difference_is_a_warning_and_major_is_refused():
    assert check_versions(pb.InfoReply(protocol_major=1, protocol_minor=pb.PROTOCOL_MINOR), "a:1") == []
    notes = check_versions(pb.InfoReply(protocol_major=1, protocol_minor=7, warnings=["daemon note"]), "a:1")
    assert notes[0] == "daemon note" and "protocol 1.7" in notes[1] and "ignored" in notes[1]
    with pytest.raises(VersionMismatch, match=f"speaks protocol 2.0, this client 1.{MINOR}"):
        check_versions(pb.InfoReply(protocol_major=2), "a:1")
