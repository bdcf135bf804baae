"""Replay, against a REAL daemon, the exact message sequence the Unity package's session sends.

The planes come from the package's own C#: ``Tests/Conformance~/PackFixture.cs`` runs the
Core's PlanePacker and DepthConversion (compiled with Mono's mcs, run with mono) on readbacks
defined by formula, and the test checks those bytes against ``unity_packing`` (the rules
re-implemented from the spec) before sending them in RealifySessionProtocol's order:
SessionConfig, frames 0..n-1, then EndOfStream or Cancel. The window's Plan request
(RealifyWindow.AskDaemon: that SessionConfig, its width/height, its frame count) is replayed the
same way, and the package's Core formats the real reply as the window shows it. Where Mono is
absent (the project's CI command installs Python packages only) the tests that need it skip, or
fail where CI_REQUIRE_MONO is set, and the replays still run with the Python-packed planes.
"""

from __future__ import annotations

import numpy as np
import grpc
import pytest

from c2r.v1 import coarse2real_pb2 as pb
import os
import queue
import re
import secrets
import stat
import subprocess
from pathlib import Path

from unity_packing import formula_readbacks, linear_eye_depth_reversed_z, mono_tools, plane, unity_frame

PACKAGE = Path(__file__).resolve().parents[1] / "engine_plugins" / "unity" / "com.coarse2real.realify"

HEIGHT, WIDTH, NEAR, FAR = 32, 48, 0.1, 100.0
CLIENT_NAME = "unity com.coarse2real.realify 0.2.0"  # DaemonConnection.ClientName


def package_minor() -> int:
    """DaemonStatus.ProtocolMinor: the protocol minor the package states (2: it reads result batches)."""
    source = (PACKAGE / "Runtime" / "Core" / "DaemonStatus.cs").read_text()
    return int(re.search(r"public const uint ProtocolMinor = (\d+);", source).group(1))


def session_config() -> pb.SessionConfig:
    """RealifyStreamingSession.DefaultConfig("", "tiny", "preview", "native", withNormals: true); minor: DaemonStatus.ProtocolMinor."""
    return pb.SessionConfig(
        protocol_major=pb.PROTOCOL_MAJOR, protocol_minor=package_minor(), client_name=CLIENT_NAME, prompt="", model="tiny", quality="preview",
        resolution="native", buffers=[pb.COLOR, pb.DEPTH, pb.NORMALS], result_encoding=pb.RAW_RGB8, batches=True,
    )  # fmt: skip


def results(replies) -> list[pb.ResultFrame]:
    """Every ResultFrame, as RealifyStreamingSession.ReadMessagesAsync takes them: a Result, or a ResultBatch's in order."""
    out = []
    for r in replies:
        kind = r.WhichOneof("kind")
        out += [r.result] if kind == "result" else list(r.results.frames) if kind == "results" else []
    return out


def unity_readbacks(index: int, rng: np.random.Generator):
    """What GBufferCapture reads back for one frame: bottom row first, RGBA everywhere but depth."""
    rgba = rng.integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    device = np.linspace(0.9, 0.001, HEIGHT, dtype=np.float32)[:, None].repeat(WIDTH, 1)
    device[-4:] = 0.0  # the top rows in Unity's bottom-up order: cleared depth, i.e. sky
    normals = np.zeros((HEIGHT, WIDTH, 4), np.float16)
    normals[..., 2] = 1.0  # facing the camera in Unity's view space (camera looks down -Z)
    normals[..., 3] = 1.0
    return rgba, device + index * 1e-4, normals


def requests(frames: int, last: pb.ClientMessage, rng: np.random.Generator):
    yield pb.ClientMessage(config=session_config())
    for index in range(frames):
        yield pb.ClientMessage(frame=unity_frame(index, *unity_readbacks(index, rng), NEAR, FAR))
    yield last


