"""An engine group: one engine process leading N-1 follower processes through every window in lockstep.

``c2r serve --gpus-per-window N`` gives an engine N GPUs (``CUDA_VISIBLE_DEVICES``). The engine
is rank 0 of a ``torch.distributed`` group (NCCL on GPUs, gloo on the CPU); ``EngineGroup``
spawns ranks 1..N-1 (``python -m c2r.models.parallel.group``), one per GPU. Every rank loads
the same model with sequence parallelism on (``sequence``) and runs the same
``realify_window``: text encoding, VAE and sampling repeat on every rank (same seeds, same
numbers), the transformer blocks split the window's tokens. Rank 0 broadcasts each command
(load a model, run a window, stop) and, at every step callback, whether the window goes on,
so a cancel stops all ranks at the same step instead of leaving some in a collective.
Only rank 0 returns frames. Followers exit when their engine does.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import torch
import torch.distributed as dist

from ..backend import Cancelled, StepFn, WindowRequest
from .sequence import SequenceParallel, enable_c2r_sequence_parallel, enable_context_parallel, vace_plan

log = logging.getLogger("c2r.engine")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _device(rank: int, cpu: bool) -> str:
    return "cpu" if cpu else f"cuda:{rank}"


def _init(rank: int, world: int, port: int, cpu: bool) -> SequenceParallel:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if not cpu:
        torch.cuda.set_device(rank)
    dist.init_process_group("gloo" if cpu else "nccl", rank=rank, world_size=world)
    return SequenceParallel.from_process_group(_device(rank, cpu))


def load_parallel(model: str, lora: str, device: str, sp: SequenceParallel):
    """The backend every rank runs, with sequence parallelism on its transformers."""
    from ..backends import create_backend
    from ..coarse_to_real.backend import C2RBackend
    from ..memory_plan import levers_for
    from ..vace import VACEBackend

    levers = levers_for(device, model)
    backend = create_backend(model, lora=lora or None, levers=levers)
    backend.load(device, "bfloat16" if device.startswith("cuda") else "float32", "none")  # the group is the memory lever
    if isinstance(backend, VACEBackend):
        enable_context_parallel(backend.pipeline.transformer, sp, vace_plan())
    elif isinstance(backend, C2RBackend):
        enable_c2r_sequence_parallel(backend.pipeline, sp)
    else:
        for expert in backend.pipeline.experts.values():
            expert.enable_sequence_parallel(sp)
    return backend


def _agreed_step(on_step: StepFn | None, leader: bool) -> StepFn:
    """A step callback every rank calls at the same point: rank 0 decides, all raise ``Cancelled`` together."""
    def step(event) -> None:
        flag = torch.zeros(1, dtype=torch.int32)
        if leader and on_step is not None:
            try:
                on_step(event)
            except Cancelled:
                flag[0] = 1
        dist.broadcast(flag, 0)
        if flag.item():
            raise Cancelled(f"window {event.window} cancelled at step {event.step}")
    return step


class EngineGroup:
    """Rank 0's handle on its followers (made inside the engine process)."""

    def __init__(self, world: int, cpu: bool):
        self.world, self.cpu = world, cpu
        port = _free_port()
        self.followers = [subprocess.Popen([sys.executable, "-m", "c2r.models.parallel.group", "--rank", str(r),
                                            "--world", str(world), "--port", str(port), "--parent", str(os.getpid())]
                                           + (["--cpu"] if cpu else []), stdin=subprocess.DEVNULL)
                          for r in range(1, world)]
        self.sp = _init(0, world, port, cpu)
        log.info("engine group of %d ranks (%s) ready", world, "gloo" if cpu else "nccl")

    def _command(self, *command) -> None:
        dist.broadcast_object_list([command], 0)

    def load(self, model: str, lora: str):
        self._command("load", model, lora)
        return load_parallel(model, lora, _device(0, self.cpu), self.sp)

    def realify_window(self, backend, request: WindowRequest, on_step: StepFn | None):
        self._command("run", request)
        return backend.realify_window(request, _agreed_step(on_step, leader=True))

    def stop(self) -> None:
        self._command("stop")
        for follower in self.followers:
            follower.wait(timeout=30)


def follow(rank: int, world: int, port: int, cpu: bool) -> None:
    """A follower's loop: do what rank 0 broadcasts until it says stop."""
    sp = _init(rank, world, port, cpu)
    backend = None
    while True:
        box = [None]
        dist.broadcast_object_list(box, 0)
        kind, *args = box[0]
        if kind == "stop":
            return
        try:
            if kind == "load":
                backend = load_parallel(*args, _device(rank, cpu), sp)
            else:
                backend.realify_window(args[0], _agreed_step(None, leader=False))
        except Exception as e:  # noqa: BLE001 - rank 0 hits the same error and reports it; the follower goes on
            log.info("rank %d: %s ended with %s", rank, kind, type(e).__name__)


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m c2r.models.parallel.group")
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--world", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--cpu", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s engine-rank{args.rank}[%(process)d] %(levelname)s %(message)s")
    threading.Thread(target=_exit_with_parent, args=(args.parent,), daemon=True).start()
    follow(args.rank, args.world, args.port, args.cpu)
    return 0


if __name__ == "__main__":
    sys.exit(main())
