"""Loopback ingest: how fast the daemon accepts 1280x720 frames, against a raw TCP socket.

    python benchmarks/bench_ingest.py [--frames 41] [--width 1280 --height 720]

What is measured, honestly and through the product path:
- gRPC: a real Realify session on a real `c2r serve` (tiny model, CPU) started for the run.
  The session's window is exactly --frames long, so the model cannot start before the last
  frame has arrived; the daemon reports the complete window as QUEUED, and that event stops
  the clock. Every frame was received, decoded, validated and stored by the daemon's normal
  code. The session is then cancelled (the model's work is not part of ingest).
- raw TCP: the same number of bytes per frame (the serialized gRPC message) pushed through a
  loopback socket to a thread that only reads: the transport ceiling on this machine.
- daemon CPU ms/frame: user+system CPU of the daemon's front-end process (the one that
  speaks gRPC and stores frames; the model lives in the engine process) over the ingest,
  from /proc/<pid>/stat, divided by the frame count.
- client pack ms/frame: numpy -> Frame message in this process (part of the gRPC figure).
Frames carry colour uint8, depth float16 and normals float16 (about 10 MiB each at 720p).
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from c2r.client import Progress, connect, pack_frame


def make_planes(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth, plausible G-buffers (random bytes would be no slower or faster to move)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    color = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 90)], -1).astype(np.uint8)
    depth = (2 + 10 * y / height).astype(np.float16)
    normals = np.stack([np.zeros_like(x), np.ones_like(x), np.zeros_like(x)], -1).astype(np.float16)
    return color, depth, normals


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_grpc(client, frames: int, planes) -> tuple[float, float | None]:
    """(seconds until the daemon holds every frame, daemon front-end CPU seconds meanwhile)."""
    color, depth, normals = planes
    pid = client.daemon.pid if client.daemon else None
    session = client.realify(model="tiny", quality="preview", steps=1, window=frames, overlap=0,
                             resolution="native", buffers=("color", "depth", "normals"))  # fmt: skip
    cpu_before = cpu_seconds(pid) if pid else None
    start = time.perf_counter()
    sender = threading.Thread(target=lambda: [session.send(i, color, depth, normals) for i in range(frames)], daemon=True)
    sender.start()
    for event in session.events():
        if isinstance(event, Progress) and event.kind == "queued" and event.frames_received >= frames:
            break
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu_before if cpu_before is not None else None
    sender.join()
    session.close()  # cancels: the model's work is not ingest
    return elapsed, cpu


def bench_tcp(frames: int, frame_bytes: int) -> float:
    """Seconds to push ``frames`` x ``frame_bytes`` through a loopback TCP socket."""
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=41, help="frames per run, 4k+1 (it is also the session's window)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    if (args.frames - 1) % 4:
        parser.error(f"--frames {args.frames}: use 4k+1 frames (e.g. 41), the window rule the session must follow")

    planes = make_planes(args.height, args.width)
    start = time.perf_counter()
    message = pack_frame(0, *planes)
    pack_ms = (time.perf_counter() - start) * 1e3
    frame_bytes = message.ByteSize() + 8  # + the ClientMessage oneof tag and length prefix, about

    with tempfile.TemporaryDirectory(prefix="c2r-bench-") as tmp:
        daemon_args = ("--state-dir", f"{tmp}/state", "--output-root", f"{tmp}/out", "--preview-port", "0", "--device", "cpu")
        with connect(f"127.0.0.1:{free_port()}", model="tiny", daemon_args=daemon_args, timeout=60) as client:
            grpc_s, cpu_s = bench_grpc(client, args.frames, planes)
    tcp_s = bench_tcp(args.frames, frame_bytes)

    mib = frame_bytes / 2**20
    rows = [
        ("frame", f"{args.width}x{args.height} rgb8 + depth f16 + normals f16 = {mib:.1f} MiB"),
        ("frames per run", str(args.frames)),
        ("gRPC daemon ingest", f"{args.frames / grpc_s:8.1f} frames/s  {args.frames * mib / grpc_s:8.0f} MiB/s"),
        ("raw TCP loopback", f"{args.frames / tcp_s:8.1f} frames/s  {args.frames * mib / tcp_s:8.0f} MiB/s"),
        ("gRPC / raw TCP", f"{tcp_s / grpc_s:8.2f}"),
        ("daemon CPU per frame", "n/a" if cpu_s is None else f"{cpu_s * 1e3 / args.frames:8.1f} ms (front end, outside the model)"),
        ("client pack per frame", f"{pack_ms:8.1f} ms"),
        ("load average (1 min)", f"{os.getloadavg()[0]:8.2f} on {os.cpu_count()} CPUs (other work slows every figure)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps({
        "bench": "ingest", "width": args.width, "height": args.height, "frames": args.frames, "frame_mib": round(mib, 2),
        "grpc_fps": round(args.frames / grpc_s, 2), "tcp_fps": round(args.frames / tcp_s, 2),
        "grpc_over_tcp": round(tcp_s / grpc_s, 3),
        "daemon_cpu_ms_per_frame": None if cpu_s is None else round(cpu_s * 1e3 / args.frames, 2),
        "client_pack_ms_per_frame": round(pack_ms, 2), "load_average": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