def test_python_reference_matches_the_csharp_unit_test_vectors():
    bottom_up = np.array([[[1, 2, 3, 255], [4, 5, 6, 255]], [[7, 8, 9, 255], [10, 11, 12, 255]]], np.uint8)
    color = plane(bottom_up, 3, np.uint8, pb.UINT8)
    assert list(color.shape) == [2, 2, 3] and color.data == bytes([7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6])
    depth = plane(np.array([[1, 2], [3, np.inf]], np.float32), None, np.float32, pb.FLOAT32)
    assert depth.data == bytes([0, 0, 0x40, 0x40, 0, 0, 0x80, 0x7F, 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40])
    eye = linear_eye_depth_reversed_z(np.array([1.0, 0.5, 0.0], np.float32), NEAR, FAR)
    np.testing.assert_allclose(eye[:2], [0.1, 1 / (999 / 100 * 0.5 + 0.01)], rtol=1e-5)
    assert np.isinf(eye[2])


def test_unity_session_sequence_returns_every_frame_in_order(daemon):
    stub = daemon.stub()
    replies = list(stub.Realify(requests(9, pb.ClientMessage(end=pb.EndOfStream()), np.random.default_rng(0)),
                                metadata=daemon.metadata, timeout=180))  # fmt: skip
    kinds = [r.WhichOneof("kind") for r in replies]
    assert kinds[0] == "started" and kinds[-1] == "done", kinds
    assert replies[0].started.effective.client_name == CLIENT_NAME
    # the package asks for batches and reads them (protocol 1.2): its 9 results come in one ResultBatch
    assert replies[0].started.effective.batches and "result" not in kinds and kinds.count("results") >= 1, kinds
    finals = [r for r in results(replies) if not r.preview]
    assert sorted(f.index for f in finals) == list(range(9))
    for result in finals:
        assert list(result.color.shape) == [HEIGHT, WIDTH, 3] and result.color.dtype == pb.UINT8
        assert len(result.color.data) == HEIGHT * WIDTH * 3
    assert (replies[-1].done.frames_received, replies[-1].done.frames_returned) == (9, 9)


def test_unity_cancel_ends_the_session_without_results_and_the_daemon_keeps_serving(daemon):
    stub = daemon.stub()
    call = stub.Realify(requests(5, pb.ClientMessage(cancel=pb.Cancel()), np.random.default_rng(1)), metadata=daemon.metadata, timeout=60)
    replies = []
    with pytest.raises(grpc.RpcError) as ended:
        for reply in call:
            replies.append(reply)
    assert ended.value.code() == grpc.StatusCode.CANCELLED
    assert "cancelled by the client" in ended.value.details()
    assert replies[0].WhichOneof("kind") == "started"
    assert not [r for r in results(replies) if not r.preview]  # the 81-frame window never ran
    info = stub.GetInfo(pb.InfoRequest(protocol_major=pb.PROTOCOL_MAJOR, client_name=CLIENT_NAME), metadata=daemon.metadata, timeout=10)
    assert info.protocol_major == pb.PROTOCOL_MAJOR


WINDOW_WIDTH, WINDOW_HEIGHT, WINDOW_FRAMES = 640, 360, 81  # RealifyWindow's defaults: 640x360, Timeline frames 0..80


def window_plan(daemon) -> pb.PlanReply:
    """The two calls RealifyWindow.AskDaemon makes, as DaemonConnection.InfoAsync / PlanAsync send them."""
    stub = daemon.stub()
    info = stub.GetInfo(pb.InfoRequest(protocol_major=pb.PROTOCOL_MAJOR, protocol_minor=1, client_name=CLIENT_NAME), metadata=daemon.metadata, timeout=10)
    assert info.protocol_minor >= 1  # DaemonStatus.CanPlan: this daemon is asked
    request = pb.PlanRequest(config=session_config(), width=WINDOW_WIDTH, height=WINDOW_HEIGHT, frames=WINDOW_FRAMES)
    return stub.Plan(request, metadata=daemon.metadata, timeout=30)


