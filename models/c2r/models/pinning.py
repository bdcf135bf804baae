"""Latent pinning at both ends of a window: frames generated elsewhere, kept at every step.

A window continuing earlier output pins its first latent frames to the encoded prefix; an
anchor-parallel chunk (``anchors``) also pins its last ones to the encoded next anchor. At
every step a pinned latent is the clean one re-noised to the step's sigma along the window's
own noise draw (RePaint-style), so the free frames in between are denoised in agreement
with both ends.

Wan's VAE is causal in time: latent 0 is frame 0 alone, then each latent holds 4 frames.
A prefix of 4j+1 frames therefore encodes to exactly the window's first j+1 latents. A
suffix of 4j+1 frames ending on the window's last frame encodes to j+1 latents whose last
j are the window's last j (4j frames); its first latent (one frame, encoded without the
frames before it) only gives them their causal context and is not pinned.
"""

from __future__ import annotations

import numpy as np
import torch

from .sampler import add_noise


def check_suffix(count: int, num_frames: int) -> None:
    """A suffix pins whole latents at the window's end: 4j+1 frames (j >= 1) of a 4k+1-frame window."""
    if count < 5 or (count - 1) % 4 or count >= num_frames or (num_frames - 1) % 4:
        raise ValueError(f"suffix of {count} frames for a {num_frames}-frame window: it must be 4j+1 frames (j >= 1), "
                         "shorter than the window, and the window 4k+1 frames (an anchor-parallel chunk)")


def suffix_latents(encoded: torch.Tensor) -> torch.Tensor:
    """The latents a suffix pins: all but the first of its encoding (see the module docstring)."""
    return encoded[:, :, 1:]


def pin_ends(latents: torch.Tensor, noise: torch.Tensor, prefix: torch.Tensor | None, suffix: torch.Tensor | None,
             sigma: float) -> torch.Tensor:
    """``latents`` (B, C, F, h, w) with the first / last latent frames replaced by ``prefix`` / ``suffix`` at ``sigma``."""
    parts, frames = [], latents.shape[2]
    head = 0 if prefix is None else prefix.shape[2]
    tail = 0 if suffix is None else suffix.shape[2]
    if head + tail > frames:
        raise ValueError(f"{head} prefix + {tail} suffix latent frames pinned in a window of {frames}: they overlap; "
                         "use a longer window")
    if head:
        parts.append(add_noise(prefix, noise[:, :, :head], sigma).expand(latents.shape[0], -1, -1, -1, -1))
    parts.append(latents[:, :, head : frames - tail])
    if tail:
        parts.append(add_noise(suffix, noise[:, :, frames - tail :], sigma).expand(latents.shape[0], -1, -1, -1, -1))
    return torch.cat(parts, dim=2) if len(parts) > 1 else latents


def hand_over(frames: np.ndarray, prefix: np.ndarray) -> np.ndarray:
    """A window's decoded ``frames`` (T, H, W, 3) uint8 with the frames after its prefix shifted to continue ``prefix``.

    The difference between the last prefix frame as emitted and as this window decoded it
    (the VAE round trip of an already-decoded frame) is added to the new frames, fading
    linearly to almost nothing at the window's end: frame P + i gets (n - i) / (n + 1) of it
    (n = T - P new frames), so the jump is spread over the window in n + 1 equal steps instead
    of landing on the seam. The prefix frames themselves are returned as decoded.
    """
    count = len(prefix)
    new = len(frames) - count
    if count == 0 or new <= 0:
        return frames
    offset = prefix[-1].astype(np.float32) - frames[count - 1].astype(np.float32)
    weights = (new - np.arange(new, dtype=np.float32)) / (new + 1)
    shifted = frames[count:].astype(np.float32) + weights[:, None, None, None] * offset
    out = frames.copy()
    out[count:] = np.clip(np.rint(shifted), 0, 255).astype(np.uint8)
    return out
