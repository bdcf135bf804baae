"""Same-host shared-memory frames: chosen by the client, same results as bytes, nothing left in /dev/shm.

A real daemon on 127.0.0.1 (the session fixture) and real clients: this process, or a child
process that is SIGKILLed mid-session.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from c2r.client import aio, connect, shm
from c2r.v1 import coarse2real_pb2 as pb
from daemon_process import start_daemon
from daemon_wire import collect, finals, frame, session_config

FAST = dict(model="tiny", quality="preview", steps=1, window=5, overlap=1, resolution="native", seed=3)
SHM = Path("/dev/shm")
pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="lists POSIX segments in /dev/shm (Linux)")


def segments_of(*pids: int) -> list[str]:
    return sorted(p.name for p in SHM.glob("c2r-*") if p.name.split("-")[1] in {str(pid) for pid in pids})


def wait_for(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
    return value


def clip(n: int):
    rng = np.random.default_rng(5)
    return [(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), (1 + rng.random((24, 32))).astype(np.float16),
             rng.uniform(-1, 1, (24, 32, 3)).astype(np.float16)) for _ in range(n)]


def run(client, shared_memory: bool, frames) -> tuple[bool, list[np.ndarray]]:
    with client.realify(buffers=("color", "depth", "normals"), shared_memory=shared_memory, **FAST) as session:
        for i, (color, depth, normals) in enumerate(frames):
            session.send(i, color, depth, normals)
        session.end()
        images = [r.image for r in session.results()]
        return session.shared_memory, images


def test_a_loopback_client_picks_shared_memory_gets_the_same_frames_and_leaves_nothing(daemon):
    frames = clip(9)
    with connect(daemon.address, token=daemon.token, start_daemon=False) as client:
        assert client.daemon_info.capabilities.shared_memory and client.same_host()
        used, by_memory = run(client, None, frames)  # None: the client's own choice
        assert used, "a loopback daemon that offers shared memory gets it"
        used, by_bytes = run(client, False, frames)
        assert not used and len(by_bytes) == len(by_memory) == 9
        assert all(np.array_equal(a, b) for a, b in zip(by_bytes, by_memory)), "bytes in the stream give the very same frames"
    wait_for(lambda: not segments_of(os.getpid(), daemon.engine_pid()), "the client's ring and the engine's results to go")
    warm = sum((SHM / name).stat().st_size for name in segments_of(daemon.proc.pid))
    assert warm <= 1024 * 2**20, "window buffers kept warm stay within --session-memory-mb (default 1024)"


def test_the_asyncio_client_picks_shared_memory_too_and_leaves_nothing(daemon):
    frames = clip(11)  # more frames than the ring's 8 slots: sending waits for slots the daemon released

    async def run_async(shared_memory: bool | None) -> tuple[str, bool, list[np.ndarray]]:
        async with await aio.connect(daemon.address, token=daemon.token, start_daemon=False) as client:
            assert client.same_host()
            async with await client.realify(buffers=("color", "depth", "normals"), shared_memory=shared_memory,
                                            **FAST) as session:
                for i, (color, depth, normals) in enumerate(frames):
                    await session.send(i, color, depth, normals)
                await session.end()
                images = [r.image async for r in session.results()]
                return session.session_id, session.shared_memory, images

    session_id, used, by_memory = asyncio.run(run_async(None))
    assert used, "a loopback daemon that offers shared memory gets it from the asyncio client too"
    bytes_id, used, by_bytes = asyncio.run(run_async(False))
    assert not used and len(by_bytes) == len(by_memory) == 11
    assert all(np.array_equal(a, b) for a, b in zip(by_bytes, by_memory)), "bytes in the stream give the very same frames"
    log = daemon.log()
    assert f"session {session_id} done: 11 frames in (11 through shared memory), 11 out" in log
    assert f"session {bytes_id} done: 11 frames in (0 through shared memory), 11 out" in log
    wait_for(lambda: not segments_of(os.getpid(), daemon.engine_pid()), "the client's ring and the engine's results to go")


def test_a_killed_client_leaves_no_segment_and_the_daemon_serves_on(daemon, tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys, numpy as np
        from c2r.client import connect
        client = connect({daemon.address!r}, token={daemon.token!r}, start_daemon=False)
        session = client.realify(buffers=("color",), model="tiny", quality="preview", steps=30, window=5, overlap=0,
                                 resolution="native")
        for i in range(7):
            session.send(i, np.zeros((16, 16, 3), np.uint8))
        assert session.shared_memory
        print("sent", flush=True)
        sys.stdin.readline()
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "sent"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    wait_for(lambda: not segments_of(child.pid), "the dead client's ring to go")
    messages, error = collect(daemon.stub().Realify(iter([pb.ClientMessage(config=session_config(window=5, overlap=0))] +
                                                         [pb.ClientMessage(frame=frame(i)) for i in range(5)] +
                                                         [pb.ClientMessage(end=pb.EndOfStream())])))
    assert error is None and [r.index for r in finals(messages)] == list(range(5))


def test_segments_of_a_process_that_died_before_offering_them_are_swept(daemon):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    name = f"c2r-{int(dead.stdout)}-ring-orphan"
    orphan = shm._untracked(name, True, 4096)  # what a client killed between creating its ring and offering it leaves
    shm.close(orphan)
    assert segments_of(int(dead.stdout)) == [name]
    messages, error = collect(daemon.stub().Realify(iter([pb.ClientMessage(config=session_config()),
                                                          pb.ClientMessage(end=pb.EndOfStream())])))
    assert error is None
    wait_for(lambda: not segments_of(int(dead.stdout)), "the sweep at the end of a session")


def test_a_killed_daemon_leaves_nothing_once_a_daemon_starts_again(tmp_path):
    first = start_daemon(tmp_path / "first")
    try:
        with connect(first.address, start_daemon=False) as client:
            used, images = run(client, None, clip(5))
        assert used and len(images) == 5
        pids = (first.proc.pid, first.engine_pid())
        assert segments_of(*pids), "the killed daemon holds warm window buffers"
    finally:
        first.kill()
    second = start_daemon(tmp_path / "second")
    try:
        assert not segments_of(*pids), "swept at start: their processes are gone"
    finally:
        second.stop()
    assert not segments_of(second.proc.pid), "a daemon that stops removes its own"


def ring_call(daemon, ring: pb.SharedRing, frames: list[pb.Frame]):
    requests = [pb.ClientMessage(config=session_config(transport=pb.SHARED_MEMORY)), pb.ClientMessage(ring=ring)]
    requests += [pb.ClientMessage(frame=f) for f in frames] + [pb.ClientMessage(end=pb.EndOfStream())]
    return collect(daemon.stub().Realify(iter(requests)))


def test_a_ring_the_daemon_cannot_map_is_refused_with_the_reason_and_bytes_still_work(daemon):
    messages, error = ring_call(daemon, pb.SharedRing(name="c2r-1-nothing-here", slots=2, slot_bytes=4096), [frame(0)])
    assert error is None
    status = [m.ring for m in messages if m.WhichOneof("kind") == "ring"]
    assert len(status) == 1 and not status[0].attached and "cannot map shared memory 'c2r-1-nothing-here'" in status[0].reason
    assert [r.index for r in finals(messages)] == [0]
    messages, _ = ring_call(daemon, pb.SharedRing(name="c2r-1-x", slots=2**20, slot_bytes=2**32), [])
    assert "over this daemon's limit" in [m.ring for m in messages if m.WhichOneof("kind") == "ring"][0].reason


def test_bad_slots_and_offsets_are_invalid_argument_naming_them(daemon):
    ring = shm.FrameRing(2, 64 * 1024)
    try:
        good = frame(0)
        good.slot = 0
        # the slot's bytes are zeros (a fresh segment): black colour, depth 0; a valid layout is all this test needs
        for planes in (good.color, good.depth):
            planes.data = b""
        good.depth.offset = shm.aligned(32 * 32 * 3)
        out_of_ring = pb.Frame()
        out_of_ring.CopyFrom(good)
        out_of_ring.index, out_of_ring.slot = 1, 2
        messages, error = ring_call(daemon, ring.message, [good, out_of_ring])
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "slot 2 is not in the ring of 2 slots" in error.details()
        assert [m.released.slots[0] for m in messages if m.WhichOneof("kind") == "released"] == [0]
        misaligned = pb.Frame()
        misaligned.CopyFrom(good)
        misaligned.depth.offset += 4
        ring2 = shm.FrameRing(2, 64 * 1024)
        try:
            messages, error = ring_call(daemon, ring2.message, [misaligned])
        finally:
            ring2.close()
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "multiple of 64" in error.details()
    finally:
        ring.close()
