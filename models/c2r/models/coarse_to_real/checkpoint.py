"""The released checkpoint files, loaded strictly.

``c2r-dino-adapter.safetensors``: keys under ``dino_patch_adapter.`` and ``dino_fusion_bridge.``
(an optional ``pipe.dit.`` prefix is stripped), loaded into ``C2RControl`` unchanged.

``c2r-dit-backbone-14B.safetensors``: a full set of Wan DiT weights, in original Wan naming or
diffusers naming (detected: the diffusers anchor key or a ``transformer.`` prefix means
diffusers; otherwise original names, renamed by diffusers' own Wan single-file conversion).
Either way every key of the transformer must be supplied with its shape and none may be left
over; otherwise the error names them.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from .adapter import C2RControl

ADAPTER_FILE = "c2r-dino-adapter.safetensors"
BACKBONE_FILE = "c2r-dit-backbone-14B.safetensors"
ADAPTER_PREFIXES = ("dino_patch_adapter.", "dino_fusion_bridge.")
OPTIONAL_PREFIX = "pipe.dit."
DIFFUSERS_ANCHOR = "condition_embedder.time_embedder.linear_1.weight"
DIFFUSERS_PREFIX = "transformer."
NAMES_SHOWN = 12


class CheckpointMismatch(ValueError):
    """A checkpoint's keys or shapes do not match the model they are meant for."""


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _names(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:NAMES_SHOWN])
    return shown + (f" ... ({len(keys) - NAMES_SHOWN} more)" if len(keys) > NAMES_SHOWN else "")


RELEASED_FIX = "Use the released C2R files unchanged (c2r models pull c2r)."


def check_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str, fix: str = RELEASED_FIX) -> None:
    """Raise ``CheckpointMismatch`` naming every missing, left-over or wrongly shaped key."""
    missing = expected.keys() - state.keys()
    extra = state.keys() - expected.keys()
    shapes = [f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
              for k in sorted(state.keys() & expected.keys()) if tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_names(missing)}")
    if extra:
        problems.append(f"{len(extra)} not used: {_names(extra)}")
    if shapes:
        problems.append(f"{len(shapes)} of the wrong shape: {', '.join(shapes[:NAMES_SHOWN])}")
    if problems:
        raise CheckpointMismatch(f"{what}: " + "; ".join(problems) + ". " + fix)


def adapter_state(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The released adapter file's tensors under ``C2RControl``'s names (``pipe.dit.`` stripped)."""
    return {k[len(OPTIONAL_PREFIX):] if k.startswith(OPTIONAL_PREFIX) else k: v for k, v in raw.items()}


def load_control(control: C2RControl, raw: dict[str, torch.Tensor], what: str = f"adapter checkpoint ({ADAPTER_FILE})",
                 fix: str = RELEASED_FIX) -> C2RControl:
    state = adapter_state(raw)
    check_state(state, control.state_dict(), what, fix)
    control.load_state_dict(state, strict=True, assign=True)
    return control


def backbone_naming(keys) -> str:
    """"diffusers" or "original" (Wan's own module names)."""
    keys = set(keys)
    if DIFFUSERS_ANCHOR in keys or any(k.startswith(DIFFUSERS_PREFIX) for k in keys):
        return "diffusers"
    return "original"


def backbone_state(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The backbone's tensors under diffusers' ``WanTransformer3DModel`` names."""
    if backbone_naming(raw) == "diffusers":
        return {k[len(DIFFUSERS_PREFIX):] if k.startswith(DIFFUSERS_PREFIX) else k: v for k, v in raw.items()}
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    return convert_wan_transformer_to_diffusers(dict(raw))  # it renames by popping: give it a copy


def load_backbone(transformer: nn.Module, raw: dict[str, torch.Tensor]) -> nn.Module:
    """Load every DiT weight into ``transformer`` (built on any device, meta included), strictly.

    Tensors are assigned as they come (no copy); the modules diffusers keeps in float32 are then
    cast to float32, and a transformer built on the meta device gets its rotary tables rebuilt.
    """
    state = backbone_state(raw)
    check_state(state, transformer.state_dict(), f"DiT backbone checkpoint ({BACKBONE_FILE}, {backbone_naming(raw)} names)")
    transformer.load_state_dict(state, strict=True, assign=True)
    _keep_fp32(transformer)
    if transformer.rope.freqs_cos.is_meta:
        _rebuild_rope(transformer)
    return transformer


def _keep_fp32(transformer: nn.Module) -> None:
    """Parameters under the names diffusers keeps in float32 (norms, modulation tables, time embedder)."""
    keep = set(getattr(transformer, "_keep_in_fp32_modules", None) or [])
    for name, param in transformer.named_parameters():
        if keep & set(name.split(".")) and param.dtype != torch.float32:
            param.data = param.data.float()


def _rebuild_rope(transformer: nn.Module) -> None:
    from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

    config = transformer.config
    device = next(transformer.parameters()).device
    transformer.rope = WanRotaryPosEmbed(config.attention_head_dim, config.patch_size, config.rope_max_seq_len).to(device)
