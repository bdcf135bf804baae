"""Flow-matching sampling for Wan, as a handful of pure functions the pipeline loops over.

Wan is a rectified-flow model: x_sigma = (1 - sigma) * x0 + sigma * noise, and the
transformer predicts the velocity v = noise - x0 at timestep 1000 * sigma. Sampling is the
Euler method on sigma from 1 to 0, with Wan's timestep shift spending more steps at high
noise (where the layout is decided). Written out rather than borrowed from a diffusers
scheduler because the pipeline needs the sigma of every step anyway (pinning prefix
latents, x0 previews, the A14B expert switch, strength), and these few lines say it plainly.
"""

from __future__ import annotations

import torch

NUM_TRAIN_TIMESTEPS = 1000


def flow_sigmas(steps: int, shift: float = 5.0, strength: float = 1.0) -> torch.Tensor:
    """Sigmas of the steps to run, followed by a final 0 (length = steps run + 1).

    ``strength`` < 1 keeps only the last ``round(steps * strength)`` steps (at least one), so
    sampling starts from the input noised to that step's sigma: a lighter edit.
    """
    if steps < 1:
        raise ValueError(f"steps={steps}: use at least 1 step")
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength={strength}: use a value in (0, 1]")
    if shift <= 0:
        raise ValueError(f"shift={shift}: the timestep shift must be positive (Wan uses 3 to 12)")
    plain = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)[:-1]
    shifted = shift * plain / (1 + (shift - 1) * plain)
    keep = max(1, round(steps * strength))
    return torch.cat([shifted[steps - keep :], shifted.new_zeros(1)]).float()


def timestep_of(sigma: float) -> torch.Tensor:
    return torch.tensor([float(sigma) * NUM_TRAIN_TIMESTEPS])


def add_noise(clean: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    return (1 - sigma) * clean + sigma * noise


def euler_step(latents: torch.Tensor, velocity: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    return latents + (sigma_next - sigma) * velocity


def predicted_clean(latents: torch.Tensor, velocity: torch.Tensor, sigma: float) -> torch.Tensor:
    """x0 estimate at this step (for previews)."""
    return latents - sigma * velocity


def guided(cond: torch.Tensor, uncond: torch.Tensor | None, guidance: float) -> torch.Tensor:
    """Classifier-free guidance; ``uncond`` is None when guidance <= 1 (one branch per step)."""
    return cond if uncond is None else uncond + guidance * (cond - uncond)


def uses_cfg(guidance: float) -> bool:
    return guidance > 1.0


def expert_for(sigma: float, boundary_ratio: float | None) -> str:
    """A14B: the high-noise expert ``transformer`` while t >= boundary * 1000, then ``transformer_2``."""
    if boundary_ratio is None or sigma >= boundary_ratio:
        return "transformer"
    return "transformer_2"
