"""`c2r train`'s second conditioning: a C2R-style feature adapter on a frozen text-to-video base.

C2R (shared/C2R.md) steers Wan with DINO patch features of the coarse colour frames: the
adapter (``dino_patch_adapter``: two temporal stages, LayerNorm, MLP to the model width) makes
one control token per latent token, the bridge (``dino_fusion_bridge``) fuses them after the
patch embedding, and they are added again before the first third of the blocks with decaying
weights. Its training code is not released; phase 2 "adds control through features shared by
both domains" on top of a base trained on real footage. Here only the adapter and the bridge
train (no LoRA: the released files are a DiT and the adapter, nothing else), with the same
flow-matching loss on the same cached latents as the IC-LoRA, through the very modules
inference runs (``coarse_to_real``'s ``C2RControl``, ``ControlInjection``, ``C2RPipeline``).
The feature encoder is frozen: its features of every clip are cached with the latents.
"""

from __future__ import annotations

import torch
from torch import nn

from c2r.models.coarse_to_real.pipeline import C2RPipeline
from c2r.models.coarse_to_real.trained_adapter import (AdapterInfo, build_encoder, default_coefficients, encoder_spec,
                                                       model_width, new_control, save_adapter)


class ControlledWan(nn.Module):
    """The frozen base with the control path armed for one pass: velocity from (latents, features, t, text).

    The same computation as ``C2RPipeline``'s control passes (adapter tokens, then the transformer
    under ``injection.control``), as a module, so accelerate can wrap it and autograd reach the adapter."""

    def __init__(self, pipeline: C2RPipeline, control: nn.Module):
        super().__init__()
        self.transformer = pipeline.transformer
        self.control = control
        self.injection = pipeline.injection

    def forward(self, hidden_states: torch.Tensor, features: torch.Tensor, timestep: torch.Tensor,
                encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        tokens = self.control.dino_patch_adapter(features)
        with self.injection.control(tokens):
            return self.transformer(hidden_states, timestep, encoder_hidden_states, return_dict=False)[0]


def setup(components: dict, feature_encoder: str, max_sequence_length: int, device) -> tuple[C2RPipeline, nn.Module, dict]:
    """(the C2R pipeline over ``components`` with a new control path, the trainable control modules, the
    encoder spec to save). The base transformer is frozen; the encoder's patch is the model's token size."""
    transformer = components["transformer"]
    transformer.requires_grad_(False)
    patch = components["vae"].spatial_compression_ratio * transformer.config.patch_size[1]
    spec = encoder_spec(feature_encoder, patch)
    dino = build_encoder(spec).to(device).requires_grad_(False)
    control = new_control(dino.config.hidden_size, model_width(transformer)).to(device)
    parts = {**components, "dino": dino, "control": control, "injection_coefficients": list(default_coefficients(transformer))}
    return C2RPipeline(parts, max_sequence_length, device=device), control, spec


def save(folder, pipeline: C2RPipeline, control: nn.Module, base_model: str, spec: dict):
    """The adapter in the released key layout, with what inference rebuilds (``trained_adapter``)."""
    info = AdapterInfo(base_model, spec, tuple(pipeline.injection.coefficients))
    return save_adapter(folder, control, info)
