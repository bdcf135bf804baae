"""One memory planner: the device bytes one window needs, from the preset and the window alone.

A pure function of (preset, window frames and size, quality settings, levers, offload); it
needs no backend instance, no torch and no GPU, so the lever chooser (``levers``), the engine
(per window shape, logged) and ``c2r plan`` all call it and cannot disagree.

The window runs in phases, and the plan's peak is the largest of them:

encode prompt   the text encoder (UMT5-XXL, 11.4 GB in bf16) and whatever stays resident.
denoise         the resident weights + one transformer block's transient activations over
                the window's tokens + what lives through the whole pass (the causal-ref
                reference cache of every layer, batch 1; VACE's hints of every VACE layer).
VAE             the VAE's working set while it encodes the references or decodes the result,
                beside the weights still resident (with model offload: one expert).

Where weights live per offload ("none": everything resident; "model": the text encoder and
each expert move whole onto the device while used, one at a time; "group": the experts'
blocks stream from the CPU, only the parts around the blocks and one block are resident).
VACE's "model" streams blocks too (diffusers' block-level offload), so it is planned as "group".

Activation figures are measured, not guessed: bytes per token of one block at the released
widths (``BLOCK_BYTES_PER_TOKEN``), and bytes per output pixel of the VAE
(``VAE_BYTES_PER_PIXEL``), both from live-tensor accounting of the real-width modules on the CPU
(``benchmarks/bench_planner.py`` re-measures them and checks the planner within 25 %).
Activations do not grow with depth (blocks run one after another without gradients); the
reference cache and the weights do, linearly.

Sequence parallel (``ranks`` > 1, ``c2r serve --gpus-per-window N``): every GPU of an engine group
holds the whole model (weights, text encoder, VAE; engine groups do not offload) and 1/N of the
window's tokens, so activations, held buffers and the causal-ref cache are split N ways; the VAE
runs on the group's first GPU.

Time: ``window_seconds`` turns the plan's denoising FLOPs (linear layers 2 x params per token,
attention 4 x layers x width x queries x keys, every CFG branch, every step the strength runs) into
seconds at ``MFU`` of the card's dense bf16 peak (``GPU_BF16_TFLOPS``, vendor datasheets; MFU calibrated on
Wan2.2's published A100 time). It is an
estimate of the denoise alone, labelled so wherever it is shown; the VAE and text encoder add to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .backend import RealifyConfig, apply_quality, model_frame_count
from .grid import grid_for
from .levers import OFFLOADS, Levers, detect_gpu, fastest_attention
from .registry import VAE_PARAMS, ModelPreset, get_preset
from .windows import padded_length

GIB = 2**30
HEADROOM = 0.9  # plan to use at most this share of the card (allocator fragmentation, CUDA context)
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# One block's transient bytes per token: a x width + b x ffn width (bf16 weights and activations,
# float32 norms, modulation and RoPE products as diffusers computes them). Measured by bench_planner.
BLOCK_BYTES_PER_TOKEN = (14.85, 2.94)
# VAE decode working set, float32: (bytes per output pixel of one 4-frame chunk: the decoder's causal
# caches and feature maps at full resolution; bytes per pixel per frame: the decoded video, 3 x float32,
# and its concatenation). Measured on the released configs at 5 to 33 frames (64x128: Wan2.1 18.4 KB/px
# at 5 frames, 19.7-20.0 KB/px from 13 to 33; Wan2.2 19.2, then 21.9-22.2); the encode needs less.
VAE_BYTES_PER_PIXEL = {"wan2.1": (19_700, 24), "wan2.2": (22_000, 24), "tiny": (330, 22),
                       "tiny-trained": (880, 22)}  # tiny-trained: tiny's figure x its 8/3 wider VAE (not measured)
# Dense bf16 tensor TFLOPS (no sparsity; GeForce cards at FP32 accumulate), from NVIDIA's datasheets and
# architecture whitepapers. Matched against the NVML name, first match wins (so "H100 PCIe" before "H100").
GPU_BF16_TFLOPS = (("B200", 2250.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H200", 989.0), ("H100", 989.0),
                   ("GH200", 989.0), ("A100", 312.0), ("L40S", 362.0), ("L40", 181.0), ("A10G", 70.0), ("A10", 125.0),
                   ("L4", 121.0), ("RTX 6000 Ada", 364.0), ("A6000", 155.0), ("RTX 5090", 209.5),
                   ("RTX 4090", 165.2), ("RTX 4080", 97.5), ("RTX 3090", 35.6))
# The share of that peak a video DiT's denoise sustains, calibrated on a published figure: Wan2.2's
# "computational efficiency" table gives 2735.7 s for T2V-A14B, 1280x720, 81 frames (40 steps, CFG) on one
# A100 (github.com/Wan-Video/Wan2.2); these FLOPs at 0.6 x 312 TFLOPS give 2924 s (long-sequence attention
# runs near FlashAttention's peak, so the share is high). Not measured here: no GPU was lent.
MFU = 0.6
GROUP_EFFICIENCY = 0.85  # sequence parallel: each extra GPU's share after the all-to-all exchanges (assumption)
VAE_TILE_PIXELS = 256 * 256  # AutoencoderKLWan's default tile (tile_sample_min_height/width)
UMT5_BLOCKS = 24  # UMT5-XXL's encoder layers: what block-level offload streams one at a time


@dataclass(frozen=True)
class MemoryPlan:
    """The plan of one window shape: per-component bytes, per-phase peaks, and whether it fits."""

    model: str
    offload: str
    levers: Levers
    num_frames: int
    model_size: tuple[int, int]  # the model grid (height, width) the window runs at
    tokens: int  # noisy tokens per CFG branch
    components: dict[str, int]  # weights, text encoder, activations, reference cache, VAE
    phases: dict[str, int]  # peak bytes per phase
    total_bytes: int = 0  # the card's memory; 0 when planned without a card
    notes: tuple[str, ...] = field(default=())
    ranks: int = 1  # GPUs the window runs over (sequence parallel)
    flops: float = 0.0  # the window's denoising FLOPs, all steps and CFG branches (see window_seconds)

    @property
    def peak_bytes(self) -> int:
        return max(self.phases.values())

    @property
    def budget_bytes(self) -> int:
        return int(HEADROOM * self.total_bytes)

    @property
    def fits(self) -> bool:
        return self.total_bytes > 0 and self.peak_bytes <= self.budget_bytes

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v / GIB:.1f}" for k, v in self.components.items())
        card = f" of {self.budget_bytes / GIB:.1f} GiB usable" if self.total_bytes else ""
        levers = f"offload {self.offload}, batched_cfg {self.levers.batched_cfg}, vae_tiling {self.levers.vae_tiling}"
        if self.ranks > 1:
            levers += f", {self.ranks} GPUs per window"
        return (f"{self.model} {self.num_frames}x{self.model_size[0]}x{self.model_size[1]} ({levers}): "
                f"peak {self.peak_bytes / GIB:.1f} GiB{card} ({parts} GiB)")

    def as_json(self) -> dict:
        return {"fits": self.fits, "offload": self.offload, "planned_peak_gib": round(self.peak_bytes / GIB, 2),
                "levers": lever_dict(self.levers), "gpus_per_window": self.ranks}


def lever_dict(levers: Levers) -> dict:
    return asdict(levers)


def plan_window(preset: ModelPreset | str, num_frames: int, height: int, width: int, config: RealifyConfig,
                levers: Levers, offload: str | None = None, dtype: str = "bfloat16", total_bytes: int = 0,
                attention_mode: str | None = None, ranks: int = 1) -> MemoryPlan:
    """Peak device bytes (per GPU) of one window of ``num_frames`` engine frames of ``height`` x ``width``.

    offload None: ``levers.offload``. attention_mode: a trained LoRA's fixed mode, else the
    levers' (causal_ref) or the config's. ranks: GPUs the window runs over (sequence parallel;
    engine groups do not offload, so only offload "none" is accepted with ranks > 1).
    """
    preset = get_preset(preset) if isinstance(preset, str) else preset
    offload = offload or levers.offload
    if offload not in OFFLOADS:
        raise ValueError(f"offload={offload!r}: choose one of {OFFLOADS}")
    if ranks < 1:
        raise ValueError(f"ranks={ranks}: a window runs over 1 or more GPUs")
    if ranks > 1 and offload != "none":
        raise ValueError(f"offload={offload!r} with {ranks} GPUs per window: engine groups hold the whole model on "
                         "every GPU; plan offload 'none'")
    act = DTYPE_BYTES[dtype]
    cfg, fp = preset.transformer_config, preset.footprint
    grid = grid_for(height, width, config.resolution, preset.grid_multiple)
    frames = padded_length(model_frame_count(preset.name, min(num_frames, config.window), config.input_fps))
    cell = preset.grid_multiple
    tokens = ((frames - 1) // 4 + 1) * (grid.model_height // cell) * (grid.model_width // cell)
    dim, ffn, layers = cfg["num_attention_heads"] * cfg["attention_head_dim"], cfg["ffn_dim"], cfg["num_layers"]
    per_token = (BLOCK_BYTES_PER_TOKEN[0] * dim + BLOCK_BYTES_PER_TOKEN[1] * ffn) * act / 2
    cfg_on = config.guidance > 1.0
    notes: list[str] = []

    cache = 0
    held = fp.held_per_token * tokens * act
    if preset.kind != "t2v":
        # VACE (and other control kinds) run the CFG branches one after the other, without reference
        # tokens; each VACE layer's hint (tokens x dim) lives through the forward.
        batch = 1
        held += len(cfg.get("vace_layers", ())) * tokens * dim * act
        activations = int(tokens * per_token)
        mode = preset.kind
        ref_tokens = 0
    else:
        batch = 2 if cfg_on and levers.batched_cfg else 1
        mode = attention_mode or ("causal-ref" if levers.causal_ref else config.attention_mode)
        refs = sum(1 / config.reference_downscale**2 for _ in config.reference)
        ref_tokens = int(tokens * refs)
        if mode == "full":
            activations = int(batch * (tokens + ref_tokens) * per_token)
        else:
            # the noisy pass attends to the cached reference keys/values, expanded to the batch per layer
            activations = int(max(batch * tokens * per_token + 2 * batch * ref_tokens * dim * act,
                                  ref_tokens * per_token))
            cache = 2 * layers * ref_tokens * dim * act  # batch 1: shared by both CFG branches
            notes.append(f"causal-ref cache {cache / GIB:.1f} GiB per expert (keys and values of {layers} layers)")

    if ranks > 1:  # sequence parallel: each GPU holds 1/ranks of the tokens, the whole model
        activations, cache, held = (-(-x // ranks) for x in (activations, cache, held))
        notes.append(f"sequence parallel over {ranks} GPUs: activations and reference cache split {ranks} ways, "
                     "weights, text encoder and VAE whole on every GPU")
    flops = denoise_flops(preset, config, tokens, ref_tokens, mode)

    expert = fp.expert_params * act
    extra = sum(p for _, p in fp.extra_params) * act
    text = fp.text_encoder_params * act
    vae = VAE_PARAMS[fp.vae] * 4
    streamed = offload == "group" or (preset.is_vace and offload == "model")
    if offload == "none":
        transformer = expert * len(preset.experts)
    elif streamed:  # the parts around the blocks stay, one block streams in at a time
        blocks = fp.block_params * (layers + len(cfg.get("vace_layers", ())))
        transformer = (max(fp.expert_params - blocks, 0) + fp.block_params) * act
    else:
        transformer = expert  # the expert in use
    # the IC pipeline moves its text encoder whole (model placement); VACE streams it by blocks too
    text_on_device = text if offload == "none" or not preset.is_vace else text // UMT5_BLOCKS
    resident = transformer + extra + vae + (text if offload == "none" else 0)

    pixels = grid.model_height * grid.model_width
    per_chunk, per_frame = VAE_BYTES_PER_PIXEL[fp.vae]
    vae_work = int(per_chunk * (min(pixels, VAE_TILE_PIXELS) if levers.vae_tiling else pixels) + per_frame * pixels * frames)

    phases = {
        # with offload the text encoder leaves the card right after the prompts (before any VAE or expert work)
        "encode prompt": resident if offload == "none" else vae + extra + text_on_device + (transformer if streamed else 0),
        "denoise": resident + activations + cache + held,
        "vae": resident + vae_work,
    }
    components = {
        "weights": resident - (text if offload == "none" else 0),
        "text encoder": text_on_device,
        "activations": activations + held,
        "reference cache": cache,
        "vae": vae_work,
    }
    if batch == 2:
        notes.append("batched CFG: both branches in one batch of 2")
    if levers.vae_tiling:
        notes.append("VAE tiling: the decode works 256x256 tiles")
    notes.append(f"attention {mode}, {batch * tokens} noisy tokens per forward")
    return MemoryPlan(preset.name, offload, replace(levers, offload=offload), num_frames,
                      (grid.model_height, grid.model_width), tokens, components, phases, total_bytes, tuple(notes),
                      ranks, flops)


def denoise_flops(preset: ModelPreset, config: RealifyConfig, tokens: int, ref_tokens: int, mode: str) -> float:
    """FLOPs of one window's denoise: every step the strength runs, every CFG branch.

    Linear layers: 2 x (transformer + extra params) per token; attention: 4 x layers x width x
    queries x keys. "full" attends over noisy + reference tokens every step; "causal-ref" runs the
    reference tokens once per window (the cache) and the noisy queries attend to both.
    """
    cfg, fp = preset.transformer_config, preset.footprint
    params = fp.expert_params + sum(p for _, p in fp.extra_params)
    dim, layers = cfg["num_attention_heads"] * cfg["attention_head_dim"], cfg["num_layers"]
    branches = 2 if config.guidance > 1.0 else 1
    steps = max(1, round(config.steps * config.strength))

    def forward(queries: int, keys: int) -> float:
        return 2.0 * params * queries + 4.0 * layers * dim * queries * keys

    if mode == "full":
        per_step = forward(tokens + ref_tokens, tokens + ref_tokens)
        once = 0.0
    else:
        per_step = forward(tokens, tokens + ref_tokens)
        once = forward(ref_tokens, ref_tokens) if ref_tokens else 0.0
    return steps * branches * per_step + once


def gpu_tflops(gpu_name: str) -> float | None:
    """The card's dense bf16 peak (GPU_BF16_TFLOPS), None for a card not in the table."""
    for tag, tflops in GPU_BF16_TFLOPS:
        if tag.lower() in gpu_name.lower():
            return tflops
    return None


