"""GPU telemetry from NVML (pynvml), for GetInfo and the log; empty without an NVIDIA driver."""

from __future__ import annotations

import logging
import warnings

log = logging.getLogger("c2r.daemon")


def gpus() -> list[dict]:
    """[{index, name, total_bytes, free_bytes}] for every NVIDIA GPU; [] when NVML is absent."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver, no library: a CPU machine
        return []
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            out.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                        "total_bytes": int(memory.total), "free_bytes": int(memory.free)})
        return out
    finally:
        pynvml.nvmlShutdown()


def log_gpus() -> None:
    found = gpus()
    if not found:
        log.info("no NVIDIA GPU visible (NVML unavailable); running on CPU unless --device says otherwise")
    for g in found:
        log.info("GPU %d: %s, %.1f GiB free of %.1f GiB", g["index"], g["name"], g["free_bytes"] / 2**30, g["total_bytes"] / 2**30)
