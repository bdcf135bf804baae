"""An engine group: one engine process leading N-1 follower processes through every window in lockstep.

``c2r serve --gpus-per-window N`` gives an engine N GPUs (``CUDA_VISIBLE_DEVICES``). The engine
is rank 0 of a ``torch.distributed`` group (NCCL on GPUs, gloo on the CPU); ``EngineGroup``
spawns ranks 1..N-1 (``python -m c2r.models.parallel.group``), one per GPU. Every rank loads
the same model with sequence parallelism on (``sequence``) and runs the same
``realify_window``: text encoding, VAE and sampling repeat on every rank (same seeds, same
numbers), the transformer blocks split the window's tokens. Only rank 0 returns frames.

Commands (load a model, run a window, stop) and the followers' replies travel over one socket
pair per follower (``multiprocessing`` connections), not over collectives: an idle group waits
in no collective, and a follower that fails is heard. Collectives run only inside a window,
where the ranks are in lockstep, under a bounded timeout (``GROUP_TIMEOUT``). At every step
callback rank 0 broadcasts whether the window goes on, so a cancel stops all ranks at the
same step instead of leaving some in a collective.

A follower that raises mid-window reports why and exits; one that dies closes its sockets.
Either way rank 0's next collective fails (gloo at once; NCCL at the timeout at the latest),
and rank 0 tears the whole group down (every follower killed, the process group destroyed)
and raises: ``torch.OutOfMemoryError`` when a rank ran out of memory, so the engine handles
it as a single GPU's OOM, else ``GroupFailed`` naming the rank and its error. A failure on
rank 0 itself tears the group down too (its followers may be waiting in a collective) and
is re-raised as it is. The next ``load`` starts a fresh group.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time

import torch
import torch.distributed as dist

from ..backend import Cancelled, StepFn, WindowRequest
from . import GroupFailed
from .sequence import SequenceParallel, enable_c2r_sequence_parallel, enable_context_parallel, vace_plan

log = logging.getLogger("c2r.engine")
FOLLOWER = ["-m", "c2r.models.parallel.group"]  # what a follower runs after the interpreter
GROUP_TIMEOUT = datetime.timedelta(seconds=120)  # a collective (or the group's start) waiting longer fails
REPORT_GRACE_S = 5.0  # after a failed collective: how long rank 0 waits for the followers' reports
LOAD_TIMEOUT_S = 1800.0  # a follower still loading the model after this long is taken for hung


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
    dist.init_process_group("gloo" if cpu else "nccl", rank=rank, world_size=world, timeout=GROUP_TIMEOUT)
    return SequenceParallel.from_process_group(_device(rank, cpu))


def load_parallel(model: str, lora: str, device: str, sp: SequenceParallel, offload: str = "none"):
    """The backend every rank runs, with sequence parallelism on its transformers.

    offload "none" normally (the group is the memory lever); a lower-memory strategy after an OOM.
    """
    from ..backends import create_backend
    from ..coarse_to_real.backend import C2RBackend
    from ..memory_plan import levers_for
    from ..vace import VACEBackend

    levers = levers_for(device, model)
    backend = create_backend(model, lora=lora or None, levers=levers)
    backend.load(device, "bfloat16" if device.startswith("cuda") else "float32", offload)
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


def _collective_error(error: BaseException) -> bool:
    """Whether rank 0's error is a collective that failed (a peer gone or silent), not its own failure."""
    return isinstance(error, dist.DistError) or (type(error) is RuntimeError and "gloo" in str(error))