def window_seconds(plan: MemoryPlan, gpu_name: str) -> float | None:
    """Estimated seconds of one window's denoise on ``gpu_name`` (x plan.ranks GPUs); None for an unknown card."""
    tflops = gpu_tflops(gpu_name)
    if tflops is None or plan.flops <= 0:
        return None
    speed = tflops * 1e12 * MFU * (1 + (plan.ranks - 1) * GROUP_EFFICIENCY)
    return plan.flops / speed


def choose_plan(preset: ModelPreset | str, total_bytes: int, num_frames: int, height: int, width: int,
                config: RealifyConfig, levers: Levers, dtype: str = "bfloat16",
                attention_mode: str | None = None, ranks: int = 1) -> MemoryPlan:
    """The fastest levers that fit ``total_bytes``: least offload first, then batched CFG on, then VAE tiling off.

    Returns the first plan that fits, else the lowest-memory one (``fits`` False; ``advice`` says
    what to lower). Output-changing levers (causal-ref, step cache, distilled LoRA) are left as given.
    ``ranks`` > 1 (an engine group) plans offload "none" only, per GPU.
    """
    plans = []
    for offload in (OFFLOADS if ranks == 1 else ("none",)):
        for batched in ((True, False) if config.guidance > 1.0 else (levers.batched_cfg,)):
            for tiling in (False, True):
                candidate = replace(levers, offload=offload, batched_cfg=batched, vae_tiling=tiling)
                plan = plan_window(preset, num_frames, height, width, config, candidate, dtype=dtype,
                                   total_bytes=total_bytes, attention_mode=attention_mode, ranks=ranks)
                if plan.fits:
                    return plan
                plans.append(plan)
    return min(plans, key=lambda p: (p.peak_bytes, not p.levers.vae_tiling, p.levers.batched_cfg))


