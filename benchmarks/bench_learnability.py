"""Can the IC-LoRA learn a sim-to-real mapping? A synthetic task, trained on the CPU in minutes.

Input: flat-shaded shapes moving over a flat background (a "coarse render"). Target: the
same shapes striped and lit from above, casting a shadow, over a checkered floor - a fixed,
learnable function of the input, like a render-to-real mapping.

The base model is pretrained first, in miniature: the tiny Wan transformer (a little wider than
the registry's `tiny`) learns, with all its weights and no reference, to denoise the task's
target clips (other seeds than the LoRA's). An IC-LoRA adapts a base that already denoises real
video; a LoRA on the attention and FFN projections of a *random* transformer cannot learn
denoising itself, through a frozen random output head, time embedding and modulation (trained
that way it reached x0_err 0.54, worse than a base that only knows the average look, 0.07, and
never read the reference). The LoRA is then trained by `c2r train`'s own Trainer in each
attention mode and compared on held-out clips with the base model (no LoRA: the average real
look, blind to the render) and with the identity baseline (the input returned as the output).
Training clips are stored losslessly (see ``write_dataset``), so training and scoring see the same frames.

``--task copy`` makes the target the render itself: the IC mechanism alone, where reading the
reference is the whole answer (ref_use's ceiling is then the identity row's value). In the
``realify`` task most of the target's latent variation through the random tiny VAE is its
average look, so ref_use stays small there even for a model that reads the render.

Columns:
  x0_err    latent error of the model's clean-latent estimate against the target's latents,
            averaged over sigmas 0.3-0.95 (identity: the input's latents). This is exactly what
            the LoRA is trained on, in the space the transformer sees.
  ref_use   how much worse x0_err gets when the model is shown another clip's render instead
            of this one's: 0 means the model ignores the reference's content (it learned only
            the task's average look), as the base model does; > 0 means it reads the render.
            The identity baseline's value shows the scale (a copy depends on nothing else).
  px_err    mean absolute pixel error (0-255) of the sampled output against the target, both
            through the model's VAE (the best any model can do through that codec).
  edge_corr structure kept: correlation of the output's gradient magnitude with the input's
            (both through the VAE). Not a thresholded edge F1: the random tiny VAE decodes to
            smooth images in which Canny finds no edges at all.
  train_s   seconds of LoRA training (the base row: its pretraining, shared by the modes).
The tiny VAE has random weights (training one is far too slow on a CPU), so pixel figures go
through a lossy random codec; x0_err is the direct measure. Its latents are normalised by the
task's own per-channel statistics, as Wan's VAE config does for real video. Last line: one
JSON line with every figure.

    python benchmarks/bench_learnability.py              # about 1-2 minutes per mode, 4-5 in all, on a CPU
    python benchmarks/bench_learnability.py --task copy  # the mechanism check
    python benchmarks/bench_learnability.py --steps 60 --base-steps 200   # quick look
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from c2r.models.backend import GBuffers, RealifyConfig
from c2r.models.pipeline import RealifyPipeline
from c2r.models.preprocess import frames_to_model, grid_for, model_to_frames
from c2r.models.registry import TINY_TEXT_DIM, build_tiny, get_preset
from c2r.models.research.clips import write_clip
from c2r.models.research.structure import edge_strength_correlation
from c2r.models.research.train import Trainer, load_config
from c2r.models.sampler import add_noise, predicted_clean

PROMPT = "a real photo"
# the registry's tiny model, wider (4 heads x 48, FFN 384). Width 192 > the 64 values each token predicts through the
# frozen output head; head_dim 48 gives RoPE two usable frequencies per spatial axis on the 4x4 latent grid (24 gives
# one), so "attend to your reference twin" is sharp enough to learn: copy-task ref_use doubled (0.012 -> 0.021, 3000 steps)
BENCH_TRANSFORMER = dict(num_attention_heads=4, attention_head_dim=48, ffn_dim=384, num_layers=2, text_dim=TINY_TEXT_DIM,
                         freq_dim=32, rope_max_seq_len=256)
EVAL_SIGMAS = (0.3, 0.5, 0.7, 0.95)
BASE_SEEDS = 10_000  # the base model's pretraining clips are seeds from here (the LoRA trains on 0.., tests on 1000..)


# ------------------------------------------------------------------------------ the task
def synthetic_pair(seed: int, frames: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(coarse, real) uint8 clips: flat shapes vs the same shapes textured, lit and shadowed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    floor = rng.uniform(0.25, 0.5, 3)
    light = 0.55 + 0.45 * (1 - yy / size)  # lit from above
    checker = np.where(((yy // 8) + (xx // 8)) % 2 == 0, 1.0, 0.8)
    stripes = 0.75 + 0.25 * np.sin(2 * np.pi * xx / 6)
    shapes = [(rng.uniform(0.5, 1.0, 3), rng.integers(6, size // 3), rng.uniform(0, size - 16, 2), rng.uniform(-1.5, 1.5, 2))
              for _ in range(2)]
    coarse = np.empty((frames, size, size, 3), np.float32)
    real = np.empty_like(coarse)
    for t in range(frames):
        mask = np.zeros((size, size), bool)
        c = np.broadcast_to(floor, (size, size, 3)).copy()
        for colour, half, start, velocity in shapes:
            cy, cx = start + velocity * t + half
            inside = (np.abs(yy - cy) < half) & (np.abs(xx - cx) < half)
            c[inside] = colour
            mask |= inside
        shadow = np.roll(np.roll(mask, 3, axis=0), 3, axis=1) & ~mask
        r = c * checker[..., None]
        r[mask] = c[mask] * stripes[mask][:, None]
        r[shadow] *= 0.55
        coarse[t], real[t] = c, r * light[..., None]
    return (coarse * 255).round().astype(np.uint8), (np.clip(real, 0, 1) * 255).round().astype(np.uint8)


TASKS = ("realify", "copy")


def task_pair(seed: int, frames: int, size: int, task: str = "realify") -> tuple[np.ndarray, np.ndarray]:
    """(input, target) of a task: ``realify`` = (coarse, real); ``copy`` = (coarse, coarse), the IC mechanism alone.

    Through the random tiny VAE most of the realistic clip's latent variation is the task's
    average look, not a function of its render (a per-pixel linear map from render latents to
    target latents explains little beyond the mean), so ``realify`` bounds how much reading the
    reference can pay. In ``copy`` the reference *is* the answer: a working IC-LoRA must learn it.
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r}: choose one of {TASKS}")
    coarse, real = synthetic_pair(seed, frames, size)
    return (coarse, coarse) if task == "copy" else (coarse, real)


