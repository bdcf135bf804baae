"""The engine pool: one engine process per GPU or engine group (one on a CPU machine), all fed by one scheduler.

GPUs are counted with NVML so the front end never imports torch; each engine sees only
its own GPU (``CUDA_VISIBLE_DEVICES``), so a crash or OOM on one GPU touches nothing else.
A ``CUDA_VISIBLE_DEVICES`` the daemon was started with is respected: one engine per
listed GPU. With ``--gpus-per-window N`` consecutive GPUs form engine groups of N: one
engine per group, which runs each window over its N GPUs (sequence parallel). Every engine
takes windows from the one scheduler on its own, so sessions and jobs run concurrently,
one window per engine at a time. ``--engines K`` caps the count (on the CPU it sets it:
K CPU engines, for testing concurrency without GPUs).
"""

from __future__ import annotations

import asyncio
import os

from . import telemetry
from .engine_client import EngineClient
from .ipc import SharedArrays
from .scheduler import WindowScheduler
from .settings import DaemonSettings


def engine_gpus(device: str, engines: int = 0, gpus_per_window: int = 1) -> list[str | None]:
    """The GPUs each engine gets, as its ``CUDA_VISIBLE_DEVICES`` ("0" or a group "0,1"; None: whatever
    the engine finds, i.e. the CPU for --device auto)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [] if device == "cpu" else (
        [g.strip() for g in visible.split(",") if g.strip()] if visible is not None else [str(g["index"]) for g in telemetry.gpus()])
    if not gpus:
        return [None] * max(engines, 1)
    if len(gpus) < gpus_per_window:
        raise ValueError(f"--gpus-per-window {gpus_per_window}: only {len(gpus)} GPU(s) visible ({','.join(gpus)}); "
                         "lower it, or make more GPUs visible (CUDA_VISIBLE_DEVICES)")
    groups = [",".join(gpus[i : i + gpus_per_window]) for i in range(0, len(gpus) - gpus_per_window + 1, gpus_per_window)]
    if engines > len(groups):
        raise ValueError(f"--engines {engines}: {len(gpus)} GPU(s) at {gpus_per_window} per window make only "
                         f"{len(groups)} engine(s); lower --engines or --gpus-per-window")
    return groups[: engines or len(groups)]


class EnginePool:
    def __init__(self, settings: DaemonSettings, preview_address: str):
        # every session's and job's window buffers, mapped by the engines; freed ones kept warm for the next
        # windows within one session's memory budget
        self.buffers = SharedArrays("w-", keep_bytes=settings.session_memory_mb * 2**20)
        self.engines = [
            EngineClient(i, settings.model, settings.device, gpu, preview_address, settings.state_dir,
                         settings.heartbeat_timeout, self.buffers, model_path=settings.model_path, ranks=settings.gpus_per_window)
            for i, gpu in enumerate(engine_gpus(settings.device, settings.engines, settings.gpus_per_window))
        ]

    @property
    def info(self) -> dict:
        """What GetInfo reports: the first engine's models and model, every engine's device."""
        first = self.engines[0].info
        return {**first, "device": ",".join(d for d in map(self._device, self.engines) if d)}

    @staticmethod
    def _device(engine: EngineClient) -> str:
        """The machine's name for an engine's device: each engine calls its one visible GPU cuda:0."""
        device = engine.info.get("device", "")
        return f"cuda:{engine.visible_gpu}" if device.startswith("cuda") and engine.visible_gpu is not None else device

    async def start(self) -> dict:
        await asyncio.gather(*(e.start() for e in self.engines))
        return self.info

    async def dispatch(self, scheduler: WindowScheduler) -> None:
        await asyncio.gather(*(e.dispatch(scheduler) for e in self.engines))

    async def cancel(self, owner: str) -> None:
        for engine in self.engines:
            await engine.cancel(owner)

    async def stop(self) -> None:
        await asyncio.gather(*(e.stop() for e in self.engines))
        self.buffers.close()