def advice(plan: MemoryPlan, config: RealifyConfig) -> str:
    """Why nothing fits and which setting to lower, for the largest component of the plan."""
    largest = max(plan.components, key=plan.components.get)
    lower = {
        "weights": "use a smaller model (wan2.1-t2v-1.3b or wan2.1-vace-1.3b) or a card with more memory",
        "activations": f"lower the resolution (now {config.resolution}) or the window (now {config.window} frames)",
        "reference cache": "use attention_mode 'full' (the causal-ref cache holds every layer's reference keys)",
        "vae": "lower the resolution (the VAE decode is per pixel)",
        "text encoder": "the text encoder (UMT5-XXL, 11.4 GB in bf16) moves onto the card whole: use a card "
                        "with at least 16 GB",
    }[largest]
    if plan.ranks > 1 and largest in ("weights", "text encoder"):
        lower = (f"an engine group holds the whole model on each of its {plan.ranks} GPUs and does not offload: "
                 "use --gpus-per-window 1 (one GPU with offload), a smaller model, or cards with more memory")
    return (f"planned peak {plan.peak_bytes / GIB:.1f} GiB > {plan.budget_bytes / GIB:.1f} GiB usable "
            f"even with offload {plan.offload}; the largest part is {largest} "
            f"({plan.components[largest] / GIB:.1f} GiB): {lower}")


