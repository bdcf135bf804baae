"""The engine pool: one engine process per GPU (one on a CPU machine), all fed by one scheduler.

GPUs are counted with NVML so the front end never imports torch; each engine sees only
its own GPU (``CUDA_VISIBLE_DEVICES``), so a crash or OOM on one GPU touches nothing else.
A ``CUDA_VISIBLE_DEVICES`` the daemon was started with is respected: one engine per
listed GPU.
"""

from __future__ import annotations

import asyncio
import os

from . import telemetry
from .engine_client import EngineClient
from .scheduler import WindowScheduler
from .settings import DaemonSettings


def engine_gpus(device: str) -> list[str | None]:
    """The GPU each engine gets (None: whatever the engine finds, i.e. the CPU for --device auto)."""
    if device == "cpu":
        return [None]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [g.strip() for g in visible.split(",") if g.strip()] if visible is not None else [str(g["index"]) for g in telemetry.gpus()]
    return gpus or [None]


class EnginePool:
    def __init__(self, settings: DaemonSettings, preview_address: str):
        self.engines = [
            EngineClient(i, settings.model, settings.device, gpu, preview_address, settings.state_dir, settings.heartbeat_timeout)
            for i, gpu in enumerate(engine_gpus(settings.device))
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
