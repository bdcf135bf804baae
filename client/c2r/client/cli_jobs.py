"""`c2r jobs`: scripted export through the daemon's job queue (list, submit, watch, cancel).

Jobs survive the client: the daemon reads the input files itself, writes under its output
root and resumes unfinished jobs after a restart, so `submit` can return at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from c2r.v1 import coarse2real_pb2 as pb

from .cli_options import add_connection_options, add_realify_options, realify_options
from .errors import C2RError

FINAL_STATES = (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="list jobs (the default)")
    submit = actions.add_parser("submit", help="export a file through the daemon")
    submit.add_argument("input", help="video, image folder/pattern or EXR sequence readable by the daemon")
    submit.add_argument("output", help="output path RELATIVE to the daemon's output root (out.mp4, frames/, out.exr)")
    submit.add_argument("--depth", default="", help="depth .npy/.npz or EXR sequence")
    submit.add_argument("--normals", default="", help="normals .npy/.npz or EXR sequence")
    submit.add_argument("--format", choices=("mp4", "png", "exr"), default="", help="default: from the output's name")
    submit.add_argument("--fps", type=float, default=0.0, help="output frame rate (default: the input's)")
    submit.add_argument("--watch", action="store_true", help="follow the job until it finishes")
    add_realify_options(submit)
    for name, text in (("watch", "follow a job until it finishes"), ("cancel", "cancel a job")):
        actions.add_parser(name, help=text).add_argument("id", help="job id (from `c2r jobs list`)")


def _state(job: pb.Job) -> str:
    return pb.JobState.Name(job.state).lower()


def format_jobs(jobs: list[pb.Job]) -> str:
    if not jobs:
        return "no jobs"
    rows = [("id", "state", "frames", "created", "output")]
    for job in jobs:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created)) if job.created else ""
        output = job.output + (f"  ({job.error})" if job.error else "")
        rows.append((job.id, _state(job), f"{job.frames_done}/{job.frames_total}", created, output))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows)


def watch(client, job_id: str) -> int:
    """Print one line per event; the exit code says how the job ended."""
    job = None
    for event in client.watch_job(job_id):
        job = event.job
        step = f" window {event.progress.window + 1} step {event.progress.step}/{event.progress.num_steps}" if event.progress.num_steps else ""
        print(f"{job.id} {_state(job)} {job.frames_done}/{job.frames_total} frames{step}", flush=True)
    if job is None:
        return 1
    if job.state == pb.FAILED:
        print(f"job {job.id} failed: {job.error}", file=sys.stderr)
    return 0 if job.state == pb.SUCCEEDED else 1


def _absolute(path: str) -> str:
    # The daemon resolves paths from its own working directory; a local user means this one.
    return str(Path(path).resolve()) if path else ""


def run(args: argparse.Namespace) -> int:
    from .client import connect

    action = args.action or "list"
    try:
        with connect(args.address, token=args.token, start_daemon=False) as client:
            if action == "list":
                print(format_jobs(client.list_jobs()))
                return 0
            if action == "cancel":
                job = client.cancel_job(args.id)
                print(f"{job.id} {_state(job)}")
                return 0
            if action == "watch":
                return watch(client, args.id)
            job = client.submit_job(
                _absolute(args.input), args.output, depth=_absolute(args.depth), normals=_absolute(args.normals),
                format=args.format, fps=args.fps, buffers=["color"] + ["depth"] * bool(args.depth) + ["normals"] * bool(args.normals),
                **realify_options(args),
            )  # fmt: skip
            print(f"submitted job {job.id}: {job.frames_total} frames -> {job.output}")
            return watch(client, job.id) if args.watch else 0
    except C2RError as error:
        print(f"c2r jobs {action}: {error}", file=sys.stderr)
        return 1