def write_dataset(root: Path, seeds: list[int], frames: int, size: int, task: str = "realify") -> Path:
    """The task's training clips in the layout `c2r datagen` writes, each clip a PNG folder.

    Lossless on purpose: H.264 (4:2:0, crf 18) at 32x32 moves the latents about as much as the
    clips differ from each other (pixel error 3.7/255; the identity row's ref_use halves) and is
    not bit-reproducible from run to run, so it would bury what the reference tells the model.
    """
    records = []
    for seed in seeds:
        coarse, real = task_pair(seed, frames, size, task)
        cid = f"shapes{seed}"
        files = {}
        for name, video in (("rendered.mp4", coarse), ("realistic.mp4", real), ("edges.mp4", np.zeros_like(coarse))):
            folder = f"clips/{cid}/{name.removesuffix('.mp4')}"
            write_clip(root / folder, video, 16)
            files[name] = folder
        records.append({"id": cid, "kind": "anchor", "status": "ok", "prompt": PROMPT, "fps": 16, "files": files})
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def bench_components(seed: int = 0, latent_stats: tuple[list, list] | None = None, base_weights: dict | None = None) -> dict:
    """Tiny components with the wider transformer; ``latent_stats`` = the VAE's (latents_mean, latents_std),
    ``base_weights`` = the transformer's pretrained state (``pretrain_base``), random when None."""
    from diffusers import WanTransformer3DModel

    components = build_tiny("t2v", seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 17)
        components["transformer"] = WanTransformer3DModel(**BENCH_TRANSFORMER).eval()
    if base_weights is not None:
        components["transformer"].load_state_dict(base_weights)
    if latent_stats is not None:
        components["vae"].register_to_config(latents_mean=latent_stats[0], latents_std=latent_stats[1])
    return components


