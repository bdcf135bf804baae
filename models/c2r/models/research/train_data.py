"""The training set as cached latents: every clip VAE-encoded and every prompt embedded once.

Encoding an 81-frame 480p clip with Wan's VAE costs about as much as a training step, and the
text encoder (UMT5-XXL) is larger than a LoRA's whole working set; both are frozen, so they
run once per clip and prompt, before training, and the results live on disk:

    <cache>/<clip id>.pt       {"target": latents, "references": {downscale: [latents per condition]}, "prompt": key}
                               (the feature adapter: "features", the coarse colour's DINO patch features, instead
                               of references: the encoder is frozen too)
    <cache>/prompts/<key>.pt   the prompt's embeddings (shared by every clip with that prompt)

The cache folder name hashes everything the latents depend on (model, resolution, frame count,
reference conditions and sizes), so changing any of them starts a fresh cache instead of a wrong one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from c2r.models.backend import GBuffers
from c2r.models.preprocess import frames_to_model, grid_for, prepare_conditions

from . import clips
from .datagen import read_records, usable_length


@dataclass
class ClipSource:
    """One usable pair from a datagen folder, as the training side needs it."""

    id: str
    prompt: str
    fps: float
    buffers: GBuffers  # the coarse side: rendered colour (real footage: its coarse proxy), depth, edges
    target: np.ndarray  # (T, H, W, 3) uint8, the realistic side


def _prompt_key(prompt: str) -> str:
    return hashlib.sha1(prompt.encode()).hexdigest()[:16]


def load_pairs(data_dir: Path, num_frames: int, reference: tuple[str, ...]) -> list[ClipSource]:
    """The usable pairs (status "ok") of a datagen folder, cut to ``num_frames`` (4k+1)."""
    records = [r for r in read_records(data_dir).values() if r.get("status") == "ok"]
    if not records:
        raise FileNotFoundError(f"{data_dir}: no usable pairs (no pairs.jsonl records with status 'ok'); run `c2r datagen` first")
    pairs = []
    for record in sorted(records, key=lambda r: r["id"]):
        files = record["files"]
        if "rendered.mp4" not in files and "color" in reference:
            raise ValueError(
                f"{record['id']} has no rendered.mp4 (a real clip from an older datagen?), so its only colour is the "
                "target itself; re-run `c2r datagen --real` to add its coarse proxy, or drop the clip"
            )
        target, fps = clips.read_clip(data_dir / files["realistic.mp4"])
        n = usable_length(len(target), num_frames)
        color = clips.read_clip(data_dir / files["rendered.mp4"], max_frames=n)[0] if "rendered.mp4" in files else target
        edges = clips.read_clip(data_dir / files["edges.mp4"], max_frames=n)[0][..., 0].astype(np.float32) / 255.0
        depth = None
        if "depth.npz" in files:
            with np.load(data_dir / files["depth.npz"]) as archive:
                depth = archive["depth"][:n].astype(np.float32)
        buffers = GBuffers(color=color[:n], depth=depth, depth_kind=record.get("depth_kind") or "distance", edges=edges[:n])
        pairs.append(ClipSource(record["id"], record.get("prompt", ""), fps, buffers, target[:n]))
    return pairs


def cache_key(model: str, resolution: str, num_frames: int, reference: tuple[str, ...], downscales: tuple[int, ...],
              features: str | None = None) -> str:
    """``features``: what encodes the adapter's features (its conditioning and encoder), None for an IC-LoRA."""
    settings = [model, resolution, num_frames, list(reference), list(downscales)] + ([features] if features else [])
    return hashlib.sha1(json.dumps(settings).encode()).hexdigest()[:12]


@torch.no_grad()
def build_cache(pairs: list[ClipSource], pipeline, cache_dir: Path, resolution: str, reference: tuple[str, ...],
                downscales: tuple[int, ...] = (1,), features=None) -> list[Path]:
    """Encode every pair not cached yet with ``pipeline`` (a RealifyPipeline or C2RPipeline: its VAE,
    prompt encoder and model grid).

    References are encoded at each size in ``downscales``, shrunk exactly as the pipeline shrinks
    them at inference, so a LoRA trained here sees the tokens the preview preset will give it.
    ``features``: a C2RPipeline's ``dino`` (colour on the model grid -> (T, Hp, Wp, C)), for the
    feature adapter; its colour is prepared as C2RPipeline prepares it (in float32).
    """
    (cache_dir / "prompts").mkdir(parents=True, exist_ok=True)
    device, dtype = pipeline.vae.device, pipeline.vae.dtype
    paths = []
    for pair in pairs:
        path = cache_dir / f"{pair.id}.pt"
        paths.append(path)
        key = _prompt_key(pair.prompt)
        prompt_path = cache_dir / "prompts" / f"{key}.pt"
        if not prompt_path.is_file():
            _save(prompt_path, pipeline.prompts.encode(pair.prompt, "cpu", torch.float32))
        if path.is_file():
            continue
        grid = grid_for(*pair.buffers.size, resolution, pipeline.grid_multiple)
        item = {"target": pipeline.latents.encode(frames_to_model(pair.target, grid, device, dtype)).cpu(), "prompt": key}
        if reference:
            conditions = prepare_conditions(pair.buffers, grid, device, dtype, include=reference)
            missing = [name for name in reference if name not in conditions]
            if missing:
                raise ValueError(f"{pair.id}: has no {missing} plane for the reference conditions {reference}; "
                                 "give datagen the depth beside each clip or drop 'depth'/'normals' from reference")
            sized = {f: pipeline.reference_videos(conditions, reference, f) for f in downscales}
            item["references"] = {f: [pipeline.latents.encode(video).cpu() for video in videos] for f, videos in sized.items()}
        if features is not None:
            color = prepare_conditions(pair.buffers, grid, device, torch.float32, include=("color",))["color"]
            item["features"] = features(color).cpu()
        _save(path, item)
    return paths


def _save(path: Path, obj) -> None:
    """Write then rename, so an interrupted run never leaves a half-written cache entry."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


class LatentDataset:
    """Cached clips by index; each item is (target, references, prompt embeddings)."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self._prompts: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> tuple[dict, torch.Tensor]:
        """(the cached entry of clip ``index``, its prompt embeddings)."""
        item = torch.load(self.paths[index], weights_only=True)
        key = item["prompt"]
        if key not in self._prompts:
            self._prompts[key] = torch.load(self.paths[index].parent / "prompts" / f"{key}.pt", weights_only=True)
        return item, self._prompts[key]

    def item(self, index: int, downscale: int = 1) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """(target latents, reference latents at ``downscale``, prompt embeddings) of clip ``index``."""
        item, prompt = self.load(index)
        return item["target"], item["references"][downscale], prompt


def epoch_order(num_items: int, seed: int, epoch: int) -> list[int]:
    """The clip order of one epoch: a pure function of (seed, epoch), so a resumed run sees the same order."""
    return torch.randperm(num_items, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
