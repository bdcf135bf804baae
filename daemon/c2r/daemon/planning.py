"""The Plan RPC's answer: the memory planner (``c2r.models.memory_plan``) for one session on this daemon's GPU.

What ``c2r plan`` prints, asked of the daemon itself, so an editor plugin (whose Python holds only
the client) can tell the artist before the first frame renders whether the session fits and about
how long it will take. Torch-free: the planner is arithmetic on the preset's footprint.
"""

from __future__ import annotations

from dataclasses import replace

from c2r.models.levers import Levers, fastest_attention
from c2r.models.memory_plan import GIB, advice, choose_plan, describe
from c2r.models.windows import plan_windows
from c2r.v1 import coarse2real_pb2 as pb

from .errors import InvalidInput
from .session_config import ResolvedSession
from .settings import LIMITS


def engine_gpu(device: str, gpus: list[dict]) -> dict | None:
    """The GPU the first engine runs on ("cuda:1,cuda:2" -> NVML index 1), None on the CPU."""
    first = device.split(",")[0]
    if not first.startswith("cuda") or not gpus:
        return None
    index = int(first.partition(":")[2] or 0)
    return next((g for g in gpus if g["index"] == index), gpus[0])


def plan_reply(request: pb.PlanRequest, resolved: ResolvedSession, device: str, gpus: list[dict],
               gpus_per_window: int) -> pb.PlanReply:
    width, height = request.width, request.height
    limits = LIMITS.frames
    if not (0 < width <= limits.max_width and 0 < height <= limits.max_height):
        raise InvalidInput(f"plan: frame size {width}x{height} (WxH): give the engine's frame size, at least 1x1 and at "
                           f"most {limits.max_width}x{limits.max_height} (GetInfo.limits)")
    config = resolved.config
    attention_mode = None
    if resolved.lora:
        from c2r.models.lora import read_lora_info

        try:
            info = read_lora_info(resolved.lora)
        except (OSError, ValueError) as err:
            raise InvalidInput(f"plan: the session's LoRA cannot be read: {err}") from None
        attention_mode = info.attention_mode
        config = replace(config, reference=info.reference)
    windows = len(plan_windows(request.frames, config.window, config.overlap)) if request.frames else 1
    gpu = engine_gpu(device, gpus)
    reply = pb.PlanReply(model=resolved.model, device=device or "cpu", gpus_per_window=gpus_per_window, windows=windows)
    if gpu is None:
        reply.summary = (f"No NVIDIA GPU on the daemon's machine: {resolved.model} runs on the CPU, far slower than "
                         "real time (practical for the tiny presets only); no memory or time figure.")
        return reply
    base = Levers(attention_backend=fastest_attention(gpu["name"]), compile_blocks=True, preview_decoder="latent")
    plan = choose_plan(resolved.model, gpu["total_bytes"], config.window, height, width, config, base,
                       attention_mode=attention_mode, ranks=gpus_per_window)
    summary, seconds = describe(plan, config, gpu["name"], windows)
    reply.fits, reply.gpu_name, reply.gpu_memory_bytes = plan.fits, gpu["name"], gpu["total_bytes"]
    reply.offload, reply.peak_gib, reply.usable_gib = plan.offload, plan.peak_bytes / GIB, plan.budget_bytes / GIB
    reply.summary = summary
    reply.notes.extend(plan.notes)
    if seconds is not None:
        reply.seconds_per_window, reply.total_seconds, reply.basis = seconds, seconds * windows, "estimate"
    if not plan.fits:
        reply.advice = advice(plan, config)
    return reply
