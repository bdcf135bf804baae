"""Protocol 1.2 batches: several frames per ClientMessage, several results per ServerMessage.

Against a real daemon (tiny model, raw stubs): who gets batches (negotiation), how many
messages a window costs, the byte bound, and a bad frame inside a batch. The packers both
sides use (the client's RequestQueue, the daemon's result_batches, the split of a received
FrameBatch) are checked alone first.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from c2r.client import FramePlanes, connect
from c2r.client.frames import FRAME_BATCH, encode_frame, join_batch, pack_frame
from c2r.client.outgoing import Batching, RequestQueue
from c2r.daemon.planes import decode_client_message
from c2r.daemon.session import result_batches
from c2r.v1 import coarse2real_pb2 as pb
from daemon_wire import collect, frame, plane, session_config

BATCHING = dict(protocol_minor=2, batches=True)


def kinds(messages) -> list[str]:
    return [m.WhichOneof("kind") for m in messages]


def final_indices(messages) -> list[int]:
    out = []
    for m in messages:
        results = [m.result] if m.WhichOneof("kind") == "result" else m.results.frames if m.WhichOneof("kind") == "results" else []
        out += [r.index for r in results if not r.preview]
    return out


def batch_message(frames: list[pb.Frame]) -> pb.ClientMessage:
    return pb.ClientMessage(frames=pb.FrameBatch(frames=frames))


def run(daemon, messages, timeout: float = 120):
    return collect(daemon.stub().Realify(iter(messages), metadata=daemon.metadata, timeout=timeout))


# ---------------------------------------------------------------- the packers alone


def test_the_client_joins_queued_frames_within_the_batch_limits_and_never_across_other_messages():
    small = [encode_frame(i, FramePlanes(np.zeros((4, 4, 3), np.uint8))) for i in range(7)]
    queue = RequestQueue(Batching(frames=3, bytes=10**6))
    for message in small[:5]:
        queue.append(message)
    queue.append(pb.ClientMessage(end=pb.EndOfStream()))
    first, second, end = queue.pop(), queue.pop(), queue.pop()
    assert pb.ClientMessage.FromString(first).frames.frames[2].index == 2 and len(pb.ClientMessage.FromString(first).frames.frames) == 3
    assert [f.index for f in pb.ClientMessage.FromString(second).frames.frames] == [3, 4]  # not joined with the end
    assert end.WhichOneof("kind") == "end" and len(queue) == 0
    unit = max(len(m) for m in small)  # frame 0 is 2 bytes shorter (index 0 is not written)
    by_bytes = RequestQueue(Batching(frames=64, bytes=2 * unit))
    for message in small:
        by_bytes.append(message)
    sizes = []
    while len(by_bytes):
        message = by_bytes.pop()
        parsed = pb.ClientMessage.FromString(message)
        sizes.append(len(parsed.frames.frames) if parsed.WhichOneof("kind") == "frames" else 1)
        assert len(message) <= 2 * unit + 8  # the batch's own tag and length on top
    assert sizes == [2, 2, 2, 1]
    singles = RequestQueue(None)  # protocol 1.1: every frame alone, at most four queued
    for message in small[:4]:
        singles.append(message)
    assert singles.full() and singles.pop() == small[0]


def test_the_client_queue_is_bounded_by_bytes_with_batches():
    big = encode_frame(0, FramePlanes(np.zeros((64, 64, 3), np.uint8)))
    queue = RequestQueue(Batching(frames=64, bytes=3 * len(big)))
    while not queue.full():
        queue.append(big)
    assert len(queue) == 3  # one batch's bytes, not 64 frames of them
    assert pb.ClientMessage.FromString(queue.pop()).WhichOneof("kind") == "frames" and len(queue) == 0


def test_the_daemon_cuts_results_by_count_and_bytes():
    image = np.zeros((10, 10, 3), np.uint8)  # 300 bytes + 64 counted per result
    frames = [(i, image) for i in range(10)]
    assert [len(b) for b in result_batches(frames, 4, 10**6)] == [4, 4, 2]
    assert [len(b) for b in result_batches(frames, 64, 3 * 364)] == [3, 3, 3, 1]
    assert [len(b) for b in result_batches(frames, 64, 100)] == [1] * 10  # a result bigger than the bound goes alone
    assert [i for b in result_batches(frames, 4, 10**6) for i, _ in b] == list(range(10))


def test_a_received_frame_batch_is_split_like_single_frames():
    rng = np.random.default_rng(3)
    planes = [FramePlanes(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), rng.random((64, 96)).astype(np.float32))
              for _ in range(3)]  # 129 KiB in all: over SPLIT_BYTES, so split
    handle = pb.ClientMessage(frame=pb.Frame(index=3, slot=1, color=pb.Plane(dtype=pb.UINT8, shape=[64, 96, 3], offset=0)))
    raw = join_batch(FRAME_BATCH, [encode_frame(i, p) for i, p in enumerate(planes)] + [handle.SerializeToString()])
    assert pb.ClientMessage.FromString(raw).frames.frames[:3] == [pack_frame(i, p) for i, p in enumerate(planes)]
    received = decode_client_message(raw)
    assert [f.index for f, _ in received.frames()] == [0, 1, 2, 3]
    for (frame_, data), p in zip(received.frames(), planes):
        assert frame_.color.data == b"" and bytes(data["color"]) == p.color.tobytes() and bytes(data["depth"]) == p.depth.tobytes()
    assert received.frames()[3][1] == {} and received.frames()[3][0].slot == 1  # a shared-memory frame: no bytes
    small = join_batch(FRAME_BATCH, [handle.SerializeToString()] * 2)  # handles alone: protobuf parses them
    assert decode_client_message(small).data == [] and [f.slot for f, _ in decode_client_message(small).frames()] == [1, 1]


# ---------------------------------------------------------------- against the daemon


@pytest.mark.parametrize("config", [dict(protocol_minor=1, batches=True), dict(protocol_minor=2, batches=False)],
                         ids=["protocol 1.1", "not opted in"])
def test_an_old_or_unasking_client_gets_one_result_per_message(daemon, config):
    cfg = session_config(window=9, overlap=0, **config)
    messages, error = run(daemon, [pb.ClientMessage(config=cfg), *(pb.ClientMessage(frame=frame(i)) for i in range(9)),
                                   pb.ClientMessage(end=pb.EndOfStream())])
    assert error is None, error
    assert not messages[0].started.effective.batches
    assert "results" not in kinds(messages) and kinds(messages).count("result") == 9
    assert final_indices(messages) == list(range(9))


def test_a_batching_client_gets_a_windows_results_in_one_message(daemon):
    """One window of 17 frames, sent as one FrameBatch: its 17 results come back in one ServerMessage, and the whole
    session is 7 messages (1.1: 23)."""
    cfg = session_config(window=17, overlap=0, **BATCHING)
    messages, error = run(daemon, [pb.ClientMessage(config=cfg), batch_message([frame(i) for i in range(17)]),
                                   pb.ClientMessage(end=pb.EndOfStream())])
    assert error is None, error
    assert messages[0].started.effective.batches
    assert kinds(messages) == ["started", "progress", "progress", "progress", "progress", "results", "done"], kinds(messages)
    assert [r.index for r in messages[5].results.frames] == list(range(17))
    assert all(not r.preview and list(r.color.shape) == [32, 32, 3] for r in messages[5].results.frames)
    assert (messages[-1].done.frames_received, messages[-1].done.frames_returned) == (17, 17)


def test_each_estimates_previews_come_in_one_message(daemon):
    """3 steps with a preview each: 2 estimates take turns over the window's frames, one message each at most
    (an unsent one is replaced by the next), then the finals in one."""
    cfg = session_config(window=17, overlap=0, steps=3, preview_every=1, **BATCHING)
    messages, error = run(daemon, [pb.ClientMessage(config=cfg), batch_message([frame(i) for i in range(17)]),
                                   pb.ClientMessage(end=pb.EndOfStream())])
    assert error is None, error
    batches = [m.results.frames for m in messages if m.WhichOneof("kind") == "results"]
    previews, finals = [b for b in batches if b[0].preview], [b for b in batches if not b[0].preview]
    assert len(finals) == 1 and [r.index for r in finals[0]] == list(range(17))
    assert 1 <= len(previews) <= 2 and all(all(r.preview for r in b) for b in previews)
    assert all([r.index for r in b] in (list(range(0, 17, 2)), list(range(1, 17, 2))) for b in previews)
    assert "result" not in kinds(messages)


def test_result_batches_stay_under_the_advertised_byte_limit(daemon):
    """640x360 results (675 KiB each): a window of 9 needs two messages under 4 MiB, 6 results and 3."""
    info = daemon.stub().GetInfo(pb.InfoRequest(protocol_major=1, protocol_minor=2), metadata=daemon.metadata)
    limit = info.limits.max_batch_bytes
    h, w = 360, 640
    cfg = session_config(window=9, overlap=0, resolution="480p", **BATCHING)
    frames = [frame(i, h, w, depth=np.ones((h, w), np.float32)) for i in range(9)]
    messages, error = run(daemon, [pb.ClientMessage(config=cfg), *(batch_message([f]) for f in frames),
                                   pb.ClientMessage(end=pb.EndOfStream())], timeout=300)
    assert error is None, error
    batches = [m for m in messages if m.WhichOneof("kind") == "results"]
    assert [len(m.results.frames) for m in batches] == [6, 3]
    assert all(m.ByteSize() <= limit for m in batches)
    assert final_indices(messages) == list(range(9))


def test_a_bad_frame_inside_a_batch_is_refused_by_index_after_the_frames_before_it(daemon):
    cfg = session_config(window=9, overlap=0, **BATCHING)
    bad = frame(3)
    bad.depth.CopyFrom(plane(np.ones((32, 31), np.float32), pb.FLOAT32))  # the wrong size
    messages, error = run(daemon, [pb.ClientMessage(config=cfg), pb.ClientMessage(frame=frame(0)),
                                   batch_message([frame(1), frame(2), bad, frame(4)]), pb.ClientMessage(end=pb.EndOfStream())])
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "frame 3, item 2 of a FrameBatch of 4 (the 2 before it were accepted)" in error.details(), error.details()
    assert "32x31" in error.details()
    assert final_indices(messages) == [0, 1, 2]  # nothing accepted is lost


def test_a_batch_over_the_frame_limit_is_refused_whole(daemon):
    cfg = session_config(window=9, overlap=0, **BATCHING)
    messages, error = run(daemon, [pb.ClientMessage(config=cfg), pb.ClientMessage(frame=frame(0)),
                                   batch_message([frame(i) for i in range(1, 66)]), pb.ClientMessage(end=pb.EndOfStream())])
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "FrameBatch of 65 frames is over this daemon's limit of 64" in error.details()
    assert "resending from frame 1" in error.details()
    assert final_indices(messages) == [0]


@pytest.mark.parametrize("shared_memory", [True, False], ids=["shared memory", "bytes"])
def test_the_python_client_batches_both_ways_and_its_results_match_singles(daemon, shared_memory):
    rng = np.random.default_rng(5)
    clip = [FramePlanes(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (1 + rng.random((32, 32))).astype(np.float32))
            for _ in range(34)]
    out = {}
    with connect(daemon.address, token=daemon.token, start_daemon=False) as client:
        for batches in (True, False):
            with client.realify(shared_memory=shared_memory, batches=batches, model="tiny", quality="preview", steps=1,
                                seed=3, window=17, overlap=0, resolution="native", preview_every=0) as session:
                for i, planes in enumerate(clip):
                    session.send(i, planes)
                session.end()
                out[batches] = [r.image for r in session.results()]
                assert session.effective.batches == batches
                counts = (session.requests_sent, session.replies_received)
            if batches:  # started, per window 4 progress and 1 results, done (+ ring status and 2 slot releases)
                assert counts[1] <= 1 + 2 * 5 + 1 + (3 if shared_memory else 0), counts
            else:
                assert counts[1] >= 1 + 2 * (4 + 17) + 1, counts
    assert len(out[True]) == 34 and all(np.array_equal(a, b) for a, b in zip(out[True], out[False]))
