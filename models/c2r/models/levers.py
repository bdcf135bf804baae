"""GPU speed levers: each a switch, applied once when a backend loads, and the defaults per GPU.

``Levers()`` is plain diffusers behaviour (every lever off); ``choose_levers`` picks what
fits and what is fastest on the GPU found (``memory_plan.choose_levers``: the kernels from
here, the memory levers from the planner). What each lever does:

attention_backend  diffusers' attention dispatcher backend ("flash", "_flash_3", "sage",
                   "_native_cudnn" ...), set with ``transformer.set_attention_backend``;
                   the IC-LoRA processors dispatch through it too. None: torch SDPA.
                   diffusers also makes it the process-wide default (one engine process,
                   one model: harmless; tests and benchmarks restore it).
compile_blocks     ``torch.compile`` of each repeated transformer block (regional
                   compilation; the IC wrapper calls the blocks, so they are what runs). Not
                   fullgraph: the causal-ref reference pass appends each layer's keys/values
                   to a Python list, a graph break by design; the per-step passes compile whole.
step_cache         reuse of block outputs between steps through diffusers' cache hooks:
                   "first-block" (FirstBlockCache), "taylorseer" (TaylorSeer, lite mode: only
                   the output projection is extrapolated; the full mode keeps (order+1)
                   copies of every attention output, over 100 GB for A14B at 81x480p). Changes
                   the output (an approximation); off by default. MagCache is not offered: it
                   needs per-model magnitude ratios calibrated on that checkpoint's own runs.
vae_tiling         ``vae.enable_tiling()``: decode in tiles, for cards where an 81-frame
                   720p decode does not fit.
offload            "none", "model" or "group" (``OFFLOADS``; see ``ICLoRABackend._placement``).
batched_cfg        both CFG branches in one forward of batch 2 instead of two forwards.
causal_ref         use the cached ``causal-ref`` attention when no trained LoRA fixes the mode.
preview_decoder    "latent": x0 previews through a per-window linear latent->RGB fit
                   (``latent_preview``); "vae": the full VAE decode.
step_lora          path of a step-distilled LoRA (``step_lora``), its weight, and for A14B
                   optionally the low-noise expert's own file.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

STEP_CACHES = ("none", "first-block", "taylorseer")
PREVIEW_DECODERS = ("latent", "vae")
OFFLOADS = ("none", "model", "group")  # most device memory first
COMPILE_BACKEND = "inductor"  # torch.compile's default; tests swap in a counting backend
# Names (as pynvml/torch report them) of GPUs whose fastest attention is a Hopper/Blackwell kernel.
HOPPER_OR_NEWER = ("H100", "H200", "H800", "H20", "GH200", "B100", "B200", "GB200", "RTX 50", "RTX PRO 6000")


@dataclass(frozen=True)
class Levers:
    attention_backend: str | None = None
    compile_blocks: bool = False
    step_cache: str = "none"
    step_cache_threshold: float = 0.05  # first-block: relative residual change under which blocks are skipped
    vae_tiling: bool = False
    offload: str = "none"
    batched_cfg: bool = False
    causal_ref: bool = False
    preview_decoder: str = "vae"
    step_lora: str | None = None
    step_lora_weight: float = 1.0
    step_lora_low_noise: str | None = None

    def validate(self) -> "Levers":
        if self.step_cache not in STEP_CACHES:
            raise ValueError(f"step_cache={self.step_cache!r}: choose one of {STEP_CACHES} "
                             "(MagCache needs per-checkpoint calibration and is not offered)")
        if self.preview_decoder not in PREVIEW_DECODERS:
            raise ValueError(f"preview_decoder={self.preview_decoder!r}: choose one of {PREVIEW_DECODERS}")
        if self.offload not in OFFLOADS:
            raise ValueError(f"offload={self.offload!r}: choose one of {OFFLOADS}")
        return self


def apply_to_transformer(transformer, levers: Levers) -> None:
    """Attention backend, step cache and compilation on one expert (in that order: compile last)."""
    if levers.attention_backend:
        transformer.set_attention_backend(levers.attention_backend)
    if levers.step_cache != "none":
        transformer.enable_cache(_cache_config(levers))
    if levers.compile_blocks:
        transformer.compile_repeated_blocks(fullgraph=False, backend=COMPILE_BACKEND)


def stream_blocks(transformer, device) -> None:
    """Group offload: the blocks' layers stay on the CPU and stream to ``device`` as they run.

    Hooks go on each block (the IC wrapper calls blocks directly); the small parts around
    the blocks move to the device for good.
    """
    from diffusers.hooks import apply_group_offloading

    for name, child in transformer.named_children():
        if name != "blocks":
            child.to(device)
    for param in transformer.parameters(recurse=False):
        param.data = param.data.to(device)
    for block in transformer.blocks:
        apply_group_offloading(block, onload_device=device, offload_type="leaf_level")


def _cache_config(levers: Levers):
    from diffusers.hooks import FirstBlockCacheConfig, TaylorSeerCacheConfig

    if levers.step_cache == "first-block":
        return FirstBlockCacheConfig(threshold=levers.step_cache_threshold)
    return TaylorSeerCacheConfig(use_lite_mode=True)


def apply_to_vae(vae, levers: Levers) -> None:
    """VAE tiling on or off (a run-time switch: the engine flips it per window shape)."""
    vae.enable_tiling() if levers.vae_tiling else vae.disable_tiling()


# --- choosing defaults from the GPU ---------------------------------------------------------
def detect_gpu(index: int = 0) -> tuple[str, int] | None:
    """(name, total bytes) of GPU ``index`` via NVML (no CUDA context needed), else torch; None without one."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            return (name.decode() if isinstance(name, bytes) else name), int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no NVML library, no such index: fall back to torch
        import torch

        if torch.cuda.is_available() and index < torch.cuda.device_count():
            props = torch.cuda.get_device_properties(index)
            return props.name, int(props.total_memory)
        return None


def fastest_attention(gpu_name: str) -> str | None:
    """The quickest exact attention kernel installed for this GPU (None: torch SDPA picks)."""
    hopper = any(tag in gpu_name for tag in HOPPER_OR_NEWER)
    if hopper and importlib.util.find_spec("flash_attn_interface"):
        return "_flash_3"
    if importlib.util.find_spec("flash_attn"):
        return "flash"
    return "_native_cudnn" if hopper else None