def plan_table(plan: MemoryPlan) -> str:
    rows = [f"{'component':18} {'GiB':>8}"] + [f"{k:18} {v / GIB:8.2f}" for k, v in plan.components.items()]
    rows += [f"{'phase ' + k:18} {v / GIB:8.2f}" for k, v in plan.phases.items()]
    rows.append(f"{'planned peak':18} {plan.peak_bytes / GIB:8.2f}")
    return "\n".join(rows + [f"note: {n}" for n in plan.notes])


def choose_levers(gpu_name: str | None, total_bytes: int, model: str, num_frames: int = 81, height: int = 720,
                  width: int = 1280, quality: str = "final") -> Levers:
    """Defaults for ``model`` on this GPU: the fastest kernels, and the memory levers the planner fits.

    ``gpu_name`` None (or no memory) means the CPU: only the levers that help there. The shape
    defaults to the final quality's window (81 frames at 720p); the engine re-plans every window
    shape (``plan_for_device``). Output-changing levers (step cache, causal-ref, distilled LoRA)
    stay off: they are the user's choice.
    """
    if not gpu_name or total_bytes <= 0:
        return Levers(batched_cfg=True, preview_decoder="latent")
    base = Levers(attention_backend=fastest_attention(gpu_name), compile_blocks=True, preview_decoder="latent")
    config = apply_quality(RealifyConfig(), quality)
    return choose_plan(model, total_bytes, num_frames, height, width, config, base).levers


