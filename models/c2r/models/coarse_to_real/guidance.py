"""Guidance over C2R's three passes per step: v00 (negative prompt, no control), vC0 (negative
prompt, control), vCT (prompt, control).

APG (adaptive projected guidance) works on the clean-sample estimates x0 = x_t - sigma * v:

    apg(u, c, w): d = c - u; buffer <- d + momentum * buffer; d = buffer;
                  optionally d *= min(1, r / ||d||);
                  split d into its projection on c (over all non-batch dims, float64) d_par and the
                  rest d_orth; return (c - u) + (w - 1) * (d_orth + eta * d_par)
    x0 = x0_00 + apg(x0_00, x0_C0, control_scale) + apg(x0_C0, x0_CT, text_scale)
    v  = (x_t - x0) / max(sigma, eps)

with one momentum buffer per term, kept across the steps of one window (a new ``APG`` per
window). Released defaults: control 1.0, text 10.0, eta 0, momentum -0.5, no norm clip, eps 1e-6.

CFG: v = v00 + control_scale * (vC0 - v00) + text_scale * (vCT - vC0).

Each guidance names the passes it needs (``passes``), so none is run for nothing: at a control
scale of 1 the control term of APG is exactly x0_C0 - x0_00 (its (w - 1) part vanishes), so x0_00
cancels and v00 is not computed (the released code runs it anyway: two passes per step instead
of three, same result up to float rounding); CFG drops any pass whose weight is zero (control 1,
text 1: the prompt+control pass alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

GUIDANCE_MODES = ("apg", "cfg")
DEFAULT_MODE = "apg"
DEFAULT_CONTROL_SCALE = 1.0
DEFAULT_TEXT_SCALE = 10.0


@dataclass(frozen=True)
class APGSettings:
    eta: float = 0.0
    momentum: float = -0.5
    norm_threshold: float | None = None
    eps: float = 1e-6


def _batch_dims(x: torch.Tensor) -> list[int]:
    return list(range(1, x.ndim))


def project(d: torch.Tensor, onto: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(parallel, orthogonal) parts of ``d`` relative to ``onto``, per sample, computed in float64."""
    dims = _batch_dims(d)
    d64, unit = d.double(), torch.nn.functional.normalize(onto.double(), dim=dims)
    parallel = (d64 * unit).sum(dim=dims, keepdim=True) * unit
    return parallel.to(d.dtype), (d64 - parallel).to(d.dtype)


class MomentumTerm:
    """One guidance term's APG with its own momentum buffer."""

    def __init__(self, settings: APGSettings):
        self.settings = settings
        self.buffer: torch.Tensor | None = None

    def __call__(self, u: torch.Tensor, c: torch.Tensor, scale: float) -> torch.Tensor:
        s = self.settings
        diff = c - u
        self.buffer = diff if self.buffer is None else diff + s.momentum * self.buffer
        d = self.buffer
        if s.norm_threshold is not None:
            norm = d.norm(p=2, dim=_batch_dims(d), keepdim=True)
            d = d * torch.clamp(s.norm_threshold / norm, max=1.0)
        parallel, orthogonal = project(d, c)
        return diff + (scale - 1.0) * (orthogonal + s.eta * parallel)


class APG:
    """Adaptive projected guidance with momentum, for one window (its buffers live across steps)."""

    def __init__(self, control_scale: float = DEFAULT_CONTROL_SCALE, text_scale: float = DEFAULT_TEXT_SCALE,
                 settings: APGSettings = APGSettings()):
        self.control_scale, self.text_scale, self.settings = control_scale, text_scale, settings
        self.control_term, self.text_term = MomentumTerm(settings), MomentumTerm(settings)
        self.passes = ("C0", "CT") if control_scale == 1.0 else ("00", "C0", "CT")

    def __call__(self, x_t: torch.Tensor, sigma: float, v: dict[str, torch.Tensor]) -> torch.Tensor:
        x0 = {name: x_t - sigma * velocity for name, velocity in v.items()}
        if "00" in x0:
            base = x0["00"] + self.control_term(x0["00"], x0["C0"], self.control_scale)
        else:
            base = x0["C0"]
        x0 = base + self.text_term(x0["C0"], x0["CT"], self.text_scale)
        return (x_t - x0) / max(sigma, self.settings.eps)


class CFG:
    """Plain classifier-free guidance over the same passes: (1 - s_c) v00 + (s_c - s_t) vC0 + s_t vCT."""

    def __init__(self, control_scale: float = DEFAULT_CONTROL_SCALE, text_scale: float = DEFAULT_TEXT_SCALE):
        self.control_scale, self.text_scale = control_scale, text_scale
        weights = {"00": 1.0 - control_scale, "C0": control_scale - text_scale, "CT": text_scale}
        self.weights = {name: w for name, w in weights.items() if w != 0.0}
        self.passes = tuple(self.weights)

    def __call__(self, x_t: torch.Tensor, sigma: float, v: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(w * v[name] for name, w in self.weights.items())


def make_guidance(mode: str, control_scale: float, text_scale: float):
    """A fresh guidance state for one window."""
    if mode == "apg":
        return APG(control_scale, text_scale)
    if mode == "cfg":
        return CFG(control_scale, text_scale)
    raise ValueError(f"guidance_mode={mode!r}: choose one of {GUIDANCE_MODES}")
