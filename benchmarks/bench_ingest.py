"""Same-host ingest: how fast the daemon takes 1280x720 G-buffer frames, by each handoff, in one run.

    python benchmarks/bench_ingest.py [--frames 41] [--rounds 3] [--width 1280 --height 720]

Handoffs, interleaved round after round (the order rotates each round; one warm-up round
is discarded), each figure the median over the rounds with its min-max:
- shared memory: a real Realify session on a real `c2r serve` (tiny model, CPU) with the
  client's shared-memory ring (the default for a loopback daemon);
- gRPC bytes: the same session kind with planes as bytes in the stream (shared_memory=False);
- raw TCP: the same bytes per frame through a loopback socket to a thread that only reads:
  the transport ceiling on this machine;
- PNG on disk: the handoff several peer tools use: colour as an 8-bit PNG (this project's
  encoder, level 6), depth as a 16-bit PNG and normals as an 8-bit PNG (Pillow), written to a
  temporary folder by one thread and read back and decoded by another.
For the sessions the window is exactly --frames long, so the model cannot start before the
last frame arrived; the daemon reports the complete window QUEUED and that event stops the
clock. By then every frame was received, checked and copied into its window buffer (no
stacking happens afterwards; the model's work is not ingest: the session is then cancelled).
A cancelled window still runs in the engine until its first denoising step (seconds at 720p
on the CPU), so every run, of any method, first waits until the engine process is idle: no
method is measured against a busy engine.
Daemon CPU ms/frame: CPU time of the daemon's front-end process over the ingest (its threads'
/proc/<pid>/task/*/schedstat, nanoseconds), per frame. Client pack ms/frame: the median of warm repeated calls of
what send() does per frame: FramePlanes -> the encoded ClientMessage (bytes), or the copy into a ring slot
(shared memory). Frames: colour uint8, depth float16, normals float16 (9.7 MiB at 720p).
Labels: CPU only; the figures are front-end work, the tiny model never runs.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from c2r.client import FramePlanes, Progress, connect, shm
from c2r.client.frames import encode_frame
from c2r.client.png import write_png

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rounds import interleaved, warm_median_ms  # noqa: E402

METHODS = ("shared memory", "gRPC bytes", "raw TCP", "PNG on disk")


def make_planes(height: int, width: int) -> FramePlanes:
    """Smooth, plausible G-buffers (random bytes would be no slower or faster to move)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    color = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 90)], -1).astype(np.uint8)
    depth = (2 + 10 * y / height).astype(np.float16)
    normals = np.stack([np.zeros_like(x), np.ones_like(x), np.zeros_like(x)], -1).astype(np.float16)
    return FramePlanes(color, depth, normals)


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds process ``pid`` has used (Linux; None elsewhere): the sum of its threads' nanosecond
    counters (/proc/PID/task/*/schedstat), /proc/PID/stat's 10 ms ticks if those cannot be read."""
    try:
        return sum(int((task / "schedstat").read_text().split()[0]) for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid: int, timeout: float = 60.0) -> None:
    """Until process ``pid`` (the engine) used under 2 % of a CPU over 0.5 s."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(pid)
    while before is not None and time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - before < 0.01:
            return
        before = now


def bench_session(client, frames: int, planes: FramePlanes, shared_memory: bool) -> tuple[float, float | None]:
    """(seconds until the daemon holds every frame, daemon front-end CPU seconds meanwhile)."""
    pid = client.daemon.pid if client.daemon else None
    session = client.realify(model="tiny", quality="preview", steps=1, window=frames, overlap=0, resolution="native",
                             buffers=("color", "depth", "normals"), shared_memory=shared_memory)
    cpu_before = cpu_seconds(pid) if pid else None
    start = time.perf_counter()
    sender = threading.Thread(target=lambda: [session.send(i, planes) for i in range(frames)], daemon=True)
    sender.start()
    for event in session.events():
        if isinstance(event, Progress) and event.kind == "queued" and event.frames_received >= frames:
            break
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu_before if cpu_before is not None else None
    sender.join()
    if session.shared_memory != shared_memory:
        raise SystemExit(f"asked for shared_memory={shared_memory}, the session used {session.shared_memory}: {session.warnings}")
    session.close()  # cancels: the model's work is not ingest
    return elapsed, cpu


def bench_tcp(frames: int, frame_bytes: int) -> float:
    """Seconds to push ``frames`` x ``frame_bytes`` through a loopback TCP socket to a reader."""
    server = socket.create_server(("127.0.0.1", 0))
    total = frames * frame_bytes

    def drain():
        conn, _ = server.accept()
        buf = bytearray(4 << 20)
        got = 0
        while got < total:
            n = conn.recv_into(buf)
            if not n:
                break
            got += n
        conn.sendall(b"k")  # acknowledge the last byte, like the daemon's QUEUED event
        conn.close()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    payload = os.urandom(frame_bytes)
    with socket.create_connection(server.getsockname()) as sock:
        start = time.perf_counter()
        for _ in range(frames):
            sock.sendall(payload)
        sock.recv(1)
        elapsed = time.perf_counter() - start
    reader.join()
    server.close()
    return elapsed


def bench_png(frames: int, planes: FramePlanes) -> float:
    """Seconds for a writer thread to save and a reader thread to load and decode every frame."""
    from PIL import Image

    depth16 = np.clip(planes.depth.astype(np.float32) * 1000, 0, 65535).astype(np.uint16)  # millimetres, as peers store it
    normals8 = ((planes.normals.astype(np.float32) + 1) * 127.5).astype(np.uint8)
    with tempfile.TemporaryDirectory(prefix="c2r-bench-png-") as tmp:
        written: queue.Queue = queue.Queue()

        def write():
            for i in range(frames):
                write_png(Path(tmp) / f"{i:05d}_color.png", planes.color)
                Image.fromarray(depth16).save(Path(tmp) / f"{i:05d}_depth.png")
                Image.fromarray(normals8).save(Path(tmp) / f"{i:05d}_normals.png")
                written.put(i)

        start = time.perf_counter()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        for _ in range(frames):
            i = written.get()
            for kind in ("color", "depth", "normals"):
                with Image.open(Path(tmp) / f"{i:05d}_{kind}.png") as image:
                    np.asarray(image)
        elapsed = time.perf_counter() - start
        writer.join()
    return elapsed


def pack_times(planes: FramePlanes) -> dict[str, float]:
    ring = shm.FrameRing(1, shm.slot_bytes_for(planes))
    try:
        return {"gRPC bytes": warm_median_ms(lambda: encode_frame(0, planes)),
                "shared memory": warm_median_ms(lambda: ring.write(0, 0, planes))}
    finally:
        ring.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f}  ({min(values):.1f}-{max(values):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=41, help="frames per run, 4k+1 (it is also the session's window)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (after one warm-up round)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                        help="handoffs to run (raw TCP always runs: the others are given relative to it)")
    args = parser.parse_args()
    args.methods = [m for m in METHODS if m in args.methods or m == "raw TCP"]
    if (args.frames - 1) % 4:
        parser.error(f"--frames {args.frames}: use 4k+1 frames (e.g. 41), the window rule the session must follow")

    load_at_start = os.getloadavg()[0]
    planes = make_planes(args.height, args.width)
    frame_bytes = len(encode_frame(0, planes))  # the ClientMessage a session sends, exactly
    with tempfile.TemporaryDirectory(prefix="c2r-bench-") as tmp:
        daemon_args = ("--state-dir", f"{tmp}/state", "--output-root", f"{tmp}/out", "--preview-port", "0", "--device", "cpu")
        with connect(f"127.0.0.1:{free_port()}", model="tiny", daemon_args=daemon_args, timeout=60) as client:
            engine = int(Path(f"{tmp}/state/engine-0.pid").read_text())
            methods = {
                "shared memory": lambda: bench_session(client, args.frames, planes, True),
                "gRPC bytes": lambda: bench_session(client, args.frames, planes, False),
                "raw TCP": lambda: (bench_tcp(args.frames, frame_bytes), None),
                "PNG on disk": lambda: (bench_png(args.frames, planes), None),
            }

            def measured(method):
                def run() -> dict:
                    wait_until_idle(engine)
                    elapsed, cpu = methods[method]()
                    return {"fps": args.frames / elapsed, "cpu_ms": None if cpu is None else cpu * 1e3 / args.frames}
                return run

            samples = interleaved({m: measured(m) for m in args.methods}, args.rounds)
            pack_ms = pack_times(planes)

    mib = frame_bytes / 2**20
    fps = {m: [r["fps"] for r in samples[m]] for m in samples}
    cpu_ms = {m: [r["cpu_ms"] for r in samples[m]] for m in samples if samples[m][0]["cpu_ms"] is not None}
    tcp = statistics.median(fps["raw TCP"])
    rows = [("frame", f"{args.width}x{args.height} rgb8 + depth f16 + normals f16 = {mib:.1f} MiB; {args.frames} frames per run, "
                      f"{args.rounds} rounds (+1 warm-up), median (min-max); CPU only, the model never runs")]
    for m in fps:
        rows.append((f"{m} frames/s", f"{spread(fps[m])}   = {statistics.median(fps[m]) / tcp:5.2f}x raw TCP"))
    for m in cpu_ms:
        rows.append((f"daemon CPU/frame, {m}", f"{spread(cpu_ms[m])} ms (front end, outside the model)"))
    for m, ms in pack_ms.items():
        rows.append((f"client pack/frame, {m}", f"{ms:8.2f} ms (median of 15 warm calls)"))
    rows.append(("load average (1 min)", f"{load_at_start:8.2f} at the start, {os.getloadavg()[0]:.2f} at the end, on "
                                         f"{os.cpu_count()} CPUs (other work slows every figure)"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps({
        "bench": "ingest", "label": "CPU, loopback, tiny model never runs", "width": args.width, "height": args.height,
        "frames": args.frames, "rounds": args.rounds, "frame_mib": round(mib, 2),
        "fps_median": {m: round(statistics.median(v), 2) for m, v in fps.items()},
        "over_tcp": {m: round(statistics.median(v) / tcp, 3) for m, v in fps.items()},
        "daemon_cpu_ms_per_frame": {m: round(statistics.median(v), 2) for m, v in cpu_ms.items()},
        "client_pack_ms_per_frame": {m: round(v, 2) for m, v in pack_ms.items()},
        "load_average": [round(load_at_start, 2), round(os.getloadavg()[0], 2)], "cpus": os.cpu_count(),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
