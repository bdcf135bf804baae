"""`c2r preview`: watch the frames the daemon publishes while it renders.

The engine PUBlishes every previewed and finished frame on a ZeroMQ socket (its address is
in GetInfo.preview_address), three parts per message: the session id, a JSON header
{session, index, height, width, preview, step} and the raw RGB8 pixels. Any number of
viewers may subscribe; a slow viewer drops frames, it never slows the render.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .cli_options import add_connection_options
from .errors import C2RError
from .transport import PREVIEW_WELCOME as WELCOME


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    parser.add_argument("--save", type=Path, help="save each frame as a PNG in this folder (else print a line per frame)")
    parser.add_argument("--session", default="", help="only frames of this session id (default: all)")
    parser.add_argument("--count", type=int, default=0, help="stop after this many frames (default: run until Ctrl-C)")
    parser.add_argument("--timeout", type=float, default=0.0, help="stop after this many seconds without a frame (default: never)")


def decode(parts: list[bytes]) -> tuple[dict, np.ndarray]:
    """One preview message -> (header, (H, W, 3) uint8 image)."""
    header = json.loads(parts[1])
    image = np.frombuffer(parts[2], np.uint8).reshape(header["height"], header["width"], 3)
    return header, image


def frame_name(header: dict) -> str:
    kind = f"preview-step{header.get('step', 0):03d}" if header.get("preview") else "final"
    return f"{header['session']}_{header['index']:06d}_{kind}.png"


def run(args: argparse.Namespace) -> int:
    try:
        import zmq
    except ImportError:
        print("c2r preview needs pyzmq: pip install 'coarse2real[daemon]' (or pip install pyzmq)", file=sys.stderr)
        return 2
    from .client import connect

    try:
        with connect(args.address, token=args.token, start_daemon=False) as client:
            address = client.info().preview_address
    except C2RError as error:
        print(f"c2r preview: {error}", file=sys.stderr)
        return 1
    if not address:
        print(f"c2r preview: the daemon at {args.address} publishes no preview (its engine has not started yet?); retry in a moment", file=sys.stderr)
        return 1
    if args.save:
        from c2r.client.png import write_png

        args.save.mkdir(parents=True, exist_ok=True)
    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SUBSCRIBE, args.session.encode())
    socket.setsockopt(zmq.SUBSCRIBE, WELCOME)
    socket.connect(address)
    received = 0
    try:
        while socket.recv_multipart() != [WELCOME]:  # the relay's first message: from now on it sends us every frame
            pass
        print(f"watching previews from {address}", file=sys.stderr, flush=True)
        while not args.count or received < args.count:
            if args.timeout and not socket.poll(int(args.timeout * 1000)):
                print(f"no frame for {args.timeout:g} s; stopping", file=sys.stderr)
                break
            parts = socket.recv_multipart()
            if len(parts) != 3:
                continue  # a welcome again (the relay restarted), not a frame
            header, image = decode(parts)
            received += 1
            if args.save:
                write_png(args.save / frame_name(header), image)
            kind = f"preview step {header.get('step', 0)}" if header.get("preview") else "final"
            print(f"session {header['session']} frame {header['index']} {header['width']}x{header['height']} {kind}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        socket.close()
    return 0
