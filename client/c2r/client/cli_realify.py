"""`c2r realify INPUT -o OUTPUT`: stream a clip through the daemon and write the result.

A sender thread reads and sends frames (blocking on the session's backpressure) while the
main thread writes results as they come back, so memory stays at a few frames whatever
the clip length. Ctrl-C cancels the session but keeps (and finalises) every frame already
written.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .cli_options import add_connection_options, add_realify_options, realify_options
from .errors import C2RError
from .events import Finished, Progress, Result, Warning
from .progress_bar import ProgressBar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="a video (mp4/mov/mkv), an image folder or pattern (frames/%%04d.png), or an EXR sequence")
    parser.add_argument("-o", "--output", required=True,
                        help="out.mp4 (video at the input's fps), out.png / out_%%04d.png / a folder (PNG sequence), or out.exr (half-float EXR sequence)")
    parser.add_argument("--depth", help="depth per frame: .npy/.npz (T, H, W) or an EXR sequence (distance, larger = farther)")
    parser.add_argument("--inverse-depth", action="store_true", help="the depth is disparity-like (larger = nearer)")
    parser.add_argument("--normals", help="normals per frame: .npy/.npz (T, H, W, 3) or an EXR sequence, in [-1, 1]")
    parser.add_argument("--fps", type=float, help="frame rate of the output (default: the input's; sequences 24)")
    add_realify_options(parser)
    add_connection_options(parser)
    parser.add_argument("--no-start", action="store_true", help="fail instead of starting a daemon when none answers")


class FrameSender(threading.Thread):
    """Reads the inputs frame by frame and sends them; remembers an error for the main thread."""

    def __init__(self, session, clip, depth, normals, depth_kind: str):
        super().__init__(name="c2r-realify-sender", daemon=True)
        self.session, self.clip, self.depth, self.normals, self.depth_kind = session, clip, depth, normals, depth_kind
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            for i, color in enumerate(self.clip):
                self.session.send(
                    i, color,
                    depth=None if self.depth is None else self.depth[i],
                    normals=None if self.normals is None else self.normals[i],
                    color_space=self.clip.color_space, depth_kind=self.depth_kind,
                )  # fmt: skip
            self.session.end()
        except Exception as error:  # reported by the main thread, which owns the terminal
            self.error = error
            self.session.cancel()


def _status(event: Progress) -> str:
    if event.kind == "queued":
        return f"window {event.window + 1} queued (position {event.queue_position})"
    if event.kind == "step":
        return f"window {event.window + 1} step {event.step}/{event.num_steps}"
    return f"window {event.window + 1} {'done' if event.kind == 'window_done' else event.kind}"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from . import media
    from .client import connect

    # A SIGTERM (a job scheduler, `timeout`) ends the run like Ctrl-C: frames written are kept
    # and an embedded daemon is stopped, instead of the process dying mid-write.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)

    try:
        clip = media.open_clip(args.input, fps=args.fps)
        depth = media.open_depth(args.depth).check(clip, "depth") if args.depth else None
        normals = media.open_normals(args.normals).check(clip, "normals") if args.normals else None
    except (media.MediaError, OSError) as error:
        print(f"c2r realify: {error}", file=sys.stderr)
        return 2
    buffers = ["color"] + ["depth"] * (depth is not None) + ["normals"] * (normals is not None)
    try:
        client = connect(args.address, token=args.token, start_daemon=not args.no_start, model=args.model or None)
    except C2RError as error:
        print(f"c2r realify: {error}", file=sys.stderr)
        return 1
    writer = None
    bar = ProgressBar(clip.num_frames)
    try:
        options = realify_options(args)
        if options.get("input_fps") is None:  # the model resamples to its own rate (C2R: 16 fps) and back
            options["input_fps"] = clip.fps
        with client, client.realify(buffers=buffers, **options) as session:
            for warning in session.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            writer = media.open_writer(args.output, fps=clip.fps)
            sender = FrameSender(session, clip, depth, normals, "inverse" if args.inverse_depth else "distance")
            sender.start()
            finished = None
            for event in session.events():
                if isinstance(event, Result) and not event.preview:
                    writer.write(event.image)
                    bar.update(done=writer.count)
                elif isinstance(event, Progress):
                    bar.update(status=_status(event), eta=event.eta_seconds)
                elif isinstance(event, Warning):
                    print(f"\nwarning: {event.message}", file=sys.stderr)
                elif isinstance(event, Finished):
                    finished = event
            sender.join()
            if sender.error is not None:
                raise sender.error
    except KeyboardInterrupt:
        bar.close()
        written = writer.count if writer else 0
        print(f"\ninterrupted: kept the {written} realified frames already written to {args.output}", file=sys.stderr)
        return 130
    except (C2RError, media.MediaError, OSError) as error:
        bar.close()
        kept = f"\n(kept the {writer.count} realified frames already written to {args.output})" if writer and writer.count else ""
        print(f"\nc2r realify: {error}{kept}", file=sys.stderr)
        return 1
    finally:
        if writer is not None:
            writer.close()
    bar.close()
    seconds = f" in {finished.seconds:.1f} s" if finished else ""
    print(f"wrote {writer.count} frames to {Path(args.output)} ({clip.fps:g} fps){seconds}", file=sys.stderr)
    return 0 if writer.count == clip.num_frames else 1