class Follower:
    """Rank 0's handle on one follower process: the process and its command link."""

    def __init__(self, rank: int, world: int, port: int, cpu: bool):
        self.rank = rank
        self.link, theirs = multiprocessing.Pipe()
        self.proc = subprocess.Popen([sys.executable, *FOLLOWER, "--rank", str(rank), "--world", str(world), "--port",
                                      str(port), "--parent", str(os.getpid()), "--link", str(theirs.fileno())]
                                     + (["--cpu"] if cpu else []), stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),))
        theirs.close()
        self.failure: str | None = None  # why it failed, once known
        self.oom = False

    def send(self, payload: bytes) -> None:
        try:
            self.link.send_bytes(payload)
        except OSError:
            self._gone()

    def reply(self, timeout: float | None) -> tuple | None:
        """Its next reply, or None (nothing within ``timeout``; or it failed: see ``failure``)."""
        try:
            if not self.link.poll(timeout):
                return None
            message = self.link.recv()
        except (EOFError, OSError):
            self._gone()
            return None
        if message[0] == "error":
            _, kind, text = message
            self.failure, self.oom = f"rank {self.rank} failed: {text}", kind == "oom"
        return message

    def wait_reply(self, timeout: float | None = None) -> tuple | None:
        """Its reply to the last command, watching that it lives; None if it failed (``failure``: why)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.failure is None:
            message = self.reply(0.2)
            if message is not None:
                return None if message[0] == "error" else message
            if self.proc.poll() is not None:
                self._gone()
            elif deadline is not None and time.monotonic() > deadline:
                self.failure = f"rank {self.rank} did not answer within {timeout:g} s"
        return None

    def _gone(self) -> None:
        if self.failure is None:
            try:
                code = self.proc.wait(timeout=REPORT_GRACE_S)
            except subprocess.TimeoutExpired:
                code = None
            how = (f"was killed by signal {signal.Signals(-code).name}" if code is not None and code < 0
                   else f"exited with code {code}" if code is not None else "stopped answering")
            self.failure = f"rank {self.rank} {how}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.link.close()


class EngineGroup:
    """Rank 0's handle on its followers (made inside the engine process, or a Ray worker)."""

    def __init__(self, world: int, cpu: bool):
        self.world, self.cpu = world, cpu
        self.followers: list[Follower] = []
        self.sp: SequenceParallel | None = None
        self.pending = False  # the followers' replies to the last window are still to be read
        self._start()

    def _start(self) -> None:
        port = _free_port()
        self.followers = [Follower(r, self.world, port, self.cpu) for r in range(1, self.world)]
        try:
            self.sp = _init(0, self.world, port, self.cpu)
        except BaseException:
            self.teardown()
            raise
        log.info("engine group of %d ranks (%s) ready", self.world, "gloo" if self.cpu else "nccl")

    @property
    def up(self) -> bool:
        """Whether the group stands (false after a teardown, until the next ``load``)."""
        return self.sp is not None

    def teardown(self) -> None:
        """Every follower killed and the process group destroyed: nothing is left waiting in a collective."""
        for follower in self.followers:
            follower.kill()
        self.followers = []
        if dist.is_initialized():
            dist.destroy_process_group()
        self.sp, self.pending = None, False

    def _command(self, *command) -> None:
        payload = pickle.dumps(command, protocol=pickle.HIGHEST_PROTOCOL)  # one pickle, however many followers
        for follower in self.followers:
            follower.send(payload)

    def _failed(self) -> Follower | None:
        return next((f for f in self.followers if f.failure is not None), None)

    def _check(self) -> str | None:
        """The followers' replies to the last window read, and each seen alive; the first failure, if any."""
        if self.pending:
            self.pending = False
            for follower in self.followers:
                follower.wait_reply(GROUP_TIMEOUT.total_seconds())
        for follower in self.followers:
            if follower.failure is None and follower.proc.poll() is not None:  # died while idle
                follower._gone()
        failed = self._failed()
        return failed.failure if failed else None

    def load(self, model: str, lora: str, offload: str = "none"):
        """Every rank loads ``model`` (on a fresh group if the last one was torn down or lost a rank)."""
        if self.up and (cause := self._check()):
            log.warning("engine group: %s; starting a fresh group", cause)
            self.teardown()
        if not self.up:
            self._start()
        self._command("load", model, lora, offload)
        try:
            backend = load_parallel(model, lora, _device(0, self.cpu), self.sp, offload)
        except BaseException:
            self.teardown()
            raise
        for follower in self.followers:
            follower.wait_reply(LOAD_TIMEOUT_S)
        if failed := self._failed():
            message, oom = f"engine group: {failed.failure} loading {model}", failed.oom
            self.teardown()
            raise torch.OutOfMemoryError(message) if oom else GroupFailed(message)
        return backend

    def realify_window(self, backend, request: WindowRequest, on_step: StepFn | None):
        cause = self._check()
        if cause is None:
            self._command("run", request)
            cause = self._check()  # a link found broken
        if cause is not None:
            self.teardown()
            raise GroupFailed(f"engine group: {cause} (before window {request.index})")
        try:
            frames = backend.realify_window(request, _agreed_step(on_step, leader=True))
        except Cancelled:  # agreed at a step: every rank stopped there and answers
            self.pending = True
            raise
        except BaseException as error:
            self._fail(error)
            raise
        self.pending = True  # the followers finish (decode) on their own; their replies are read next time
        return frames

    def _fail(self, error: BaseException) -> None:
        """After rank 0's window failed: find the rank that caused it, tear down, raise its error (or return)."""
        if _collective_error(error):  # a peer broke the collective: wait briefly for its report
            deadline = time.monotonic() + REPORT_GRACE_S
            while self._failed() is None and time.monotonic() < deadline:
                for follower in self.followers:
                    follower.reply(0.1)
                    if follower.proc.poll() is not None:
                        follower.reply(0)
                        follower._gone()
        failed = self._failed()
        oom, cause = (failed.oom, failed.failure) if failed else (False, None)
        self.teardown()
        log.error("engine group torn down after a failed window: %s", cause or f"rank 0: {type(error).__name__}: {error}")
        if isinstance(error, torch.OutOfMemoryError):
            return  # rank 0's own OOM stands
        if failed is None:
            if _collective_error(error):  # no rank said why: one stopped answering (the timeout) or vanished
                raise GroupFailed(f"engine group: a collective failed ({str(error).splitlines()[0][:200]}); a rank "
                                  "stopped answering") from None
            return  # rank 0's own error stands
        if oom:
            raise torch.OutOfMemoryError(f"engine group: {cause}") from None
        raise GroupFailed(f"engine group: {cause}") from None

    def stop(self) -> None:
        self._command("stop")
        for follower in self.followers:
            try:
                follower.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                follower.kill()
        self.followers = []