def test_the_windows_plan_request_gets_the_daemons_answer(daemon):
    reply = window_plan(daemon)
    assert reply.model == "tiny" and reply.summary and reply.windows >= 1
    assert reply.fits or reply.device == "cpu" or reply.advice  # not fitting on a GPU comes with what to lower
    unknown = pb.PlanRequest(config=session_config(), width=WINDOW_WIDTH, height=WINDOW_HEIGHT, frames=WINDOW_FRAMES)
    unknown.config.model = "no-such-model"
    with pytest.raises(grpc.RpcError) as refused:  # what PlanAsync turns into "the daemon could not plan ..."
        daemon.stub().Plan(unknown, metadata=daemon.metadata, timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "no-such-model" in refused.value.details()


def test_a_frame_index_gap_is_refused_like_the_csharp_protocol_refuses_it(daemon):
    def gapped():
        yield pb.ClientMessage(config=session_config())
        rng = np.random.default_rng(2)
        yield pb.ClientMessage(frame=unity_frame(0, *unity_readbacks(0, rng), NEAR, FAR))
        yield pb.ClientMessage(frame=unity_frame(2, *unity_readbacks(2, rng), NEAR, FAR))
        yield pb.ClientMessage(end=pb.EndOfStream())

    with pytest.raises(grpc.RpcError) as refused:
        list(daemon.stub().Realify(gapped(), metadata=daemon.metadata, timeout=60))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "a gap" in refused.value.details() and "resending from frame 1" in refused.value.details()


FIXTURE_NEAR, FIXTURE_FAR = 0.125, 128.0  # PackFixture.Near / Far


@pytest.fixture(scope="module")
def pack_fixture_exe(tmp_path_factory):
    """PackFixture.exe (the package's C# Core plus the fixture), built here with mcs: ``run(*arguments)``."""
    mcs, mono = mono_tools("mcs", "mono")
    exe = tmp_path_factory.mktemp("csharp") / "PackFixture.exe"
    sources = sorted(str(p) for p in (PACKAGE / "Runtime" / "Core").glob("*.cs")) + [str(PACKAGE / "Tests" / "Conformance~" / "PackFixture.cs")]
    built = subprocess.run([mcs, "-langversion:experimental", f"-out:{exe}", *sources], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr

    def run(*arguments: str) -> str:
        ran = subprocess.run([mono, str(exe), *arguments], capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        if arguments[0] == "describe-plan":
            return Path(arguments[2]).read_text(encoding="utf-8")
        return ran.stdout

    return run


@pytest.fixture(scope="module")
def pack_fixture(pack_fixture_exe):
    """Run the package's C# packer: ``run(folder, *extra)`` -> {(frame, plane name): pb.Plane}."""

    def run(folder: Path, *extra: str) -> dict:
        pack_fixture_exe(str(folder), "9", str(HEIGHT), str(WIDTH), *extra)
        planes = {}
        for path in folder.glob("*.bin"):
            frame, name, dtype, shape, _ = path.name.split(".")
            planes[int(frame), name] = pb.Plane(dtype=int(dtype), shape=[int(n) for n in shape.split("x")], data=path.read_bytes())
        return planes

    return run


@pytest.fixture(scope="module")
def csharp_planes(pack_fixture, tmp_path_factory):
    """{(frame, plane name): pb.Plane} exactly as the package's C# Core packed them."""
    return pack_fixture(tmp_path_factory.mktemp("planes"))


def test_the_csharp_packer_writes_exactly_the_bytes_the_python_reference_does(csharp_planes):
    for index in range(9):
        expected = unity_frame(index, *formula_readbacks(index, HEIGHT, WIDTH), FIXTURE_NEAR, FIXTURE_FAR)
        for name in ("color", "depth", "normals"):
            got, want = csharp_planes[index, name], getattr(expected, name)
            assert (got.dtype, list(got.shape)) == (want.dtype, list(want.shape)), (index, name)
            assert got.data == want.data, (index, name)  # byte for byte: row order, endianness, channels, sky as +inf


def test_the_csharp_packed_session_comes_back_whole_from_the_daemon(csharp_planes, daemon):
    def messages():
        yield pb.ClientMessage(config=session_config())
        for index in range(9):
            frame = pb.Frame(index=index, color_space=pb.SRGB, depth_kind=pb.DISTANCE)  # RealifyStreamingSession.SendAsync
            for name in ("color", "depth", "normals"):
                getattr(frame, name).CopyFrom(csharp_planes[index, name])
            yield pb.ClientMessage(frame=frame)
        yield pb.ClientMessage(end=pb.EndOfStream())

    replies = list(daemon.stub().Realify(messages(), metadata=daemon.metadata, timeout=180))
    finals = sorted(r.index for r in results(replies) if not r.preview)
    assert finals == list(range(9)) and replies[-1].WhichOneof("kind") == "done"
    assert (replies[-1].done.frames_received, replies[-1].done.frames_returned) == (9, 9)


def test_the_csharp_shared_memory_ring_is_what_the_python_client_writes_and_the_daemon_reads_it(pack_fixture, csharp_planes, daemon, tmp_path):
    """The Unity packer's same-host path: C# writes the slots (SharedRingSegment + SharedRingLayout), the daemon maps them."""
    from c2r.client import FramePlanes, shm
    from c2r.client.frames import unpack_plane

    name = f"c2r-{os.getpid()}-unity{secrets.token_hex(4)}"  # a live pid: the daemon's sweep leaves it alone
    pack_fixture(tmp_path, name)
    ring_name, slots, slot_bytes = (tmp_path / "ring.txt").read_text().splitlines()[0].split()
    placements = [list(map(int, line.split())) for line in (tmp_path / "ring.txt").read_text().splitlines()[1:]]
    segment = Path("/dev/shm") / name
    assert ring_name == name and stat.S_IMODE(segment.stat().st_mode) == 0o600
    for index, (slot, *offsets) in enumerate(placements):  # the same layout as the Python client's FrameRing
        planes = FramePlanes(*(unpack_plane(csharp_planes[index, n]) for n in ("color", "depth", "normals")))
        assert [offset for _, _, offset in shm.plane_layout(planes)] == offsets and shm.slot_bytes_for(planes) == int(slot_bytes)

    outbox: queue.Queue = queue.Queue()
    config = session_config()
    config.transport = pb.SHARED_MEMORY
    outbox.put(pb.ClientMessage(config=config))
    call = daemon.stub().Realify(iter(outbox.get, None), metadata=daemon.metadata, timeout=180)
    replies = iter(call)
    started = next(replies)
    assert started.started.effective.transport == pb.SHARED_MEMORY
    outbox.put(pb.ClientMessage(ring=pb.SharedRing(name=name, slots=int(slots), slot_bytes=int(slot_bytes))))
    status = next(r for r in replies if r.WhichOneof("kind") == "ring").ring
    assert status.attached, status.reason
    assert not segment.exists()  # mapped, then unlinked by the daemon: nothing can leak now
    for index, (slot, *offsets) in enumerate(placements):
        frame = pb.Frame(index=index, slot=slot, color_space=pb.SRGB, depth_kind=pb.DISTANCE)
        for name_, offset in zip(("color", "depth", "normals"), offsets):
            source = csharp_planes[index, name_]
            getattr(frame, name_).CopyFrom(pb.Plane(dtype=source.dtype, shape=source.shape, offset=offset))  # no bytes in the stream
        outbox.put(pb.ClientMessage(frame=frame))
    outbox.put(pb.ClientMessage(end=pb.EndOfStream()))
    outbox.put(None)
    rest = list(replies)
    finals = sorted(r.index for r in results(rest) if not r.preview)
    released = {slot for r in rest if r.WhichOneof("kind") == "released" for slot in r.released.slots}
    assert finals == list(range(9)) and released == set(range(9))
    assert (rest[-1].done.frames_received, rest[-1].done.frames_returned) == (9, 9)


def test_the_csharp_core_shows_the_real_daemons_plan_as_the_window_does(pack_fixture_exe, daemon, tmp_path):
    reply = window_plan(daemon)
    answer = tmp_path / "answer.txt"
    answer.write_text("\n".join([str(WINDOW_FRAMES), str(WINDOW_WIDTH), str(WINDOW_HEIGHT), str(reply.fits).lower(), reply.summary, reply.advice]) + "\n",
                      encoding="utf-8")  # fmt: skip
    shown = pack_fixture_exe("describe-plan", str(answer), str(tmp_path / "shown.txt"))
    expected = f"For {WINDOW_FRAMES} frames at {WINDOW_WIDTH}x{WINDOW_HEIGHT}: {reply.summary}"
    if not reply.fits and reply.advice:
        expected += "\n" + reply.advice
    assert shown == expected
