"""Backends the daemon can load by name: the IC-LoRA realify backend and the VACE one.

``create_backend("tiny")`` is what tests and CPU demos use: real Wan classes at toy size,
random weights. Real presets need their weights on disk (``c2r models pull NAME``).

Speed levers (``levers.Levers``: attention kernel, compilation, step cache, VAE tiling,
offload, batched CFG, distilled LoRA, preview decoder) are fixed per loaded backend:
``create_backend(model, levers=choose_levers(*detect_gpu(), model))``.

The ``preview`` quality runs on a small backbone (``preview_model_for``): the smallest one
that shares the final model's VAE, so both speak the same latent space (a preview's frames
could seed the final pass's prefix) and it fits beside the final model on the same card.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import replace

import numpy as np
import torch

from .backend import Backend, ProgressEvent, RealifyConfig, StepFn, WindowRequest
from .levers import Levers, apply_to_transformer, apply_to_vae, stream_blocks
from .lora import load_lora
from .pipeline import ModelPlacement, RealifyPipeline
from .preprocess import grid_for
from .sampler import uses_cfg
from .registry import PRESETS, get_preset, load_components
from .windows import padded_length

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
OFFLOADS = ("none", "model", "group")
UMT5_XXL_ENCODER_PARAMS = 5.7e9
def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class ICLoRABackend(Backend):
    """RealMaster-style IC-LoRA on a Wan text-to-video backbone (optionally with a trained LoRA).

    Without a LoRA the backbone has never seen reference tokens, so it follows the prompt
    more than the render; that is the honest behaviour of an untrained IC model, kept so the
    whole path runs before training. ``model_path`` points at a diffusers-format folder.
    """

    def __init__(self, model: str = "tiny", lora: str | None = None, model_path: str | None = None, weights_seed: int = 0,
                 levers: Levers | None = None):
        self.preset = get_preset(model)
        if self.preset.is_vace:
            raise ValueError(f"model {model!r} is a VACE model: create it with create_backend({model!r})")
        self.name = model
        self.lora = lora
        self.model_path = model_path
        self.weights_seed = weights_seed
        self.levers = (levers or Levers()).validate()
        self.lora_info = None
        self.pipeline: RealifyPipeline | None = None
        self._device = torch.device("cpu")
        self._offload = "none"

    # --- lifecycle -------------------------------------------------------------------------
    def load(self, device: str = "cpu", dtype: str = "float32", offload: str | None = None) -> None:
        """offload None: the levers' choice."""
        offload = offload or self.levers.offload
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r}: choose one of {sorted(DTYPES)}")
        if offload not in OFFLOADS:
            raise ValueError(f"offload={offload!r}: choose one of {OFFLOADS}")
        self.unload()
        self._device = torch.device(resolve_device(device))
        self._offload = offload
        home = "cpu" if offload != "none" else self._device
        components = load_components(self.name, self.model_path, DTYPES[dtype], home, seed=self.weights_seed)
        self.lora_info = load_lora(self.lora, components) if self.lora else None
        if self.levers.step_lora:
            from .step_lora import load_step_lora

            load_step_lora(components, self.levers.step_lora, self.levers.step_lora_weight,
                           self.levers.step_lora_low_noise)
        apply_to_vae(components["vae"], self.levers)
        self.pipeline = RealifyPipeline(
            components,
            attention_mode=self.lora_info.attention_mode if self.lora_info else None,
            max_sequence_length=self.preset.max_sequence_length,
            device=self._device,
            placement=self._placement(components, offload),
            levers=self.levers,
        )
        for expert in self.preset.experts:  # after the pipeline installed its IC attention processors
            apply_to_transformer(components[expert], self.levers)

    def _placement(self, components: dict, offload: str) -> ModelPlacement | None:
        """Where weights live between uses when offloading (the VAE, small, always stays on the device).

        "model": the text encoder and each expert move whole onto the device when used.
        "group": the experts' block layers stream from the CPU as they run (least memory); hooks
        go on each block, which this package calls directly, and the small parts around the
        blocks stay on the device. The text encoder still moves whole.
        """
        if offload == "none":
            return None
        components["vae"].to(self._device)
        swapped = [components["text_encoder"]]
        if offload == "model":
            return ModelPlacement(self._device, swapped + [components[e] for e in self.preset.experts])
        for key in self.preset.experts:
            stream_blocks(components[key], self._device)
        return ModelPlacement(self._device, swapped)

    def unload(self) -> None:
        if self.pipeline is None:
            return
        self.pipeline = None
        gc.collect()
        if self._device.type == "cuda":
            torch.cuda.empty_cache()

    # --- planning --------------------------------------------------------------------------
    def memory_estimate(self, num_frames: int, height: int, width: int, config: RealifyConfig) -> int:
        return self.planned_peak(num_frames, height, width, config, self._offload)

    def planned_peak(self, num_frames: int, height: int, width: int, config: RealifyConfig, offload: str) -> int:
        """Peak device bytes for one window: weights + transformer activations + VAE decode.

        A planning figure from the config (within about 2x), not a bound. Token count S per
        clip = latent frames x (H/16) x (W/16) (H/32 x W/32 for TI2V-5B). In ``full`` mode the joint sequence of
        (1 + references) x S tokens carries a per-token modulation (B, S, 6, D) in float32;
        in ``causal-ref`` the noisy stream runs alone but the reference keys/values of every
        layer stay resident (2 x layers x refs x S x D).
        """
        cfg = self.preset.transformer_config
        grid = grid_for(height, width, config.resolution)
        latent_frames = (padded_length(min(num_frames, config.window)) - 1) // 4 + 1
        cell = self.preset.vae_scale_spatial * 2  # VAE cell x 2x2 patch
        tokens = latent_frames * (grid.model_height // cell) * (grid.model_width // cell)
        inner = cfg["num_attention_heads"] * cfg["attention_head_dim"]
        act = 4 if self._dtype() == torch.float32 else 2
        refs = len(config.reference) / config.reference_downscale**2  # downscaled clips: fewer tokens each
        mode = self.lora_info.attention_mode if self.lora_info else config.attention_mode
        if uses_cfg(config.guidance) and self.levers.batched_cfg:
            tokens *= 2  # both branches in one batch
        if mode == "full":
            seq = tokens * (1 + refs)
            activations = seq * (inner * 10 * act + cfg["ffn_dim"] * act + 6 * inner * 4 * 2)
        else:
            activations = tokens * (inner * 10 * act + cfg["ffn_dim"] * act)
            activations += 2 * cfg["num_layers"] * refs * tokens * inner * act
        vae_decode = grid.model_height * grid.model_width * 96 * 4 * 4 * 6  # 4 frames x 96 ch x a few maps, fp32
        return int(self._weight_bytes(act, offload) + activations + vae_decode)

    def _dtype(self) -> torch.dtype:
        return self.pipeline.dtype if self.pipeline else torch.bfloat16

    def _weight_bytes(self, act: int, offload: str) -> int:
        """Weights resident on the device while a window denoises.

        "none": everything. "model": one expert (the text encoder is swapped out once the
        prompt is encoded, before any activation exists). "group": about one block of one expert.
        """
        if self.pipeline is not None:
            experts = [_nbytes(e.transformer) for e in self.pipeline.experts.values()]
            text, vae = _nbytes(self.pipeline.prompts.text_encoder), _nbytes(self.pipeline.vae)
        else:
            experts = [int(self.preset.params_billion * 1e9 * act)] * len(self.preset.experts)
            text, vae = int(UMT5_XXL_ENCODER_PARAMS * act), int(0.5e9)
        if offload == "model":
            return max(experts) + vae
        if offload == "group":
            return max(experts) // self.preset.transformer_config["num_layers"] + vae
        return sum(experts) + text + vae

    # --- realify ---------------------------------------------------------------------------
    def realify_window(self, request: WindowRequest, on_step: StepFn | None = None) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError(f"the {self.name} backend is not loaded: call load(device) first")
        clip, config = request.clip, request.config
        if clip.num_frames > config.window:
            raise ValueError(f"a window of {clip.num_frames} frames is longer than config.window={config.window}: "
                             "use realify() for whole clips")
        if self.lora_info:
            config = self._as_trained(config)

        def report(kind: str, step: int = 0, preview=None) -> None:
            if on_step is not None:
                on_step(ProgressEvent.of(request, kind, step, preview))

        def pipeline_step(step: int, num_steps: int, preview) -> None:
            report("step", step)
            if preview is not None:
                report("preview", step, preview)

        report("window_started")  # a Cancelled raised here stops the window before its first step
        out = self.pipeline(clip, config, request.prefix, seed=config.seed + request.index, on_step=pipeline_step,
                            suffix=request.suffix)
        report("window_done", config.steps)
        return out

    def _as_trained(self, config: RealifyConfig) -> RealifyConfig:
        """The reference conditions and sizes the LoRA was trained with win over the request.

        A LoRA has only learned to read references of the sizes it saw; the preview preset's
        half-size references would be out of distribution for one trained at full size, so
        the nearest trained size is used instead (costing the preview some speed, not quality).
        """
        info = self.lora_info
        trained = info.reference_downscales
        factor = config.reference_downscale
        if factor not in trained:
            factor = min(trained, key=lambda f: (abs(f - factor), f))
            log.info("LoRA %s was trained with reference downscale %s, not %s: using %s",
                     self.lora, list(trained), config.reference_downscale, factor)
        return replace(config, reference=info.reference, reference_downscale=factor)


def _nbytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def available_models() -> list[str]:
    return list(PRESETS)


def create_backend(model: str = "tiny", lora: str | None = None, **kw) -> Backend:
    """A backend for preset ``model``: C2R and VACE presets get their own backends, the rest IC-LoRA.

    ``levers=Levers(...)`` sets the speed levers an IC-LoRA backend loads with; the VACE
    backend runs diffusers' own VACE pipeline and takes none (they are dropped for it).
    """
    preset = get_preset(model)
    if preset.kind == "c2r":
        if lora:
            raise ValueError(f"model {model!r} is C2R, which takes no IC-LoRA (lora={lora!r})")
        from .coarse_to_real.backend import C2RBackend

        return C2RBackend(model, **kw)
    if preset.is_vace:
        if lora:
            raise ValueError(f"model {model!r} is a zero-shot VACE model and takes no IC-LoRA (lora={lora!r})")
        from .vace import VACEBackend

        kw.pop("levers", None)
        return VACEBackend(model, **kw)
    return ICLoRABackend(model, lora=lora, **kw)
