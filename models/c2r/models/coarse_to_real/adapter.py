"""The released control modules: ``dino_patch_adapter`` and ``dino_fusion_bridge``.

Their attribute names are the released file's key names (``c2r-dino-adapter.safetensors``),
so ``C2RControl().load_state_dict(released, strict=True)`` loads it unchanged.

Adapter: DINO patch features (T, Hp, Wp, C) at the coarse video's frame count T = 4k+1 ->
two temporal stages (each: repeat the first frame twice on the left, depthwise Conv3d
kernel 3 stride 2 over time, no bias; 81 -> 41 -> 21 = the latent frame count) -> LayerNorm
-> Linear -> SiLU -> Linear to the Wan width, flattened in (t, h, w) order: one control token
per latent token, in the order diffusers' patch embedding flattens the latents.
Bridge: y = x + fc2(SiLU(fc1(LN(x)))).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

TEMPORAL_STAGES = 2


@dataclass(frozen=True)
class ControlShapes:
    """Widths of the control modules. ``released()`` is the shipped model."""

    feature_dim: int = 768  # DINOv3 ViT-B/16 hidden size
    adapter_hidden: int = 3072
    model_dim: int = 5120  # Wan2.1-14B width
    bridge_hidden: int = 2560

    @classmethod
    def released(cls) -> "ControlShapes":
        return cls()


class TemporalDownsample(nn.Module):
    """Two stride-2 depthwise temporal convolutions; each stage maps 2m+1 frames to m+1."""

    def __init__(self, channels: int, stages: int = TEMPORAL_STAGES):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv3d(channels, channels, kernel_size=(3, 1, 1), stride=(2, 1, 1), groups=channels, bias=False)
            for _ in range(stages)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T, H, W) -> (B, C, T', H, W)."""
        for conv in self.convs:
            x = conv(torch.cat([x[:, :, :1], x[:, :, :1], x], dim=2))
        return x


class DinoPatchAdapter(nn.Module):
    def __init__(self, shapes: ControlShapes = ControlShapes()):
        super().__init__()
        self.temporal_downsample = TemporalDownsample(shapes.feature_dim)
        self.ln = nn.LayerNorm(shapes.feature_dim)
        self.mlp = nn.Sequential(
            nn.Linear(shapes.feature_dim, shapes.adapter_hidden), nn.SiLU(), nn.Linear(shapes.adapter_hidden, shapes.model_dim)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: (T, Hp, Wp, C) or (B, T, Hp, Wp, C) -> control tokens (B, T' * Hp * Wp, model_dim)."""
        if features.ndim == 4:
            features = features.unsqueeze(0)
        x = self.temporal_downsample(features.permute(0, 4, 1, 2, 3))  # (B, C, T', Hp, Wp)
        x = self.mlp(self.ln(x.permute(0, 2, 3, 4, 1)))  # (B, T', Hp, Wp, D)
        return x.flatten(1, 3)


class DinoFusionBridge(nn.Module):
    def __init__(self, shapes: ControlShapes = ControlShapes()):
        super().__init__()
        self.ln = nn.LayerNorm(shapes.model_dim)
        self.fc1 = nn.Linear(shapes.model_dim, shapes.bridge_hidden)
        self.fc2 = nn.Linear(shapes.bridge_hidden, shapes.model_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.silu(self.fc1(self.ln(x))))


class C2RControl(nn.Module):
    """Both released control modules under their released names."""

    def __init__(self, shapes: ControlShapes = ControlShapes()):
        super().__init__()
        self.shapes = shapes
        self.dino_patch_adapter = DinoPatchAdapter(shapes)
        self.dino_fusion_bridge = DinoFusionBridge(shapes)


def latent_frames(frames: int, stages: int = TEMPORAL_STAGES) -> int:
    """Frames after the temporal downsample (4k+1 -> k+1 for two stages)."""
    for _ in range(stages):
        frames = (frames - 1) // 2 + 1
    return frames