def pretrain_base(seeds: list[int], frames: int, size: int, latent_stats, steps: int, task: str = "realify", lr: float = 1e-3,
                  seed: int = 0) -> dict:
    """The base model's pretraining in miniature: all transformer weights learn plain flow-matching
    denoising (no reference tokens) of the task's target clips (its output domain, as Wan's is real
    video). Returns the transformer's state.

    What the LoRA then has to learn is the IC part alone: reading the render, as when adapting Wan.
    """
    components = bench_components(seed, latent_stats)
    pipeline = RealifyPipeline(components, attention_mode="full", max_sequence_length=get_preset("tiny").max_sequence_length)
    transformer = components["transformer"]  # outside an IC pass its processors are plain Wan attention
    grid = grid_for(size, size, "native")
    with torch.no_grad():
        clean = [pipeline.latents.encode(frames_to_model(task_pair(s, frames, size, task)[1], grid)) for s in seeds]
        text = pipeline.prompts.encode(PROMPT, "cpu", torch.float32)
    transformer.requires_grad_(True)
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=lr, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x0 = clean[int(torch.randint(len(clean), (), generator=generator))]
        sigma = torch.rand((), generator=generator).item()
        noise = torch.randn(x0.shape, generator=generator)
        velocity = transformer(hidden_states=add_noise(x0, noise, sigma), timestep=torch.tensor([sigma * 1000.0]),
                               encoder_hidden_states=text, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(velocity, noise - x0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
    return {k: v.detach().clone() for k, v in transformer.state_dict().items()}


@torch.no_grad()
def latent_statistics(seeds: list[int], frames: int, size: int) -> tuple[list, list]:
    """Per-channel mean/std of the task's latents, as Wan's VAE config carries for real video.

    The tiny VAE is random: its raw latents barely vary (every clip encodes to nearly the same
    values), which would make "copy the input" look perfect. Normalising by the data's own
    statistics, as the real model does, gives every channel unit spread.
    """
    vae = build_tiny("t2v", 0)["vae"]
    grid = grid_for(size, size, "native")
    latents = torch.cat([vae.encode(frames_to_model(clip, grid)).latent_dist.mode()
                         for seed in seeds for clip in synthetic_pair(seed, frames, size)], dim=2)
    return latents.mean(dim=(0, 2, 3, 4)).tolist(), latents.std(dim=(0, 2, 3, 4)).clamp_min(1e-6).tolist()


# ------------------------------------------------------------------------------ measuring
def through_vae(pipeline: RealifyPipeline, frames: np.ndarray) -> np.ndarray:
    grid = grid_for(frames.shape[1], frames.shape[2], "native")
    with torch.no_grad():
        return model_to_frames(pipeline.latents.decode(pipeline.latents.encode(frames_to_model(frames, grid))), grid)


@torch.no_grad()
def x0_error(pipeline: RealifyPipeline, coarse: np.ndarray, real: np.ndarray, mode: str | None, seed: int,
             reference_frames: np.ndarray | None = None) -> float:
    """Latent error of the clean estimate at several sigmas; mode None = identity baseline.

    reference_frames: condition on these instead of ``coarse`` (another clip: does it matter?).
    """
    grid = grid_for(coarse.shape[1], coarse.shape[2], "native")
    target = pipeline.latents.encode(frames_to_model(real, grid))
    reference = pipeline.latents.encode(frames_to_model(coarse if reference_frames is None else reference_frames, grid))
    if mode is None:
        return float(((reference - target) ** 2).mean())
    model = pipeline.experts["transformer"]
    model.attention_mode = mode
    text = pipeline.prompts.encode(PROMPT, "cpu", torch.float32)
    errors = []
    for i, sigma in enumerate(EVAL_SIGMAS):
        noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(seed * 100 + i))
        noisy = add_noise(target, noise, sigma)
        velocity = model(noisy, [reference], torch.tensor([sigma * 1000.0]), text)
        errors.append(float(((predicted_clean(noisy, velocity, sigma) - target) ** 2).mean()))
    return float(np.mean(errors))


def score(pipeline: RealifyPipeline, mode: str | None, test_seeds: list[int], frames: int, size: int, steps: int,
          task: str = "realify") -> dict:
    x0, ref_use, px, edges = [], [], [], []
    for seed in test_seeds:
        coarse, real = task_pair(seed, frames, size, task)
        x0.append(x0_error(pipeline, coarse, real, mode, seed))
        other_clip = synthetic_pair(seed + 500, frames, size)[0]
        ref_use.append(x0_error(pipeline, coarse, real, mode, seed, reference_frames=other_clip) - x0[-1])
        if mode is None:
            output = through_vae(pipeline, coarse)
        else:
            config = RealifyConfig(prompt=PROMPT, steps=steps, guidance=1.0, window=frames, overlap=0, resolution="native",
                                   attention_mode=mode, seed=seed)
            output = pipeline(GBuffers(color=coarse), config)
        px.append(float(np.abs(output.astype(np.float32) - through_vae(pipeline, real).astype(np.float32)).mean()))
        edges.append(edge_strength_correlation(through_vae(pipeline, coarse), output))
    return {"x0_err": float(np.mean(x0)), "ref_use": float(np.mean(ref_use)), "px_err": float(np.mean(px)), "edge_corr": float(np.mean(edges))}


def train_mode(mode: str, data: Path, out: Path, steps: int, frames: int, rank: int, lr: float,
               latent_stats, base_weights: dict | None) -> tuple[RealifyPipeline, float]:
    config = load_config(None, dict(model="tiny", rank=rank, attention_mode=mode, num_frames=frames, resolution="native",
                                    max_steps=steps, warmup_steps=max(1, steps // 20), learning_rate=lr, checkpoint_every=0,
                                    validation_every=0, gradient_checkpointing=False, max_grad_norm=1.0, timestep_shift=1.0))
    trainer = Trainer(config, data, out, components=bench_components(latent_stats=latent_stats, base_weights=base_weights))
    started = time.perf_counter()
    trainer.train()
    return trainer.pipeline, time.perf_counter() - started


def run_benchmark(steps: int = 6000, train_clips: int = 32, test_clips: int = 3, frames: int = 9, size: int = 32,
                  modes: tuple[str, ...] = ("full", "causal-ref"), rank: int = 16, lr: float = 3e-3, sample_steps: int = 8,
                  base_steps: int = 3000, base_clips: int = 16, task: str = "realify", workdir: Path | None = None) -> dict:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="c2r-learnability-"))
    data = write_dataset(workdir / "data", list(range(train_clips)), frames, size, task)
    test_seeds = list(range(1000, 1000 + test_clips))
    stats = latent_statistics(list(range(train_clips)), frames, size)
    started = time.perf_counter()
    base = pretrain_base(list(range(BASE_SEEDS, BASE_SEEDS + base_clips)), frames, size, stats, base_steps, task)
    base_seconds = round(time.perf_counter() - started, 1)
    results: dict = {}
    for mode in modes:
        pipeline, seconds = train_mode(mode, data, workdir / f"run-{mode}", steps, frames, rank, lr, stats, base)
        results[f"trained {mode}"] = {**score(pipeline, mode, test_seeds, frames, size, sample_steps, task),
                                      "train_s": round(seconds, 1)}
    base_model = RealifyPipeline(bench_components(latent_stats=stats, base_weights=base), attention_mode="full",
                                 max_sequence_length=get_preset("tiny").max_sequence_length)
    results["base (no LoRA)"] = {**score(base_model, "full", test_seeds, frames, size, sample_steps, task),
                                 "train_s": base_seconds}
    results["identity"] = score(base_model, None, test_seeds, frames, size, sample_steps, task)
    return results