def follow(rank: int, world: int, port: int, cpu: bool, link: multiprocessing.connection.Connection) -> None:
    """A follower's loop: do what rank 0 sends until it says stop (or is gone); exit after any failure."""
    sp = _init(rank, world, port, cpu)
    backend = None
    while True:
        try:
            kind, *args = link.recv()
        except EOFError:
            return
        if kind == "stop":
            return
        try:
            if kind == "load":
                model, lora, offload = args
                backend = load_parallel(model, lora, _device(rank, cpu), sp, offload)
                link.send(("ok",))
            else:
                backend.realify_window(args[0], _agreed_step(None, leader=False))
                link.send(("done",))
        except Cancelled:
            link.send(("cancelled",))
        except BaseException as e:  # the group's collectives are out of step now: report, leave; rank 0 tears down
            log.exception("rank %d: %s failed", rank, kind)
            kind = "oom" if isinstance(e, torch.OutOfMemoryError) else "error"
            try:
                link.send(("error", kind, f"{type(e).__name__}: {e}"))
            finally:
                os._exit(1)


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
    p.add_argument("--link", type=int, required=True, help="file descriptor of this rank's command link")
    p.add_argument("--cpu", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s engine-rank{args.rank}[%(process)d] %(levelname)s %(message)s")
    threading.Thread(target=_exit_with_parent, args=(args.parent,), daemon=True).start()
    follow(args.rank, args.world, args.port, args.cpu, multiprocessing.connection.Connection(args.link))
    return 0


if __name__ == "__main__":
    sys.exit(main())
