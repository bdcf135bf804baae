"""C2RBackend: the project's ``Backend`` for the ``c2r`` and ``tiny-c2r`` presets."""

from __future__ import annotations

import gc

import numpy as np
import torch

from ..backend import Backend, ProgressEvent, RealifyConfig, StepFn, WindowRequest
from ..backends import DTYPES, OFFLOADS, resolve_device
from ..levers import Levers, apply_to_vae, stream_blocks
from ..pipeline import ModelPlacement
from ..preprocess import grid_for
from ..registry import get_preset
from . import memory
from .frame_rate import model_frame_sources
from .pipeline import C2RPipeline
from .weights import build_tiny, load_real
from ..windows import padded_length

C2R_KIND = "c2r"
MOVED = ("transformer", "control", "dino", "text_encoder")


class C2RBackend(Backend):
    """C2R on a stock diffusers Wan transformer; ``model_path``: folders holding its four parts."""

    def __init__(self, model: str = "tiny-c2r", model_path: str | None = None, weights_seed: int = 0,
                 levers: Levers | None = None):
        self.preset = get_preset(model)
        if self.preset.kind != C2R_KIND:
            raise ValueError(f"model {model!r} is not a C2R model: use c2r or tiny-c2r")
        self.name = model
        self.model_path = model_path
        self.weights_seed = weights_seed
        self.levers = (levers or Levers()).validate()
        self.pipeline: C2RPipeline | None = None
        self._offload = "none"

    def load(self, device: str = "cpu", dtype: str = "float32", offload: str | None = None) -> None:
        offload = offload or self.levers.offload
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r}: choose one of {sorted(DTYPES)}")
        if offload not in OFFLOADS:
            raise ValueError(f"offload={offload!r}: choose one of {OFFLOADS}")
        self.unload()
        device = torch.device(resolve_device(device))
        parts = build_tiny(self.weights_seed) if self.preset.is_tiny else load_real(self.model_path, DTYPES[dtype])
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
        return self.planned_peak(num_frames, height, width, config, self._offload)

    def planned_peak(self, num_frames: int, height: int, width: int, config: RealifyConfig, offload: str) -> int:
        """Peak device bytes of one window (see ``memory``); a planning figure, not a bound."""
        cfg = self.preset.transformer_config
        grid = grid_for(height, width, config.resolution)
        model_frames = padded_length(len(model_frame_sources(min(num_frames, config.window), config.input_fps)))
        tokens = ((model_frames - 1) // 4 + 1) * (grid.model_height // 16) * (grid.model_width // 16)
        act = 2 if self.pipeline is None or self.pipeline.dtype != torch.float32 else 4
        width_ = cfg["num_attention_heads"] * cfg["attention_head_dim"]
        return (memory.weight_bytes(offload, act) + memory.activation_bytes(tokens, width_, cfg["ffn_dim"], act)
                + memory.vae_decode_bytes(grid.model_height, grid.model_width))

    def realify_window(self, request: WindowRequest, on_step: StepFn | None = None) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError(f"the {self.name} backend is not loaded: call load(device) first")
        clip, config = request.clip, request.config
        if clip.num_frames > config.window:
            raise ValueError(f"a window of {clip.num_frames} frames is longer than config.window={config.window}: "
                             "use realify() for whole clips")

        def report(kind: str, step: int = 0, preview=None) -> None:
            if on_step is not None:
                on_step(ProgressEvent.of(request, kind, step, preview))

        def pipeline_step(step: int, num_steps: int, preview) -> None:
            report("step", step)
            if preview is not None:
                report("preview", step, preview)

        report("window_started")
        out = self.pipeline(clip, config, request.prefix, seed=config.seed + request.index, on_step=pipeline_step,
                            suffix=request.suffix)
        report("window_done", config.steps)
        return out
