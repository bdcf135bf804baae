"""DINOv3 patch features of the coarse colour frames: the control signal C2R reads.

Frames go through the ViT as one batch (as released: all frames of the window) at the model
grid's size, so with a 16-pixel patch the feature grid (Hp, Wp) is exactly the latent token
grid (VAE 8x, patch 2x). From ``last_hidden_state`` the CLS token and the register tokens
(count = tokens - 1 - Hp*Wp) are dropped and the rest reshaped to (T, Hp, Wp, C).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# ImageNet statistics, DINOv3's image processor defaults
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
RELEASED_DINO = "facebook/dinov3-vitb16-pretrain-lvd1689m"


def tiny_dino_config(hidden_size: int = 16, patch_size: int = 16, layers: int = 1, heads: int = 2):
    """A DINOv3 ViT of the released layout (4 register tokens; patch 16 as released) at toy width."""
    from transformers import DINOv3ViTConfig

    return DINOv3ViTConfig(hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=heads,
                           intermediate_size=2 * hidden_size, num_register_tokens=4, patch_size=patch_size)


@dataclass(frozen=True)
class StandinDino:
    """A STAND-IN for DINOv3: the released ViT layout at toy width with SEEDED RANDOM weights.

    The real DINOv3 ViT-B/16 is gated and nothing is downloaded, so the testbed's feature adapter
    reads random-weight ViT features of the coarse frames: they keep each patch's appearance and
    layout (what a random projection and random attention keep), not DINO's semantics. Its patch
    is the model's token size (tiny-trained: VAE 4x, patch 2 -> 8 px), so one feature per latent
    token, as DINOv3's 16 px patch is for Wan's 8x VAE. The fields are saved beside a trained
    adapter so inference rebuilds the very encoder it was trained on.
    """

    hidden_size: int = 96
    patch_size: int = 8
    layers: int = 2
    heads: int = 4
    seed: int = 0
    name: str = "dinov3-standin (random weights)"

    def build(self):
        from transformers import DINOv3ViTModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return DINOv3ViTModel(tiny_dino_config(self.hidden_size, self.patch_size, self.layers, self.heads)).eval()


class DinoFeatures:
    """Wraps a ``DINOv3ViTModel``: a (1, 3, T, H, W) video in [-1, 1] -> (T, H/16, W/16, C) features."""

    def __init__(self, model):
        self.model = model.eval()
        self.patch = int(model.config.patch_size)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        _, _, frames, height, width = video.shape
        if height % self.patch or width % self.patch:
            raise ValueError(f"frames of {height}x{width}: DINOv3 needs multiples of its {self.patch}-pixel patch")
        param = next(self.model.parameters())
        images = video[0].transpose(0, 1).to(param.device, torch.float32)  # (T, 3, H, W)
        mean = torch.tensor(IMAGE_MEAN, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGE_STD, device=images.device).view(1, 3, 1, 1)
        pixels = ((images + 1) / 2 - mean) / std
        hidden = self.model(pixel_values=pixels.to(param.dtype)).last_hidden_state  # (T, 1 + R + Hp*Wp, C)
        hp, wp = height // self.patch, width // self.patch
        registers = hidden.shape[1] - 1 - hp * wp
        if registers < 0:
            raise ValueError(f"DINOv3 returned {hidden.shape[1]} tokens for a {hp}x{wp} patch grid")
        return hidden[:, 1 + registers :].reshape(frames, hp, wp, hidden.shape[-1])
