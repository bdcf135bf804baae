"""A Ray actor that runs windows: the cluster's counterpart of an engine process.

One actor per GPU (or per engine group of ``--gpus-per-window`` GPUs, whose other ranks it
spawns on its node as an engine does: ``c2r.models.parallel.group``; per CPU slot on a
CPU-only cluster), placed by Ray's scheduler on any node. It keeps the last model it loaded
warm, as an engine does, and runs one ``WindowRequest`` at a time through the backend. Its
methods run only in Ray worker processes: the front end creates the actors (``cluster``)
but never calls this module's code, so torch stays out of the front end.

A cancelled job's running window stops at its next denoising step: the front end calls
``ray.cancel`` on the actor task, which for a regular actor sets a flag the task polls with
``ray.get_runtime_context().is_canceled()`` (Ray 2.60, ``ray.cancel``'s docstring in
``ray/_private/worker.py``); the step callback raises ``Cancelled`` then (in an engine group
all ranks stop at that step).
"""

from __future__ import annotations

import os
import time


class WindowWorker:
    def __init__(self, device: str, ranks: int = 1):
        self.device_wanted = device
        self.backend = None
        self.key: tuple[str, str] | None = None
        self.group = None  # an engine group over the actor's GPUs (--gpus-per-window > 1), as an engine leads one
        if ranks > 1:
            from c2r.models.parallel.group import EngineGroup

            self.group = EngineGroup(ranks, cpu=self._device() == "cpu")

    def pid(self) -> int:
        return os.getpid()

    def _device(self) -> str:
        import torch

        if self.device_wanted == "cpu" or not torch.cuda.is_available():
            return "cpu"
        return "cuda:0"  # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPU(s)

    def _backend_for(self, model: str, lora: str):
        if self.key != (model, lora) or (self.group is not None and not self.group.up):  # a failed group: a fresh one
            from c2r.models.backends import create_backend
            from c2r.models.memory_plan import levers_for

            if self.backend is not None:
                self.backend.unload()
            if self.group is not None:
                backend = self.group.load(model, lora)
            else:
                device = self._device()
                levers = levers_for(device, model)
                backend = create_backend(model, lora=lora or None, levers=levers)
                backend.load(device, "bfloat16" if device.startswith("cuda") else "float32", levers.offload)
            self.backend, self.key = backend, (model, lora)
        return self.backend

    def run(self, model: str, lora: str, request):
        """(frames (T, H, W, 3) uint8, seconds, pid, started, finished): the window's result and when it ran."""
        import ray

        from c2r.models.backend import Cancelled

        started = time.time()
        context = ray.get_runtime_context()

        def on_step(event) -> None:
            if context.is_canceled():
                raise Cancelled(f"window {request.index} cancelled at step {event.step} of {event.num_steps}")

        backend = self._backend_for(model, lora)
        frames = (self.group.realify_window(backend, request, on_step) if self.group is not None
                  else backend.realify_window(request, on_step))
        return frames, time.time() - started, os.getpid(), started, time.time()