def format_table(results: dict) -> str:
    lines = [f"{'model':<20}{'x0_err':>10}{'ref_use':>10}{'px_err':>10}{'edge_corr':>10}{'train_s':>10}", "-" * 70]
    for name, r in results.items():
        lines.append(f"{name:<20}{r['x0_err']:>10.4f}{r['ref_use']:>10.4f}{r['px_err']:>10.2f}{r['edge_corr']:>10.3f}"
                     f"{r.get('train_s', ''):>10}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000, help="training steps per attention mode")
    parser.add_argument("--train-clips", type=int, default=32)
    parser.add_argument("--test-clips", type=int, default=3)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--task", choices=TASKS, default="realify", help="copy: target = the render (the IC mechanism alone)")
    parser.add_argument("--base-steps", type=int, default=3000, help="the base model's pretraining steps (shared by the modes)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="c2r-learnability-"))
    try:
        results = run_benchmark(args.steps, args.train_clips, args.test_clips, args.frames, args.size, rank=args.rank, lr=args.lr,
                                base_steps=args.base_steps, task=args.task, workdir=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(format_table(results))
    print(json.dumps({"benchmark": "learnability", "task": args.task, "steps": args.steps, "base_steps": args.base_steps,
                      "train_clips": args.train_clips, "results": results}))


if __name__ == "__main__":
    main()
