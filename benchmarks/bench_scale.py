"""Scale-out on the CPU: a 250-frame job over 1, 2 and 4 engines, and one window over 1 vs 2 processes.

    python benchmarks/bench_scale.py [--frames 250] [--rounds 3] [--steps 20] [--sp-rounds 5]

CPU, tiny model, random weights; what it measures, through the product path:
- job wall time: real `c2r serve --engines K` daemons (K = 1, 2, 4, all started for the run)
  each run the same 250-frame 32x32 job, anchor-parallel (chaining anchors, anchors every 16
  frames of 17-frame windows: 15 anchor clips, then 16 chunks); a sequential job on the
  1-engine daemon is the streaming-order reference. Rounds are interleaved (1, 2, 4, sequential,
  then again), the 1-engine anchor job is the baseline; medians and min-max. Wall time runs
  from SubmitJob to SUCCEEDED (input decode, all windows, the PNG sequence written).
- sequence-parallel step: one IC transformer forward (CFG batch 2, colour reference, 17
  frames at 128x128: 320 noisy + 320 reference tokens) on one process, then the same over 2
  gloo processes (diffusers' Ulysses attention), interleaved per round; rank 1 waits at a
  barrier during the 1-process step.
This machine has 2 cores shared with other work: 2 engines can show the parallel speed-up
(at most 2x), 4 engines cannot beat 2 (they share the 2 cores) and show what over-subscription
costs; the tiny model's steps are so small that gloo's messages weigh more than the attention
they split, so the 2-process step shows the mechanism and its overhead, not a GPU's speed-up.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' real-daemon launcher and wire helpers

from daemon_process import start_daemon  # noqa: E402
from daemon_wire import job_spec, make_input, session_config, wait_terminal  # noqa: E402
from c2r.v1 import coarse2real_pb2 as pb  # noqa: E402

ENGINES = (1, 2, 4)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=250)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--sp-rounds", type=int, default=5)
    p.add_argument("--sp-rank", type=int, default=None, help=argparse.SUPPRESS)  # internal: one rank of the SP part
    p.add_argument("--sp-port", default=None, help=argparse.SUPPRESS)
    p.add_argument("--sp-out", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def job(d, inputs, name: str, steps: int, chaining: str) -> float:
    spec = job_spec(*inputs, name, steps=steps)
    spec.config.CopyFrom(session_config(steps=steps, window=17, overlap=5, chaining=chaining, anchor_every=16))
    started = time.perf_counter()
    done = wait_terminal(d, d.stub().SubmitJob(spec).id)
    seconds = time.perf_counter() - started
    if done.state != pb.SUCCEEDED:
        raise RuntimeError(f"job {name} failed: {done.error}")
    return seconds


def bench_jobs(args, work: Path) -> dict[str, list[float]]:
    inputs = make_input(work / "input", count=args.frames, fps=16.0)
    daemons = {k: start_daemon(work / f"d{k}", "--engines", str(k), timeout=600) for k in ENGINES}
    times: dict[str, list[float]] = {f"anchors, {k} engine(s)": [] for k in ENGINES} | {"sequential, 1 engine": []}
    try:
        job(daemons[1], inputs, "warmup", 1, "anchors")  # first-job costs (imports, allocations) out of the rounds
        for r in range(args.rounds):
            for k in ENGINES:
                times[f"anchors, {k} engine(s)"].append(job(daemons[k], inputs, f"a{k}-{r}", args.steps, "anchors"))
            times["sequential, 1 engine"].append(job(daemons[1], inputs, f"s-{r}", args.steps, "sequential"))
    finally:
        for d in daemons.values():
            d.stop()
    return times


def sp_rank(args) -> int:
    """One rank of the sequence-parallel step timing (run as a subprocess of this script)."""
    import torch
    import torch.distributed as dist

    from c2r.models.backends import create_backend
    from c2r.models.parallel.sequence import SequenceParallel

    torch.set_num_threads(1)
    rank = args.sp_rank
    backend = create_backend("tiny")
    backend.load("cpu")
    model = backend.pipeline.experts["transformer"]
    g = torch.Generator().manual_seed(0)
    noisy = torch.randn(2, 16, 5, 16, 16, generator=g)
    refs = [torch.randn(1, 16, 5, 16, 16, generator=g)]
    text = torch.randn(2, 16, model.transformer.config.text_dim, generator=g)
    t = torch.tensor([500.0])
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=args.sp_port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    sp = SequenceParallel.from_process_group("cpu")
    single, parallel = [], []

    def step() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            model(noisy, refs, t, text)
        return time.perf_counter() - start

    for r in range(args.sp_rounds + 1):  # round 0 warms up both
        if rank == 0:
            model.sequence_parallel = None
            for block in model.transformer.blocks:
                block.attn1.processor._parallel_config = None
            seconds = step()
            if r:
                single.append(seconds)
        dist.barrier()
        model.enable_sequence_parallel(sp)
        dist.barrier()
        seconds = step()
        if r:
            parallel.append(seconds)
        dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        Path(args.sp_out).write_text(json.dumps({"1 process": single, "2 processes": parallel}))
    return 0


def bench_sp(args, work: Path) -> dict[str, list[float]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    out = work / "sp.json"
    cmd = [sys.executable, __file__, "--sp-port", port, "--sp-out", str(out), "--sp-rounds", str(args.sp_rounds)]
    procs = [subprocess.Popen([*cmd, "--sp-rank", str(r)]) for r in range(2)]
    if any(p.wait(timeout=600) for p in procs):
        raise RuntimeError("a sequence-parallel rank failed (see above)")
    return json.loads(out.read_text())


def row(name: str, values: list[float], baseline: float) -> tuple[str, dict]:
    median = statistics.median(values)
    line = f"{name:<28} {median:8.3f} s  ({min(values):.3f}-{max(values):.3f})  x{baseline / median:5.2f}"
    return line, {"median_s": round(median, 4), "min_s": round(min(values), 4), "max_s": round(max(values), 4),
                  "speedup": round(baseline / median, 3)}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.sp_rank is not None:
        return sp_rank(args)
    with tempfile.TemporaryDirectory(prefix="c2r-bench-scale-") as tmp:
        work = Path(tmp)
        jobs = bench_jobs(args, work)
        sp = bench_sp(args, work)
    result: dict = {"label": "CPU, tiny model, random weights", "frames": args.frames, "steps": args.steps,
                    "rounds": args.rounds, "cpus": os.cpu_count(), "jobs": {}, "sequence_parallel": {}}
    print(f"{args.frames}-frame job, 32x32, {args.steps} steps, 17-frame windows; median (min-max) over {args.rounds} "
          f"rounds; speed-up vs anchors on 1 engine (CPU, tiny model, random weights, {os.cpu_count()} cores)")
    baseline = statistics.median(jobs["anchors, 1 engine(s)"])
    for name, values in jobs.items():
        line, result["jobs"][name] = row(name, values, baseline)
        print(line)
    print(f"\nIC transformer step, 17 frames 128x128 + colour reference, CFG batch 2; over {args.sp_rounds} rounds")
    baseline = statistics.median(sp["1 process"])
    for name, values in sp.items():
        line, result["sequence_parallel"][name] = row(name, values, baseline)
        print(line)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
