"""Paired training data: RealMaster anchor propagation and C2R real-footage pairs.

Anchor propagation (RealMaster sec. 3.1): the first and last rendered frames are made real by
an image editor (Qwen-Image-Edit), then VACE regenerates the whole clip with those two frames
kept (VACE mask 0) and edge maps of the rendered frames as control for the frames between
(mask 1), so appearance comes from the anchors and structure from the render. An ArcFace
filter drops pairs whose worst face match falls under 0.4.

Real-footage pairs (C2R phase one): a real video is its own target; its coarse conditions
(edges, and depth from a monocular model when one is installed) are derived from it, so the
model learns the real prior from footage and its control from features both domains share.

Real clips also get a coarse colour proxy (``coarse_proxy``) as their "rendered" side.

The output folder holds ``clips/<id>/{rendered,realistic,edges}.mp4`` (+ ``depth.npz``) and
``pairs.jsonl``, one record per source clip. A run skips clips already recorded as done, so
an interrupted run resumes; a clip that fails is recorded with its error and skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from c2r.models.backend import GBuffers, RealifyConfig
from c2r.models.preprocess import frames_to_model, grid_for, model_to_frames, prepare_conditions

from . import clips
from .faces import identity_similarity, load_face_model

log = logging.getLogger("c2r.datagen")

RECORDS = "pairs.jsonl"
DONE = ("ok", "filtered")  # statuses a resumed run does not redo ("failed" is retried)


@dataclass
class DatagenConfig:
    edit_prompt: str = (
        "Turn this video game frame into a real photograph: real skin, hair, fabric, materials and natural light; "
        "keep every person, object, pose and the camera exactly as they are"
    )
    video_prompt: str = RealifyConfig.prompt
    negative_prompt: str = RealifyConfig.negative_prompt
    editor: str = "Qwen/Qwen-Image-Edit"  # or a local folder, or "tiny"
    propagator: str = "wan2.1-vace-14b"  # a VACE preset of c2r.models.registry (or "tiny-vace")
    propagator_path: str | None = None
    edit_steps: int = 50
    edit_guidance: float = 4.0  # Qwen-Image-Edit's true CFG scale
    edit_size: tuple[int, int] | None = None  # None: the editor's own ~1 MP working size
    vace_steps: int = 50
    vace_guidance: float = 5.0
    vace_shift: float = 5.0
    num_frames: int = 81  # the paper's clip length; longer clips are cut, shorter ones trimmed to 4k+1
    repeat_frames: int = 1  # the paper shows each 8 fps SAIL-VOS frame twice (16 fps); fps is multiplied too
    resolution: str = "480p"
    identity_threshold: float = 0.4
    depth_model: str = "depth-anything/Depth-Anything-V2-Small-hf"  # for real footage, when present locally
    seed: int = 0
    device: str = "cpu"
    dtype: str = "bfloat16"


@dataclass
class DatagenModels:
    """Everything a run loads once: editor, VACE pipeline, optional face and depth models."""

    editor: object
    vace: object
    face_model: object = None
    face_reason: str = ""
    depth_estimator: object = None
    depth_reason: str = ""
    prompts: object = None  # c2r.models.text_encoder.PromptEncoder for the VACE text encoder


def clip_id(source: Path, kind: str) -> str:
    digest = hashlib.sha1(f"{kind}:{source.resolve()}".encode()).hexdigest()[:8]
    return f"{source.stem}-{kind}-{digest}"


def usable_length(num_frames: int, limit: int) -> int:
    """The longest 4k+1 frame count <= both (VACE and Wan need 4k+1 frames)."""
    n = min(num_frames, limit)
    if n < 5:
        raise ValueError(f"clip has {num_frames} frames: anchor propagation needs at least 5 (4k+1)")
    return n - (n - 1) % 4


def load_models(config: DatagenConfig, need_anchor: bool, need_real: bool) -> DatagenModels:
    from .editor import build_tiny_image_editor, load_image_editor
    from .monodepth import load_depth_estimator

    editor = vace = prompts = None
    if need_anchor:
        dtype = getattr(torch, config.dtype)
        editor = build_tiny_image_editor(config.seed) if config.editor == "tiny" else load_image_editor(config.editor, config.device, dtype)
        from c2r.models.vace import build_vace_pipeline

        vace, prompts = build_vace_pipeline(config.propagator, config.propagator_path, getattr(torch, config.dtype),
                                            config.device, seed=config.seed, shift=config.vace_shift)
    face_model, face_reason = load_face_model(device=config.device)
    depth, depth_reason = load_depth_estimator(config.depth_model, config.device) if need_real else (None, "")
    return DatagenModels(editor, vace, face_model, face_reason, depth, depth_reason, prompts)


def _pil_frames(video: torch.Tensor) -> list:
    """(1, 3, T, H, W) in [-1, 1] -> T PIL images (VACE's pipeline takes images)."""
    from PIL import Image

    arr = video[0].permute(1, 2, 3, 0).float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    return [Image.fromarray(f) for f in arr]


def propagate(vace, prompts, keyframes: np.ndarray, edges: torch.Tensor, grid, config: DatagenConfig, seed: int) -> np.ndarray:
    """VACE: keep the edited first/last frames (mask 0), generate the rest from edges (mask 1)."""
    from PIL import Image

    num_frames = edges.shape[2]
    control = edges.clone()
    anchors = frames_to_model(keyframes, grid)
    control[:, :, 0], control[:, :, -1] = anchors[:, :, 0], anchors[:, :, 1]
    height, width = grid.model_size
    keep, make = Image.new("L", (width, height), 0), Image.new("L", (width, height), 255)
    mask = [keep] + [make] * (num_frames - 2) + [keep]
    dtype = vace.transformer.dtype
    cfg = {"negative_prompt_embeds": prompts.encode(config.negative_prompt, vace.device, dtype)} if config.vace_guidance > 1 else {}
    out = vace(
        video=_pil_frames(control), mask=mask, prompt_embeds=prompts.encode(config.video_prompt, vace.device, dtype), **cfg,
        height=height, width=width, num_frames=num_frames, num_inference_steps=config.vace_steps,
        guidance_scale=config.vace_guidance, generator=torch.Generator().manual_seed(seed), output_type="np",
    ).frames
    video = torch.from_numpy(np.asarray(out[0])).permute(3, 0, 1, 2)[None].float() * 2 - 1
    return model_to_frames(video, grid)


def make_anchor_pair(models: DatagenModels, frames: np.ndarray, depth: np.ndarray | None, config: DatagenConfig, seed: int) -> dict:
    """(rendered, realistic, edges) of one rendered clip, plus the identity score."""
    from .editor import edit_keyframes

    grid = grid_for(frames.shape[1], frames.shape[2], config.resolution)
    edges = prepare_conditions(GBuffers(color=frames, depth=depth), grid, include=("edges",))["edges"]
    keyframes = edit_keyframes(
        models.editor, frames[[0, -1]], config.edit_prompt, config.edit_steps, config.edit_guidance,
        config.negative_prompt, seed, config.edit_size,
    )
    realistic = propagate(models.vace, models.prompts, keyframes, edges, grid, config, seed)
    identity = identity_similarity(models.face_model, frames, realistic, reason=models.face_reason)
    return {"realistic": realistic, "edges": model_to_frames(edges, grid), "identity": identity}


def coarse_proxy(frames: np.ndarray, block: int = 4, levels: int = 6) -> np.ndarray:
    """A render-like stand-in for real footage: texture averaged away, colours posterised.

    The realify pipeline always takes the rendered colour as its first reference clip, so a
    real clip needs a coarse colour input too; flat regions of averaged colour are what a
    coarse render shares with footage (layout, silhouettes, base colours), not its detail.
    """
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    height, width = video.shape[-2:]
    flat = torch.nn.functional.avg_pool2d(video, block, ceil_mode=True)
    flat = torch.nn.functional.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False)
    posterised = (flat * (levels - 1)).round() / (levels - 1)
    return (posterised * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_real_pair(models: DatagenModels, frames: np.ndarray, config: DatagenConfig) -> dict:
    """A real clip is its own target; its coarse conditions are derived from it (C2R phase one)."""
    from .monodepth import estimate_depth

    grid = grid_for(frames.shape[1], frames.shape[2], config.resolution)
    depth = estimate_depth(models.depth_estimator, frames) if models.depth_estimator is not None else None
    conditions = prepare_conditions(
        GBuffers(color=frames, depth=depth, depth_kind="inverse"), grid, include=("edges",)
    )
    return {"realistic": frames, "rendered": coarse_proxy(frames), "edges": model_to_frames(conditions["edges"], grid),
            "depth": depth}


def read_records(out_dir: Path) -> dict[str, dict]:
    """The latest record per clip id (a retried clip appends a newer one)."""
    path = out_dir / RECORDS
    records: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                records[record["id"]] = record
    return records


def find_depth(source: Path) -> Path | None:
    """``<clip>_depth.npz|.npy`` or a ``<clip>_depth/`` EXR folder beside the clip."""
    for candidate in (source.with_name(f"{source.stem}_depth.npz"), source.with_name(f"{source.stem}_depth.npy"),
                      source.with_name(f"{source.stem}_depth")):
        if candidate.exists():
            return candidate
    return None


def process_clip(source: Path, kind: str, models: DatagenModels, config: DatagenConfig, out_dir: Path, index: int) -> dict:
    cid = clip_id(source, kind)
    folder = out_dir / "clips" / cid
    folder.mkdir(parents=True, exist_ok=True)
    frames, fps = clips.read_clip(source)
    if config.repeat_frames < 1:
        raise ValueError(f"repeat_frames={config.repeat_frames}: use 1 (keep) or more")
    frames, fps = np.repeat(frames, config.repeat_frames, axis=0), fps * config.repeat_frames
    n = usable_length(len(frames), config.num_frames)
    frames = frames[:n]
    record: dict = {"id": cid, "kind": kind, "source": str(source), "fps": fps, "frames": n,
                    "height": int(frames.shape[1]), "width": int(frames.shape[2])}
    depth_file = find_depth(source) if kind == "anchor" else None
    depth = np.repeat(clips.read_depth(depth_file, -(-n // config.repeat_frames)), config.repeat_frames, axis=0)[:n] if depth_file else None
    seed = config.seed + index
    if kind == "anchor":
        pair = make_anchor_pair(models, frames, depth, config, seed)
        identity = pair["identity"]
        passed = identity.status != "scored" or identity.min >= config.identity_threshold
        record.update(prompt=config.video_prompt, edit_prompt=config.edit_prompt, identity=identity.as_dict(),
                      identity_threshold=config.identity_threshold, status="ok" if passed else "filtered",
                      depth_kind="distance" if depth is not None else None)
        clips.write_clip(folder / "rendered.mp4", frames, fps)
    else:
        pair = make_real_pair(models, frames, config)
        depth = pair["depth"]
        record.update(prompt=config.video_prompt, status="ok", rendered="coarse proxy of the footage",
                      identity={"status": "not_applicable", "reason": "real footage is its own target"},
                      depth_kind="inverse" if depth is not None else None,
                      depth_status="estimated" if depth is not None else f"absent: {models.depth_reason}")
        clips.write_clip(folder / "rendered.mp4", pair["rendered"], fps)
    clips.write_clip(folder / "realistic.mp4", pair["realistic"], fps)
    clips.write_clip(folder / "edges.mp4", pair["edges"], fps)
    if depth is not None:
        np.savez_compressed(folder / "depth.npz", depth=depth.astype(np.float16))
    record["files"] = {name: f"clips/{cid}/{name}" for name in ("rendered.mp4", "realistic.mp4", "edges.mp4", "depth.npz")
                       if (folder / name).is_file()}
    return record


def run_datagen(sources: list[tuple[Path, str]], out_dir: Path, config: DatagenConfig, models: DatagenModels | None = None,
                progress: bool = True) -> dict:
    """Make a pair for every (source, kind) not already done; returns the run summary."""
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    done = {cid for cid, r in read_records(out_dir).items() if r.get("status") in DONE}
    todo = [(i, s, k) for i, (s, k) in enumerate(sources) if clip_id(s, k) not in done]
    if models is None:
        models = load_models(config, need_anchor=any(k == "anchor" for _, _, k in todo), need_real=any(k == "real" for _, _, k in todo))
    counts = {"ok": 0, "filtered": 0, "failed": 0, "skipped_done": len(sources) - len(todo)}
    with (out_dir / RECORDS).open("a") as records:
        for index, source, kind in tqdm(todo, desc="datagen", unit="clip", disable=not progress):
            started = time.perf_counter()
            try:
                record = process_clip(source, kind, models, config, out_dir, index)
            except Exception as e:  # one bad clip must never stop a long run
                log.error("clip %s failed: %s\n%s", source, e, traceback.format_exc())
                record = {"id": clip_id(source, kind), "kind": kind, "source": str(source), "status": "failed", "error": f"{type(e).__name__}: {e}"}
            record["seconds"] = round(time.perf_counter() - started, 3)
            counts[record["status"]] += 1
            records.write(json.dumps(record) + "\n")
            records.flush()
    identity = "scored" if models.face_model is not None else f"skipped ({models.face_reason})"
    summary = {**counts, "identity_filter": identity, "threshold": config.identity_threshold, "config": asdict(config)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
