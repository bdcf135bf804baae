"""Interactive sessions against a real daemon process (tiny model, 32x32 frames, raw gRPC stubs)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import threading

import grpc
import numpy as np
import pytest
import zmq

from c2r.client.transport import PREVIEW_WELCOME
from c2r.v1 import coarse2real_pb2 as pb
from daemon_wire import H, W, Driver, collect, finals, frame, image, plane, session_config, stream

def test_info_reports_versions_models_and_limits(daemon):
    info = daemon.stub().GetInfo(pb.InfoRequest(protocol_major=1, protocol_minor=0, client_name="t"))
    assert (info.protocol_major, info.protocol_minor) == (pb.PROTOCOL_MAJOR, pb.PROTOCOL_MINOR)
    assert "tiny" in info.models and info.loaded_model == "tiny"
    assert set(info.qualities) == {"preview", "final"}
    assert info.max_message_bytes == 64 * 2**20
    assert (info.limits.max_batch_frames, info.limits.max_batch_bytes) == (64, 4 * 2**20)  # protocol 1.2
    assert info.device == "cpu" and info.output_root == str(daemon.output_root.resolve())
    assert info.preview_address.startswith("tcp://127.0.0.1:")
    minor = daemon.stub().GetInfo(pb.InfoRequest(protocol_major=1, protocol_minor=99))
    assert any("1.99" in w for w in minor.warnings)
    with pytest.raises(grpc.RpcError) as e:
        daemon.stub().GetInfo(pb.InfoRequest(protocol_major=2))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "2.0" in e.value.details() and "speaks 1.2" in e.value.details()


def test_health_and_reflection_are_served(daemon):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    channel = daemon.channel()
    assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="c2r.v1.Coarse2Real")).status == \
        health_pb2.HealthCheckResponse.SERVING
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert {"c2r.v1.Coarse2Real", "grpc.health.v1.Health"} <= set(services)


def test_100_frames_return_in_order_and_are_published(daemon):
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.connect(daemon.stub().GetInfo(pb.InfoRequest(protocol_major=1)).preview_address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    assert sub.poll(10_000) and sub.recv_multipart() == [PREVIEW_WELCOME]  # the relay holds our subscription now
    messages, error = collect(daemon.stub().Realify(stream(session_config(), (frame(i) for i in range(100)))))
    assert error is None, error
    started = messages[0].started
    assert started.session_id and started.effective.seed == 7 and started.effective.window == 17
    results = finals(messages)
    assert [r.index for r in results] == list(range(100))
    assert all(image(r).shape == (H, W, 3) for r in results)
    done = messages[-1].done
    assert (done.frames_received, done.frames_returned) == (100, 100)
    progress = [m.progress for m in messages if m.WhichOneof("kind") == "progress"]
    # backpressure: the daemon never holds more than two windows (2 x 17) of frames without results
    assert max(p.frames_received - p.frames_returned for p in progress) <= 34
    kinds = {p.kind for p in progress}
    assert {pb.Progress.QUEUED, pb.Progress.STARTED, pb.Progress.WINDOW_DONE} <= kinds
    published = {}
    while sub.poll(2000 if not published else 200):
        topic, header, body = sub.recv_multipart()
        head = json.loads(header)
        if topic.decode() == started.session_id and not head["preview"]:
            published[head["index"]] = np.frombuffer(body, np.uint8).reshape(head["height"], head["width"], 3)
    sub.close(0)
    assert sorted(published) == list(range(100)), "every final frame is published for preview"
    assert all(np.array_equal(published[r.index], image(r)) for r in results)


def test_two_clients_at_once(daemon):
    outcomes = {}

    def client(name: str, count: int, seed: int) -> None:
        call = daemon.stub().Realify(stream(session_config(seed=seed), (frame(i) for i in range(count))))
        outcomes[name] = collect(call)

    threads = [threading.Thread(target=client, args=("a", 30, 1)), threading.Thread(target=client, args=("b", 21, 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for name, count in (("a", 30), ("b", 21)):
        messages, error = outcomes[name]
        assert error is None, (name, error)
        assert [r.index for r in finals(messages)] == list(range(count))
    assert outcomes["a"][0][0].started.session_id != outcomes["b"][0][0].started.session_id


def test_cancel_mid_window_then_daemon_keeps_serving(daemon):
    driver = Driver(daemon.stub(), session_config(steps=30))
    for i in range(17):
        driver.send(pb.ClientMessage(frame=frame(i)))
    driver.until_step()
    driver.send(pb.ClientMessage(cancel=pb.Cancel()))
    messages, error = driver.rest()
    assert error is not None and error.code() == grpc.StatusCode.CANCELLED, error
    assert "cancelled by the client" in error.details()
    assert finals(messages) == [], "the cancelled window's frames are dropped"
    messages, error = collect(daemon.stub().Realify(stream(session_config(), (frame(i) for i in range(5)))))
    assert error is None and [r.index for r in finals(messages)] == list(range(5))


def test_client_disconnect_mid_stream_is_cleaned_up(daemon):
    driver = Driver(daemon.stub(), session_config(steps=30))
    for i in range(20):
        driver.send(pb.ClientMessage(frame=frame(i)))
    session_id = driver.until_step()[0].started.session_id
    driver.call.cancel()  # the client goes away without a word
    driver.outgoing.put(None)
    messages, error = collect(daemon.stub().Realify(stream(session_config(), (frame(i) for i in range(5)))))
    assert error is None and [r.index for r in finals(messages)] == list(range(5))
    assert not (daemon.state_dir / "spill" / session_id).exists()
    assert "Traceback" not in daemon.log()


def bad(index: int, **changes) -> pb.Frame:
    f = frame(index)
    for name, value in changes.items():
        getattr(f, name).CopyFrom(value)
    return f


def shared(index: int, slot: int) -> pb.Frame:
    f = frame(index)
    f.slot = slot
    return f


def nan_linear_color(index: int) -> pb.Frame:
    f = bad(index, color=plane(np.full((H, W, 3), np.nan, np.float16), pb.FLOAT16))
    f.color_space = pb.LINEAR
    return f


BAD_INPUTS = {
    # name: (config, frames, status, words the message must contain)
    "wrong dtype": (session_config(), [frame(0), bad(1, depth=plane(np.ones((H, W), np.uint8), pb.UINT8))],
                    grpc.StatusCode.INVALID_ARGUMENT, ["frame 1", "dtype UINT8", "FLOAT16, FLOAT32"]),
    "bytes not matching shape": (session_config(), [bad(0, depth=pb.Plane(dtype=pb.FLOAT32, shape=[H, W], data=b"\0" * 10))],
                                 grpc.StatusCode.INVALID_ARGUMENT, ["10 bytes", "expected 4096"]),
    "shape changes mid-stream": (session_config(), [frame(0), frame(1, h=48)], grpc.StatusCode.INVALID_ARGUMENT,
                                 ["frame 1", "48x32", "32x32", "start a new one"]),
    "all-NaN depth": (session_config(), [frame(0), frame(1, depth=np.full((H, W), np.nan, np.float32))],
                      grpc.StatusCode.INVALID_ARGUMENT, ["frame 1", "no finite value", "depth pass"]),
    "inf depth everywhere": (session_config(), [frame(0, depth=np.full((H, W), np.inf, np.float32))],
                             grpc.StatusCode.INVALID_ARGUMENT, ["frame 0", "no finite value"]),
    "negative depth": (session_config(), [frame(0, depth=-np.ones((H, W), np.float32))], grpc.StatusCode.INVALID_ARGUMENT,
                       ["negative", "min -1"]),
    "NaN colour": (session_config(), [nan_linear_color(0)],
                   grpc.StatusCode.INVALID_ARGUMENT, ["color has 3072 NaN/inf", "finite"]),
    "gap in indices": (session_config(), [frame(0), frame(2)], grpc.StatusCode.INVALID_ARGUMENT,
                       ["index 2", "1 was expected", "gap", "resending from frame 1"]),
    "repeated index": (session_config(), [frame(0), frame(0)], grpc.StatusCode.INVALID_ARGUMENT, ["repeat"]),
    "declared buffer missing": (session_config(buffers=[pb.COLOR, pb.NORMALS]), [frame(0)], grpc.StatusCode.INVALID_ARGUMENT,
                                ["NORMALS", "no normals plane"]),
    "unknown preset": (session_config(quality="ultra"), [], grpc.StatusCode.INVALID_ARGUMENT, ["'ultra'", "final", "preview"]),
    "unknown model": (session_config(model="wan9"), [], grpc.StatusCode.INVALID_ARGUMENT, ["'wan9'", "tiny"]),
    "bad window": (session_config(window=16), [], grpc.StatusCode.INVALID_ARGUMENT, ["window=16", "4k+1"]),
    "protocol major mismatch": (session_config(protocol_major=2), [], grpc.StatusCode.FAILED_PRECONDITION,
                                [f"protocol 2.{pb.PROTOCOL_MINOR}", f"speaks 1.{pb.PROTOCOL_MINOR}", "install"]),
    # sizes and ranges refused up front, naming the limit (GetInfo.limits)
    "shape product beyond int64": (session_config(), [frame(0), bad(1, depth=pb.Plane(dtype=pb.FLOAT32, shape=[2**32 - 1] * 2,
                                                                                       data=b"\0" * 16))],
                                   grpc.StatusCode.INVALID_ARGUMENT, ["frame 1", "4294967295x4294967295", "limit of 4096x4096"]),
    "very wide frame": (session_config(buffers=[pb.COLOR]), [frame(0, h=1, w=5000)], grpc.StatusCode.INVALID_ARGUMENT,
                        ["frame 0", "1x5000", "limit of 4096x4096", "GetInfo.limits"]),
    "window over the limit": (session_config(window=261), [], grpc.StatusCode.INVALID_ARGUMENT,
                              ["window=261", "limit of 257"]),
    "seed near 2^64": (session_config(seed=2**64 - 1), [], grpc.StatusCode.INVALID_ARGUMENT,
                       ["seed=18446744073709551615", "limit of 4294967295"]),
    # shared-memory frames without a ring, or with bytes
    "slot without a ring": (session_config(), [frame(0), shared(1, slot=0)], grpc.StatusCode.INVALID_ARGUMENT,
                            ["frame 1", "slot 0", "no shared-memory ring"]),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_gets_status_and_actionable_message(daemon, name):
    cfg, frames, code, words = BAD_INPUTS[name]
    messages, error = collect(daemon.stub().Realify(stream(cfg, frames)))
    assert error is not None, f"{name}: accepted"
    assert error.code() == code, (name, error.code(), error.details())
    for word in words:
        assert word in error.details(), (name, word, error.details())
    accepted = [f.index for f in frames[:-1]]  # the last frame is the bad one
    assert [r.index for r in finals(messages)] == accepted, "frames accepted before the bad one still come back"


def test_an_undecodable_message_mid_stream_ends_the_session_after_the_accepted_frames(daemon):
    """A reading error is never a silent hang: INVALID_ARGUMENT, after the results of what was accepted."""
    raw = daemon.channel().stream_stream("/c2r.v1.Coarse2Real/Realify", request_serializer=lambda b: b,
                                         response_deserializer=pb.ServerMessage.FromString)
    requests = [pb.ClientMessage(config=session_config(window=5, overlap=0)).SerializeToString()]
    requests += [pb.ClientMessage(frame=frame(i)).SerializeToString() for i in range(5)]
    requests.append(b"\x12\xff\xff\xff\xff\x0f")  # field 2 (frame) claiming ~4 GiB: no ClientMessage decodes from it
    messages, error = collect(raw(iter(requests), timeout=120))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "could not be decoded" in error.details() and "after frame 5" in error.details(), error.details()
    assert [r.index for r in finals(messages)] == list(range(5)), "the accepted frames came back first"


def test_config_must_come_first(daemon):
    messages, error = collect(daemon.stub().Realify(iter([pb.ClientMessage(frame=frame(0))])))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "must be a SessionConfig" in error.details()


def test_oversize_message_is_refused_with_advice(daemon):
    huge = np.zeros((4096, 5600, 3), np.uint8)  # 65.6 MiB of colour
    messages, error = collect(daemon.stub().Realify(stream(session_config(buffers=[pb.COLOR]), [
        pb.Frame(index=0, color=plane(huge, pb.UINT8))])))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "64 MiB" in error.details() and "lower the resolution" in error.details()


def test_an_engine_that_cannot_start_stops_the_daemon_with_the_reason(tmp_path):
    result = subprocess.run([sys.executable, "-m", "c2r.cli.main", "serve", "--port", "0", "--preview-port", "0", "--model", "nope",
                             "--state-dir", str(tmp_path / "s"), "--output-root", str(tmp_path / "o")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("c2r serve: the engine cannot start") and "unknown model 'nope'" in last and "tiny" in last
    assert result.stderr.count("engine 0 process started") == 1, "a deterministic failure is not retried"


def test_exposed_host_requires_token(tmp_path):
    result = subprocess.run([sys.executable, "-m", "c2r.cli.main", "serve", "--host", "0.0.0.0", "--state-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--token" in result.stderr


def test_progressive_previews_come_before_the_final_frames(daemon):
    messages, error = collect(daemon.stub().Realify(stream(session_config(steps=2, preview_every=1), (frame(i) for i in range(5)))))
    assert error is None, error
    results = [m.result for m in messages if m.WhichOneof("kind") == "result"]
    previews = [r.index for r in results if r.preview]
    assert previews == list(range(5)), "one estimate per frame after step 1 of 2"
    assert [r.index for r in results if not r.preview] == list(range(5))
    assert all(image(r).shape == (H, W, 3) for r in results)
    last_preview = max(i for i, r in enumerate(results) if r.preview)
    first_final = min(i for i, r in enumerate(results) if not r.preview)
    assert last_preview < first_final


def test_previews_never_outnumber_the_results(daemon):
    """4 steps, an estimate after each of the first 3: the estimates take turns over the window's frames, so a
    client gets at most one preview message per result (each frame previewed once at most)."""
    config = session_config(steps=4, preview_every=1, window=9, overlap=1)
    messages, error = collect(daemon.stub().Realify(stream(config, (frame(i) for i in range(17)))))
    assert error is None, error
    results = [m.result for m in messages if m.WhichOneof("kind") == "result"]
    previews = [r.index for r in results if r.preview]
    assert [r.index for r in results if not r.preview] == list(range(17))
    assert previews and len(previews) == len(set(previews)) <= 17, previews
    assert set(previews) <= set(range(17)), "a preview names a frame of the clip"
    short = session_config(steps=4, preview_every=1, window=5, overlap=0)  # 2 frames, 3 estimates: one has no turn
    messages, error = collect(daemon.stub().Realify(stream(short, (frame(i) for i in range(2)))))
    assert error is None, error
    assert [m.result.index for m in messages if m.WhichOneof("kind") == "result" and not m.result.preview] == [0, 1]


def test_png_result_encoding(daemon):
    messages, error = collect(daemon.stub().Realify(stream(session_config(result_encoding=pb.PNG), (frame(i) for i in range(2)))))
    assert error is None, error
    results = finals(messages)
    assert [r.index for r in results] == [0, 1] and all(r.png.startswith(b"\x89PNG") and not r.color.data for r in results)


def test_previews_of_an_overlapping_window_name_the_frames_they_show(daemon):
    """Window 1 of (9, overlap 1) starts at frame 8 and emits from frame 9: the engine sends the front end only each
    estimate's share, and both the client's and the relay's previews index the emitted frames from 9 on (the
    relay once started its window's previews at the window's first frame, one frame early)."""
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.connect(daemon.stub().GetInfo(pb.InfoRequest(protocol_major=1)).preview_address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    assert sub.poll(10_000) and sub.recv_multipart() == [PREVIEW_WELCOME]
    config = session_config(steps=4, preview_every=1, window=9, overlap=1)
    messages, error = collect(daemon.stub().Realify(stream(config, (frame(i) for i in range(17)))))
    assert error is None, error
    session_id = messages[0].started.session_id
    client = [m.result.index for m in messages if m.WhichOneof("kind") == "result" and m.result.preview]
    relayed = {}
    while sub.poll(2000 if not relayed else 200):
        topic, header, _ = sub.recv_multipart()
        head = json.loads(header)
        if topic.decode() == session_id and head["preview"]:
            relayed.setdefault(head["step"], []).append(head["index"])
    sub.close(0)
    # the relay sees every estimate whole: per step, window 0's frames 0-8, then window 1's emitted frames 9-16
    assert relayed and all(sorted(set(v)) == list(range(17)) for v in relayed.values()), relayed
    # the client sees each estimate's share: the three estimates of window 1 take turns over frames 9-16
    assert sorted(i for i in client if i >= 9) == list(range(9, 17)), client


GLIBC_X86 = sys.platform == "linux" and platform.machine() == "x86_64" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC_X86, reason="glibc's x86 copy tunable exists only on Linux x86-64 with glibc")
def test_the_daemon_runs_with_streaming_copies_under_its_own_pid(daemon):
    """`c2r serve` restarts itself once with glibc's non-temporal threshold lowered; the pid stays the one launched."""
    from c2r.daemon.cli_serve import TUNABLE

    for pid in (daemon.proc.pid, daemon.engine_pid()):
        environ = dict(e.split("=", 1) for e in open(f"/proc/{pid}/environ").read().split("\0") if "=" in e)
        assert f"{TUNABLE}=0x100000" in environ.get("GLIBC_TUNABLES", "").split(":"), (pid, environ.get("GLIBC_TUNABLES"))
    assert open(f"/proc/{daemon.proc.pid}/cmdline").read().split("\0")[1:4] == ["-m", "c2r.cli.main", "serve"]


def test_streaming_copies_keep_the_users_tunables_and_can_be_turned_off(monkeypatch):
    from c2r.daemon import cli_serve

    monkeypatch.setattr(cli_serve.sys, "platform", "linux")
    monkeypatch.setattr(cli_serve.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(cli_serve.platform, "libc_ver", lambda: ("glibc", "2.39"))
    env = cli_serve.streaming_copies_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "PATH": "/bin"})
    assert env == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.cpu.x86_non_temporal_threshold=0x100000", "PATH": "/bin"}
    assert cli_serve.streaming_copies_env(env) is None  # already set: no second restart
    assert cli_serve.streaming_copies_env({"C2R_CACHED_COPIES": "1"}) is None
    monkeypatch.setattr(cli_serve.platform, "libc_ver", lambda: ("", ""))  # musl: the tunable means nothing
    assert cli_serve.streaming_copies_env({}) is None
