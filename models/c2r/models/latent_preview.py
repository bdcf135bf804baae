"""A cheap picture of a latent video: a linear latent -> RGB map fitted per window.

Decoding the x0 estimate with the full Wan VAE for every preview costs about as much as a
denoising step at 81 frames x 480p. A Wan latent is close to a linear function of the colour
of its 8x8 (TI2V-5B: 16x16) pixel cell, so a per-channel linear map with a bias, fitted by
least squares on this window's own pair (rendered colour latents, rendered colour pooled
to the latent grid), turns any latent of the same window into a coarse RGB video at a tiny
fraction of the cost. No constants from elsewhere: the fit comes from the data in hand, so
it follows whichever VAE, checkpoint or normalisation is loaded.

Wan's VAE is causal in time: latent frame 0 is pixel frame 0, latent frame k >= 1 covers
pixel frames 4k-3 .. 4k. The fit pools pixels the same way; the preview repeats each latent
frame over the pixel frames it covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

TEMPORAL_STRIDE = 4  # Wan VAE: pixel frames per latent frame after the first
RANK_TOLERANCE = 1e-4  # float32 data: relative singular values below this are rounding noise


def pool_to_latent_grid(video: torch.Tensor, latent_shape: torch.Size) -> torch.Tensor:
    """(1, 3, T, H, W) pixels -> (1, 3, F, h, w): each latent cell's mean colour."""
    frames, height, width = latent_shape[2:]
    first = video[:, :, :1]
    rest = video[:, :, 1:]
    if rest.shape[2]:
        rest = rest.unflatten(2, (frames - 1, TEMPORAL_STRIDE)).mean(dim=3)
    pooled = torch.cat([first, rest], dim=2)
    return F.adaptive_avg_pool3d(pooled, (frames, height, width))


def unpool_to_pixels(latent_rgb: torch.Tensor, num_frames: int, height: int, width: int) -> torch.Tensor:
    """(1, 3, F, h, w) -> (1, 3, T, H, W): latent frames repeated over their pixel frames, bilinear in space."""
    repeats = torch.full((latent_rgb.shape[2],), TEMPORAL_STRIDE, device=latent_rgb.device)
    repeats[0] = 1
    frames = latent_rgb.repeat_interleave(repeats, dim=2)[:, :, :num_frames]
    flat = frames.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (T, 3, h, w)
    up = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False)
    return up.unflatten(0, (1, -1)).permute(0, 2, 1, 3, 4)


@dataclass
class LatentToRGB:
    """RGB = latent . weight + bias per latent cell; values in the pixels' [-1, 1] scale."""

    weight: torch.Tensor  # (C, 3)
    bias: torch.Tensor  # (3,)

    @classmethod
    def fit(cls, latents: torch.Tensor, video: torch.Tensor) -> "LatentToRGB":
        """Least squares from latents (1, C, F, h, w) to the pixels (1, 3, T, H, W) they encode."""
        target = pool_to_latent_grid(video.float(), latents.shape)
        x = latents.float().flatten(2).squeeze(0).T  # (cells, C)
        y = target.flatten(2).squeeze(0).T  # (cells, 3)
        design = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        # Minimum-norm solution: latent directions this window's colours never excite map to
        # nothing. Latents are float32 (relative rounding ~1e-7), so singular values under
        # RANK_TOLERANCE of the largest are rounding, not signal, and are treated as zero.
        solution = torch.linalg.lstsq(design.cpu().double(), y.cpu().double(), rcond=RANK_TOLERANCE,
                                      driver="gelsd").solution.float()
        return cls(solution[:-1].to(latents.device), solution[-1].to(latents.device))

    def __call__(self, latents: torch.Tensor, num_frames: int, height: int, width: int) -> torch.Tensor:
        """(1, C, F, h, w) latents -> (1, 3, T, H, W) in [-1, 1] at the model grid."""
        rgb = torch.einsum("bcfhw,cr->brfhw", latents.float(), self.weight) + self.bias.view(1, 3, 1, 1, 1)
        return unpool_to_pixels(rgb, num_frames, height, width).clamp(-1, 1)
