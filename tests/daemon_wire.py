"""Speaking c2r.v1 to a real daemon in tests: frames, configs, calls, jobs (raw generated stubs)."""

from __future__ import annotations

import queue

import grpc
import numpy as np

from c2r.client import media
from c2r.v1 import coarse2real_pb2 as pb

H = W = 32


def session_config(**overrides) -> pb.SessionConfig:
    fields = dict(protocol_major=pb.PROTOCOL_MAJOR, protocol_minor=pb.PROTOCOL_MINOR, client_name="test_daemon",
                  model="tiny", quality="preview", steps=1, seed=7, window=17, overlap=5, resolution="native",
                  buffers=[pb.COLOR, pb.DEPTH], preview_every=0)
    fields.update(overrides)
    return pb.SessionConfig(**fields)


def plane(array: np.ndarray, dtype: int) -> pb.Plane:
    return pb.Plane(dtype=dtype, shape=list(array.shape), data=np.ascontiguousarray(array).tobytes())


def frame(index: int, h: int = H, w: int = W, depth: np.ndarray | None = None) -> pb.Frame:
    rng = np.random.default_rng(index)
    color = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    depth = (1.0 + rng.random((h, w))).astype(np.float32) if depth is None else depth
    return pb.Frame(index=index, color=plane(color, pb.UINT8), color_space=pb.SRGB, depth=plane(depth, pb.FLOAT32), depth_kind=pb.DISTANCE)


def stream(cfg: pb.SessionConfig, frames, end: bool = True):
    yield pb.ClientMessage(config=cfg)
    for f in frames:
        yield pb.ClientMessage(frame=f)
    if end:
        yield pb.ClientMessage(end=pb.EndOfStream())


def collect(call) -> tuple[list[pb.ServerMessage], grpc.RpcError | None]:
    out = []
    try:
        for message in call:
            out.append(message)
    except grpc.RpcError as e:
        return out, e
    return out, None


def finals(messages) -> list[pb.ResultFrame]:
    return [m.result for m in messages if m.WhichOneof("kind") == "result" and not m.result.preview]


def image(result: pb.ResultFrame) -> np.ndarray:
    return np.frombuffer(result.color.data, np.uint8).reshape(tuple(result.color.shape))


class Driver:
    """A Realify call fed from a queue, so a test can act on what comes back (cancel, disconnect)."""

    def __init__(self, stub, cfg: pb.SessionConfig, metadata=()):
        self.outgoing: queue.Queue = queue.Queue()
        self.outgoing.put(pb.ClientMessage(config=cfg))
        self.call = stub.Realify(iter(self.outgoing.get, None), metadata=metadata)

    def send(self, message: pb.ClientMessage) -> None:
        self.outgoing.put(message)

    def until_step(self) -> list[pb.ServerMessage]:
        seen = []
        for message in self.call:
            seen.append(message)
            if message.WhichOneof("kind") == "progress" and message.progress.kind == pb.Progress.STEP:
                return seen
        raise AssertionError(f"stream ended before a denoising step: {seen}")

    def rest(self):
        messages, error = collect(self.call)
        self.outgoing.put(None)
        return messages, error


def make_input(folder, count: int = 29, fps: float = 12.0):
    folder.mkdir(parents=True, exist_ok=True)
    writer = media.open_writer(folder / "coarse.mp4", fps)
    for i in range(count):
        writer.write(np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    writer.close()
    np.savez(folder / "depth.npz", depth=(1 + np.random.default_rng(0).random((count, 32, 32))).astype(np.float32))
    return folder / "coarse.mp4", folder / "depth.npz"


def job_spec(video, depth, output: str, steps: int = 2) -> pb.JobSpec:
    return pb.JobSpec(input=str(video), depth=str(depth), output=output, format=pb.PNG_SEQUENCE,
                      config=session_config(steps=steps))


def wait_terminal(d, job_id: str) -> pb.Job:
    job = None
    for event in d.stub().WatchJob(pb.JobRef(id=job_id), metadata=d.metadata, timeout=300):
        job = event.job
    return job


def read_sequence(folder) -> list[np.ndarray]:
    return [media.read_image(p) for p in sorted(folder.glob("*.png"))]
