"""The daemon front end's own cost: CPU per window of the tiny preview demo, and peak memory under load.

    python benchmarks/bench_frontend.py cpu [--rounds 3]
    python benchmarks/bench_frontend.py rss [--frames 400] [--window 33] [--session-memory-mb 256]

cpu: the README's demo (examples/coarse_cube.mp4 + depth, 48 frames of 128x96, model tiny,
quality preview: 4 steps, a progressive preview every step) through a real daemon (CPU,
random weights), one warm-up round then --rounds measured ones. Per round: the front end's
CPU time (its threads' /proc schedstat, ns; the process that speaks gRPC; the model runs in the engine) against
the window's wall time (STARTED to WINDOW_DONE as the client sees it), as a percentage; then
what that CPU is spent on, each piece timed in this process on the same data (warm, median of
repeats) and multiplied by how often a window does it.

rss: peak resident memory (VmHWM, shared-memory pages included) of the front end while a
client streams --frames 1280x720 frames (rgb8 + depth f16 + normals f16) into a slow model
(tiny at 480p on the CPU: every window waits for the engine), and while a client sends the same stream
but never reads a single result; against the bound --session-memory-mb + one window + 200 MB.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from c2r.client import C2RError, FramePlanes, Progress, connect, pack_frame
from c2r.client.frames import pack_plane

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import cpu_seconds, make_planes  # noqa: E402
from rounds import warm_median_ms  # noqa: E402
DEMO = dict(model="tiny", quality="preview", resolution="native", seed=1)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_clip() -> list[FramePlanes]:
    import av

    with av.open(str(ROOT / "examples" / "coarse_cube.mp4")) as container:
        colors = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with np.load(ROOT / "examples" / "coarse_cube_depth.npz") as z:
        depth = z[z.files[0]].astype(np.float32)
    return [FramePlanes(c, depth[i]) for i, c in enumerate(colors)]


def breakdown(frames: list[FramePlanes], steps: int) -> dict[str, float]:
    """ms per window of the front end's pieces, timed here on the demo's data."""
    from c2r.daemon.engine import INLINE_BYTES
    from c2r.daemon.engine_messages import RunWindow, WindowResult, preview_share
    from c2r.daemon.frame_check import FrameChecker
    from c2r.daemon.frame_store import FrameStore
    from c2r.daemon.ipc import SharedArrays, pack, unpack
    from c2r.models.backend import RealifyConfig, WindowRequest
    from c2r.models.windows import Window

    n = len(frames)
    messages = [pack_frame(i, f) for i, f in enumerate(frames)]
    buffers = SharedArrays("w-", keep_bytes=2**30)
    with tempfile.TemporaryDirectory() as tmp:
        def ingest():
            store = FrameStore(Path(tmp) / "spill", 2**30, 81, 0, allocate=buffers.allocate, free=buffers.free)
            checker = FrameChecker(["color", "depth"])
            for m in messages:
                checked = checker.check(m)
                store.put(checked, check=checker.check_values)
                checker.accepted(m.index)
            return store

        ingest_ms = warm_median_ms(lambda: ingest().close(), repeats=5)
        store = ingest()
        window = Window(0, 0, n, 0)
        run = RunWindow(1, "s", "tiny", "", WindowRequest(store.clip(window), RealifyConfig(), None, window))
        results = SharedArrays("r-")
        out = np.zeros((n, *frames[0].color.shape), np.uint8)

        def result_round_trip(frames=out):
            if frames.nbytes < INLINE_BYTES:  # as the engine's send_frames: small frames cross as a ZeroMQ frame
                return unpack(pack(WindowResult(1, 1, np.ascontiguousarray(frames), 0.0, 0))).frames
            shared = results.allocate({"frames": (frames.shape, np.uint8)})
            np.copyto(shared["frames"], frames)
            parts = pack(WindowResult(1, 1, shared["frames"], 0.0, 0), results)
            results.forget(shared)
            return unpack(parts).frames

        estimates = range(1, steps)  # preview_every 1: an estimate after each step but the last, each sending its share

        pieces = {
            "frames in: check + copy into the window buffer + value checks": ingest_ms,
            "window to the engine: RunWindow handle": warm_median_ms(lambda: pack(run, buffers)),
            "results back: shm handle (inline under the same bound), copied out": warm_median_ms(result_round_trip),
            "results out: RGB8 planes packed": warm_median_ms(lambda: [pack_plane(f) for f in out]),
            f"previews back: {len(estimates)} estimates' shares (one frame each in all), inline under {INLINE_BYTES >> 10} KiB": sum(
                warm_median_ms(lambda: result_round_trip(out[preview_share(step, steps, 1)])) for step in estimates),
            f"previews out: {len(estimates)} estimates taking turns, one frame each in all, packed": warm_median_ms(
                lambda: [pack_plane(f) for f in out]),
        }
        store.close()
        buffers.close()
    return pieces


def bench_cpu(args) -> dict:
    frames = demo_clip()
    with tempfile.TemporaryDirectory(prefix="c2r-bench-") as tmp:
        daemon_args = ("--state-dir", f"{tmp}/state", "--output-root", f"{tmp}/out", "--preview-port", "0", "--device", "cpu")
        with connect(f"127.0.0.1:{free_port()}", model="tiny", daemon_args=daemon_args, timeout=60) as client:
            pid = client.daemon.pid
            shares, walls, cpus, steps = [], [], [], 0
            for round_index in range(args.rounds + 1):
                with client.realify(**DEMO) as session:
                    cpu_before = cpu_seconds(pid)
                    for i, f in enumerate(frames):
                        session.send(i, f)
                    session.end()
                    started = done = None
                    received = 0
                    for event in session.events():
                        received += 1
                        if isinstance(event, Progress) and event.kind == "started" and started is None:
                            started = time.perf_counter()
                        if isinstance(event, Progress) and event.kind == "window_done":
                            done = time.perf_counter()
                        if isinstance(event, Progress) and event.kind == "step":
                            steps = max(steps, event.num_steps)
                    cpu = cpu_seconds(pid) - cpu_before
                    events = received  # results, previews, progress and done as the client sees them (batched on the wire)
                if round_index:
                    walls.append(done - started)
                    cpus.append(cpu)
                    shares.append(100 * cpu / (done - started))
    pieces = breakdown(frames, steps)
    rows = [("demo", f"examples/coarse_cube.mp4: {len(frames)} frames {frames[0].color.shape[1]}x{frames[0].color.shape[0]}, "
                     f"tiny, preview ({steps} steps, a preview each); CPU, random weights; {args.rounds} rounds + 1 warm-up"),
            ("window wall time", f"{statistics.median(walls) * 1e3:8.0f} ms  ({min(walls) * 1e3:.0f}-{max(walls) * 1e3:.0f})"),
            ("front-end CPU per window", f"{statistics.median(cpus) * 1e3:8.1f} ms  ({min(cpus) * 1e3:.1f}-{max(cpus) * 1e3:.1f}), "
                                         "whole session: frames in, events, results out"),
            ("front-end CPU / window wall", f"{statistics.median(shares):8.2f} %  ({min(shares):.2f}-{max(shares):.2f})")]
    rows += [(f"  {name}", f"{ms:8.2f} ms") for name, ms in pieces.items()]
    rest = statistics.median(cpus) * 1e3 - sum(pieces.values())
    rows.append((f"  the rest: gRPC reads/writes ({len(frames)} frames in, {events} client events out, both batched on "
                 "the wire; ring, slot releases), asyncio, engine events",
                 f"{rest:8.2f} ms (total minus the above)"))
    rows.append(("load average (1 min)", f"{os.getloadavg()[0]:8.2f} on {os.cpu_count()} CPUs"))
    return {"rows": rows, "json": {"bench": "frontend_cpu", "label": "CPU, random weights, tiny preview demo",
                                   "window_ms": round(statistics.median(walls) * 1e3, 1),
                                   "frontend_cpu_ms": round(statistics.median(cpus) * 1e3, 2),
                                   "frontend_share_pct": round(statistics.median(shares), 3), "frames_in": len(frames), "client_events": events,
                                   "breakdown_ms": {k: round(v, 3) for k, v in pieces.items()},
                                   "load_average": round(os.getloadavg()[0], 2)}}


def stream_720p(session, frames: int, planes: FramePlanes) -> None:
    try:
        for i in range(frames):
            session.send(i, planes)
        session.end()
    except C2RError:  # the reader stopped at --seconds and closed the session
        pass


def bench_rss(args) -> dict:
    planes = make_planes(720, 1280)
    frame_mb = sum(a.nbytes for _, a in planes.arrays()) / 2**20
    window_mb = frame_mb * args.window
    bound = args.session_memory_mb + window_mb + 200
    options = dict(model="tiny", quality="preview", steps=1, window=args.window, overlap=1, resolution="480p",
                   buffers=("color", "depth", "normals"))
    figures = {}
    with tempfile.TemporaryDirectory(prefix="c2r-bench-") as tmp:
        for case in args.cases:
            daemon_args = ("--state-dir", f"{tmp}/{case}/state", "--output-root", f"{tmp}/out", "--preview-port", "0",
                           "--device", "cpu", "--session-memory-mb", str(args.session_memory_mb))
            with connect(f"127.0.0.1:{free_port()}", model="tiny", daemon_args=daemon_args, timeout=60) as client:
                pid = client.daemon.pid
                if case == "reads results":
                    with client.realify(**options) as session:
                        sender = threading.Thread(target=stream_720p, args=(session, args.frames, planes), daemon=True)
                        sender.start()
                        deadline, got = time.monotonic() + args.seconds, 0
                        for _ in session.results():
                            got += 1
                            if time.monotonic() > deadline:
                                break  # the front end's backlog is at its steady state long before
                        peak = peak_rss_mb(pid)
                        sent = session.frames_sent
                    figures[case] = (peak, f"{got} results read, {sent} frames sent")
                else:
                    figures[case] = (never_reading_client(client, options, planes, args.frames, pid), "no result read")
    rows = [("stream", f"{args.frames} frames 1280x720 = {frame_mb:.1f} MiB each; window {args.window} = {window_mb:.0f} MiB; "
                       f"--session-memory-mb {args.session_memory_mb}; tiny at 480p (CPU, random weights)"),
            ("bound", f"{bound:8.0f} MiB  (session memory + one window + 200 MB)")]
    rows += [(f"peak front-end RSS, client {case}", f"{mb:8.0f} MiB  ({note})") for case, (mb, note) in figures.items()]
    return {"rows": rows, "json": {"bench": "frontend_rss", "label": "CPU, random weights", "frames": args.frames,
                                   "window": args.window, "session_memory_mb": args.session_memory_mb,
                                   "bound_mb": round(bound), "peak_rss_mb": {c: round(v[0]) for c, v in figures.items()}}}


def never_reading_client(client, options, planes: FramePlanes, frames: int, pid: int) -> float:
    """A raw stream whose responses nobody reads: the daemon must stall the session, not grow."""
    import grpc

    from c2r.client.config import session_config
    from c2r.v1 import coarse2real_pb2 as pb
    from c2r.v1 import coarse2real_pb2_grpc as pb_grpc

    config = session_config(**{k: v for k, v in options.items()})
    sent = [0]

    def requests():
        yield pb.ClientMessage(config=config)
        for i in range(frames):
            sent[0] = i + 1
            yield pb.ClientMessage(frame=pack_frame(i, planes))
        yield pb.ClientMessage(end=pb.EndOfStream())

    channel = grpc.insecure_channel(client.address, options=[("grpc.max_send_message_length", 64 * 2**20),
                                                             ("grpc.max_receive_message_length", 64 * 2**20)])
    call = pb_grpc.Coarse2RealStub(channel).Realify(requests())
    last, still = -1, 0
    while still < 20:  # until the daemon has stopped taking frames for 10 s
        time.sleep(0.5)
        still = still + 1 if sent[0] == last else 0
        last = sent[0]
    peak = peak_rss_mb(pid)
    call.cancel()
    channel.close()
    print(f"never-reading client: the daemon stopped taking frames after {sent[0]} of {frames}", file=sys.stderr)
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("cpu", "rss"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--window", type=int, default=33)
    parser.add_argument("--session-memory-mb", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=1e9, help="rss: stop the reading client after this long")
    parser.add_argument("--cases", nargs="+", default=["reads results", "never reads"], help="rss: which clients")
    args = parser.parse_args()
    result = bench_cpu(args) if args.mode == "cpu" else bench_rss(args)
    width = max(len(name) for name, _ in result["rows"])
    for name, value in result["rows"]:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(result["json"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
