"""Monocular depth for real footage (C2R phase one), when a depth model is on this machine.

Depth Anything V2 (through transformers) predicts relative inverse depth, so records made
with it say ``depth_kind="inverse"``. Nothing is downloaded: without local weights the depth
condition is recorded as absent, with the reason.
"""

from __future__ import annotations

import numpy as np
import torch

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 518  # Depth Anything's working size (a multiple of its 14-pixel patches)


def load_depth_estimator(name_or_path: str, device: str = "cpu"):
    """(model, "") or (None, why not)."""
    from transformers import AutoModelForDepthEstimation

    from .local_weights import local_folder

    folder = local_folder(name_or_path)
    if folder is None:
        return None, f"depth model {name_or_path!r} is not on this machine"
    try:
        model = AutoModelForDepthEstimation.from_pretrained(folder)
    except (OSError, ValueError) as e:
        return None, f"depth model at {folder} could not load ({type(e).__name__}: {e})"
    return model.to(device).eval(), ""


@torch.no_grad()
def estimate_depth(model, frames: np.ndarray, batch: int = 4) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, H, W) float32 relative inverse depth (larger = nearer)."""
    device = next(model.parameters()).device
    height, width = frames.shape[1:3]
    mean = torch.tensor(_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(_STD, device=device).view(1, 3, 1, 1)
    out = []
    for i in range(0, len(frames), batch):
        x = torch.from_numpy(frames[i : i + batch]).to(device).permute(0, 3, 1, 2).float() / 255
        x = torch.nn.functional.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", align_corners=False)
        depth = model(pixel_values=(x - mean) / std).predicted_depth.unsqueeze(1)
        out.append(torch.nn.functional.interpolate(depth, size=(height, width), mode="bilinear", align_corners=False)[:, 0])
    return torch.cat(out).float().cpu().numpy()
