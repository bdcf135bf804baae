"""DINO structure distance between an input video and its realified output.

RealMaster reports "the distance between DINO features extracted over all frames". Raw DINO
features also move when only the appearance changes, which is the point of realify, so we
compare what DINO sees as *structure*: the cosine self-similarity of a frame's patch tokens
(which patch looks like which), following Tumanyan et al.'s "Splicing ViT features". The
distance is the mean squared difference of those matrices, averaged over frames: 0 for the
same layout, larger when shapes move, merge or vanish.
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_DINO = "facebook/dinov2-base"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def load_dino(name_or_path: str = DEFAULT_DINO, device: str = "cpu"):
    """DINOv2 from a local folder or the local Hugging Face cache; never downloads."""
    from transformers import Dinov2Model

    from .local_weights import local_folder

    folder = local_folder(name_or_path)
    if folder is None:
        raise FileNotFoundError(
            f"DINOv2 weights {name_or_path!r} are not on this machine. Fetch them where there is internet "
            f"(`huggingface-cli download {DEFAULT_DINO}`), pass --dino PATH to a local copy, or --no-dino to skip."
        )
    return Dinov2Model.from_pretrained(folder).to(device).eval()


def _to_pixels(frames: np.ndarray, size: int, device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float() / 255.0
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(_IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(_IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def _self_similarity(model, frames: np.ndarray, batch: int) -> torch.Tensor:
    device = next(model.parameters()).device
    size = int(model.config.image_size)
    out = []
    for i in range(0, len(frames), batch):
        tokens = model(pixel_values=_to_pixels(frames[i : i + batch], size, device)).last_hidden_state[:, 1:]
        tokens = torch.nn.functional.normalize(tokens.float(), dim=-1)
        out.append(tokens @ tokens.transpose(1, 2))
    return torch.cat(out)


def dino_structure_distance(model, inputs: np.ndarray, outputs: np.ndarray, batch: int = 8) -> float:
    """Mean over frames of the squared difference of DINO patch self-similarity; 0 = same structure."""
    if inputs.shape[0] != outputs.shape[0]:
        raise ValueError(f"input has {inputs.shape[0]} frames but output has {outputs.shape[0]}: score matching clips")
    a = _self_similarity(model, inputs, batch)
    b = _self_similarity(model, outputs, batch)
    return float(((a - b) ** 2).mean())


def edge_maps(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, H, W) bool Canny edges (the project's own Canny, on luma)."""
    from c2r.models.preprocess import canny

    rgb = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    luma = (0.2126 * rgb[:, 0] + 0.7152 * rgb[:, 1] + 0.0722 * rgb[:, 2]).unsqueeze(1)
    return canny(luma)[:, 0]


def edge_f1(reference: np.ndarray, candidate: np.ndarray, tolerance: int = 1) -> float:
    """F1 of the candidate's edges against the reference's, a match within ``tolerance`` pixels.

    Structure kept, in pixels: 1.0 when every edge of the input reappears in the output (and no
    new ones appear); texture added inside shapes lowers precision, a lost outline lowers recall.
    """
    ref, cand = edge_maps(reference), edge_maps(candidate)
    size = 2 * tolerance + 1

    def grow(edges: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.max_pool2d(edges[:, None].float(), size, stride=1, padding=tolerance)[:, 0] > 0

    precision = (cand & grow(ref)).sum().item() / max(cand.sum().item(), 1)
    recall = (ref & grow(cand)).sum().item() / max(ref.sum().item(), 1)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def edge_strength_correlation(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Pearson correlation of the two clips' gradient magnitudes, in [-1, 1].

    A soft structure score for blurry images, where a thresholded edge detector finds nothing
    (e.g. frames decoded by an untrained VAE): 1 when strong gradients sit in the same places.
    """
    def strength(frames: np.ndarray) -> np.ndarray:
        luma = frames.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        gy, gx = np.gradient(luma, axis=(1, 2))
        return np.hypot(gx, gy).ravel()

    a, b = strength(reference), strength(candidate)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
