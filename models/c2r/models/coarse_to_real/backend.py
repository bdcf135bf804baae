"""C2RBackend: the project's ``Backend`` for the ``c2r`` and ``tiny-c2r`` presets.

Of the speed levers it honours the attention kernel, VAE tiling and offload ("model": the text
encoder and the DiT take turns on the device; "group": the DiT's blocks stream from the CPU).
Block compilation, step caches, batched CFG and the distilled LoRA are not applied: they are
untested with the control hooks (and C2R's passes differ in their control tokens, not only in
their prompt, so they do not batch like plain CFG).
"""

from __future__ import annotations

import gc

import numpy as np
import torch

from ..backend import Backend, RealifyConfig, StepFn, StepReporter, WindowRequest
from ..device import DTYPES, check_load, resolve_device
from ..levers import Levers, apply_to_vae, stream_blocks
from ..pipeline import ModelPlacement
from ..registry import get_preset, with_model_defaults
from .pipeline import C2RPipeline
from .weights import build_parts

C2R_KIND = "c2r"
MOVED = ("transformer", "control", "dino", "text_encoder")


class C2RBackend(Backend):
    """C2R on a stock diffusers Wan transformer; ``model_path``: folders holding its four parts
    (``tiny-trained-c2r``: a trained feature adapter folder)."""

    def __init__(self, model: str = "tiny-c2r", model_path: str | None = None, weights_seed: int = 0,
                 levers: Levers | None = None):
        self.preset = get_preset(model)
        if self.preset.kind != C2R_KIND:
            raise ValueError(f"model {model!r} is not a C2R model: use c2r, tiny-c2r or tiny-trained-c2r")
        self.name = model
        self.model_path = model_path
        self.weights_seed = weights_seed
        self.levers = (levers or Levers()).validate()
        self.pipeline: C2RPipeline | None = None
        self._offload = "none"

    def load(self, device: str = "cpu", dtype: str = "float32", offload: str | None = None) -> None:
        offload = offload or self.levers.offload
        check_load(dtype, offload)
        self.unload()
        device = torch.device(resolve_device(device))
        parts = build_parts(self.preset, self.model_path, DTYPES[dtype], self.weights_seed)
        for key in MOVED:  # built in float32 (tiny) or loaded in dtype with diffusers' float32 parts kept
            if next(parts[key].parameters()).dtype != DTYPES[dtype]:
                parts[key].to(dtype=DTYPES[dtype])
        parts["vae"].to(device)
        parts["dino"].to(device)
        parts["control"].to(device)
        apply_to_vae(parts["vae"], self.levers)
        if self.levers.attention_backend:
            parts["transformer"].set_attention_backend(self.levers.attention_backend)
        placement = None
        if offload == "none":
            parts["transformer"].to(device)
            parts["text_encoder"].to(device)
        elif offload == "model":  # the text encoder and the DiT take turns on the device
            placement = ModelPlacement(device, [parts["text_encoder"], parts["transformer"]])
        else:
            stream_blocks(parts["transformer"], device)
            placement = ModelPlacement(device, [parts["text_encoder"]])
        self._offload = offload
        self.pipeline = C2RPipeline(parts, self.preset.max_sequence_length, device=device, placement=placement)

    def unload(self) -> None:
        if self.pipeline is None:
            return
        device = self.pipeline.device
        self.pipeline.injection.remove()
        self.pipeline = None
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()

    def memory_estimate(self, num_frames: int, height: int, width: int, config: RealifyConfig) -> int:
        return self.memory_plan(num_frames, height, width, config).peak_bytes

    def memory_plan(self, num_frames: int, height: int, width: int, config: RealifyConfig, offload: str | None = None):
        """The one planner's figure (``memory_plan``) for this preset with this backend's levers."""
        from ..memory_plan import plan_window

        dtype = "float32" if self.pipeline is not None and self.pipeline.dtype == torch.float32 else "bfloat16"
        return plan_window(self.preset, num_frames, height, width, config, self.levers, offload or self._offload, dtype)

    def realify_window(self, request: WindowRequest, on_step: StepFn | None = None) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError(f"the {self.name} backend is not loaded: call load(device) first")
        clip, config = request.clip, with_model_defaults(request.config, self.preset)
        if clip.num_frames > config.window:
            raise ValueError(f"a window of {clip.num_frames} frames is longer than config.window={config.window}: "
                             "use realify() for whole clips")

        report = StepReporter(request, on_step)

        report("window_started")
        out = self.pipeline(clip, config, request.prefix, seed=config.seed + request.index, on_step=report.pipeline_step,
                            suffix=request.suffix)
        report("window_done", config.steps)
        return out
