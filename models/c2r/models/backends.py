"""Backends the daemon can load by name: the IC-LoRA realify backend and the VACE one.

``create_backend("tiny")`` is what tests and CPU demos use: real Wan classes at toy size,
random weights. Real presets need their weights on disk (``c2r models pull NAME``).

Speed levers (``levers.Levers``: attention kernel, compilation, step cache, VAE tiling,
offload, batched CFG, distilled LoRA, preview decoder) are fixed per loaded backend:
``create_backend(model, levers=memory_plan.levers_for(device, model))``; the memory they need is
``memory_plan``'s (one planner for the lever choice, the engine and ``c2r plan``).

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

from .backend import Backend, RealifyConfig, StepFn, StepReporter, WindowRequest
from .device import DTYPES, check_load, resolve_device
from .levers import Levers, apply_to_transformer, apply_to_vae, stream_blocks
from .lora import load_lora
from .pipeline import ModelPlacement, RealifyPipeline
from .registry import PRESETS, get_preset, load_components, with_model_defaults

log = logging.getLogger(__name__)



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
        check_load(dtype, offload)
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
        return self.memory_plan(num_frames, height, width, config).peak_bytes

    def memory_plan(self, num_frames: int, height: int, width: int, config: RealifyConfig):
        """The planner's figure for this backend as loaded (its levers, offload, dtype and LoRA's mode)."""
        from .memory_plan import plan_window

        dtype = {v: k for k, v in DTYPES.items()}[self._dtype()]
        mode = self.lora_info.attention_mode if self.lora_info else None
        return plan_window(self.preset, num_frames, height, width, config, self.levers, self._offload, dtype,
                           attention_mode=mode)

    def adopt_plan(self, plan) -> None:
        """Run-time levers of a window's plan (batched CFG, VAE tiling) without reloading."""
        self.levers = replace(self.levers, batched_cfg=plan.levers.batched_cfg, vae_tiling=plan.levers.vae_tiling)
        if self.pipeline is not None:
            self.pipeline.levers = replace(self.pipeline.levers, batched_cfg=self.levers.batched_cfg)
            apply_to_vae(self.pipeline.vae, self.levers)

    def _dtype(self) -> torch.dtype:
        return self.pipeline.dtype if self.pipeline else torch.bfloat16

    # --- realify ---------------------------------------------------------------------------
    def realify_window(self, request: WindowRequest, on_step: StepFn | None = None) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError(f"the {self.name} backend is not loaded: call load(device) first")
        clip, config = request.clip, request.config
        if clip.num_frames > config.window:
            raise ValueError(f"a window of {clip.num_frames} frames is longer than config.window={config.window}: "
                             "use realify() for whole clips")
        config = with_model_defaults(config, self.preset)
        if self.lora_info:
            config = self._as_trained(config)

        report = StepReporter(request, on_step)

        report("window_started")  # a Cancelled raised here stops the window before its first step
        out = self.pipeline(clip, config, request.prefix, seed=config.seed + request.index, on_step=report.pipeline_step,
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