def device_memory(device: str) -> tuple[str | None, int]:
    """(GPU name, total bytes) behind ``device`` ("cuda:N", "cuda", "cpu"); (None, 0) without a GPU."""
    if not device.startswith("cuda"):
        return None, 0
    return detect_gpu(int(device.partition(":")[2] or 0)) or (None, 0)


def levers_for(device: str, model: str) -> Levers:
    """The engine's load-time call: detect the GPU behind ``device`` and choose."""
    return choose_levers(*device_memory(device), model)


def plan_for_device(device: str, model: str, num_frames: int, height: int, width: int, config: RealifyConfig,
                    levers: Levers, attention_mode: str | None = None, ranks: int = 1) -> MemoryPlan | None:
    """The engine's per-window call: the plan for this window shape on this device (None on the CPU)."""
    _, total = device_memory(device)
    if total <= 0:
        return None
    return choose_plan(model, total, num_frames, height, width, config, levers, attention_mode=attention_mode,
                       ranks=ranks)


def duration_text(seconds: float) -> str:
    """"42 s", "6 min", "1 h 5 min": how long, as an artist reads it."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def describe(plan: MemoryPlan, config: RealifyConfig, gpu_name: str, windows: int = 1) -> tuple[str, float | None]:
    """One sentence of what the plan means on this card, and the estimated seconds per window (None: unknown card).

    "Fits on your NVIDIA H100 80GB HBM3 (80 GiB) with model offload; about 42 s per window, 4 windows,
    about 3 min (estimate, denoising only)."
    """
    card = f"your {gpu_name} ({plan.total_bytes / GIB:.0f} GiB)"
    if plan.ranks > 1:
        card = f"{plan.ranks} GPUs per window ({gpu_name}, {plan.total_bytes / GIB:.0f} GiB each)"
    how = {"none": "without offload", "model": "with model offload", "group": "with block offload"}[plan.offload]
    seconds = window_seconds(plan, gpu_name)
    if not plan.fits:
        return f"Does not fit on {card}, even {how}: {advice(plan, config)}.", seconds
    sentence = f"Fits on {card} {how}"
    if seconds is None:
        return sentence + f"; no speed figure for this card (not in the planner's table).", None
    total = f", {windows} windows, about {duration_text(seconds * windows)}" if windows > 1 else ""
    return sentence + f"; about {duration_text(seconds)} per window{total} (estimate, denoising only).", seconds
