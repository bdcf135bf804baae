"""Wan's VAE with its latent normalisation: the transformer sees (z - mean) / std per channel."""

from __future__ import annotations

import torch


class LatentCodec:
    """Encode videos to normalised float32 latents and back; one place for the statistics."""

    def __init__(self, vae):
        self.vae = vae
        self.mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
        self.std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(1, 3, T, H, W) in [-1, 1] -> (1, C, (T-1)/4+1, H/8, W/8) normalised latents, float32."""
        latents = self.vae.encode(video.to(self.vae.device, self.vae.dtype)).latent_dist.mode().float()
        return (latents - self.mean.to(latents.device)) / self.std.to(latents.device)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents -> (1, 3, T, H, W) in [-1, 1], float32."""
        raw = latents.float() * self.std.to(latents.device) + self.mean.to(latents.device)
        return self.vae.decode(raw.to(self.vae.device, self.vae.dtype)).sample.clamp(-1, 1).float()
