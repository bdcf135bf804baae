"""The synthetic sim-to-real testbed, measured: trained tiny models vs baselines, with `c2r eval`'s metrics.

SYNTHETIC TESTBED, CPU, TINY MODELS: the figures describe how the designs behave on this
numpy-rendered task (``c2r.models.research.testbed``), not on real footage.

Training (``c2r.models.research.testbed_train``): the Wan VAE (``AutoencoderKLWan``, 4x
spatial) on coarse and "real" clips; a base ``WanTransformer3DModel`` pretrained to denoise
the "real" clips; then IC-LoRAs in ``full`` and ``causal-ref`` attention with `c2r train`'s
Trainer on (coarse, real) pairs. ``--mode quick`` (the default) takes the VAE and base from
the committed ``tiny-trained`` preset and trains only the two LoRAs, briefly; ``--mode full``
trains every stage from scratch with the full budget (about 30 CPU-minutes or less per
model) and scores 250-frame sequences.

Scoring: held-out sequences (other seeds than training) are realified window by window
(17-frame windows, 5 frames of overlap); "pinned" is the default stitching (each window
continues the previous one's last frames, `Backend.realify`: prefix latents pinned, then the
pixel hand-over of ``pinning.hand_over``), "no hand-over" pins the prefix only, "independent"
runs the same windows without the prefix. Columns:

  psnr / err   PSNR (dB) and mean absolute error (0-255) of the output against the "real" target
  struct_tgt   `c2r eval`'s structure distance (patch self-similarity) between output and target
  struct_in    the same between output and the coarse input (what `c2r eval` reports)
  people       identity stand-in: mean absolute error on the person-like figures' pixels
               against the target (ArcFace needs faces and insightface; these figures have neither)
  flicker      `c2r eval`'s temporal flickering (1 = still); smooth: motion smoothness
  seam / inner mean frame change at window hand-overs / inside windows (input's own change
               subtracted); ratio = seam / inner (target: <= 1.1 with the default stitching)
  chunk / r_chunk  mean frame change where a window's VAE decode starts a new 4-frame latent chunk
               inside the window, and seam / that: the seams sit on chunk starts, where the tiny
               VAE's own decode steps too ("vae ceiling" shows the codec alone), so r_chunk
               near 1 says the stitching adds nothing beyond the codec

The structure encoder is a STAND-IN: a 4-layer DINOv2 (transformers' ``Dinov2Model``) with
seeded random weights, since facebook/dinov2-base is not on this machine and nothing is
downloaded; its self-similarity follows patch appearance and layout, not semantics.
Rows "vae ceiling" (the target through the VAE: the best a model can do through that codec)
and "identity" (the coarse input returned) bound the table; "base" is the pretrained
denoiser without a LoRA (it never learned to read the reference). Anchor-parallel chunks
(issue 16): "anchor-parallel" realifies the sequence as anchor clips every 16 frames, then
the chunks between them pinned to both ends; its seams are measured at that plan's own
hand-overs (``temporal.hand_over_frames``), every other row's at the sequential windows'.
"feature adapter": a C2R-style feature adapter (adapter + bridge,
base frozen, `c2r train --set conditioning='feature-adapter'`) over a DINOv3 STAND-IN (random
weights, ``dino.StandinDino``; not DINOv3's features), trained with the LoRAs' steps and schedule
and run by the C2R backend over the same base (one pass per step, pinned stitching).
Last line: one JSON line with every figure; two runs with the same flags give the same figures.

    python benchmarks/bench_testbed.py                      # quick: a few minutes on 2 idle CPU cores
    python benchmarks/bench_testbed.py --mode full          # from scratch (VAE ~25 CPU-min, base ~6, LoRAs ~4 each), 250 frames
    python benchmarks/bench_testbed.py --mode full --save-preset models/c2r/models/tiny_trained

The committed preset was made in three steps: ``train_vae`` for 3000 steps on 9-frame crops
(snapshot saved; the training then had neither the long crops nor the frame-change loss), then
``--mode full --vae-weights VAE.pt --base-steps 4000 --lora-steps 4000 --train-clips 32
--sequence-frames 65 --sequences 2 --save-preset ...``, then ``refine_decoder`` for 1200 steps
written with ``tiny_trained.replace_vae`` (encoder frozen, so the latents the base and LoRA were
trained on are unchanged); its preset.json records each. ``--mode full`` with the current
``train_vae`` (long crops, frame-change loss) was not run to completion on the shared 2-core
machine. Quick mode's LoRAs (300 steps) are a determinism and plumbing check, weaker than the
preset's; the README table is quick mode with ``--lora-steps 2000 --train-clips 32
--sequence-frames 65 --sequences 2``.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from c2r.models.backend import RealifyConfig, WindowRequest
from c2r.models.backends import ICLoRABackend
from c2r.models.pipeline import RealifyPipeline
from c2r.models.research import evaluate
from c2r.models.research.testbed import DEFAULT_SIZE, PROMPT, render_clip, write_dataset
from c2r.models.research.testbed_train import pretrain_base, psnr, round_trip, set_latent_statistics, train_lora, train_vae
from c2r.models.research.testbed_train import train_feature_adapter
from c2r.models import tiny_trained
from c2r.models.windows import plan_windows

WINDOW, OVERLAP = 17, 5
ANCHOR_EVERY = 16  # anchor-parallel rows: an anchor every 16 frames of 17-frame windows (bench_scale's seams)
TRAIN_SEEDS, HELD_OUT_SEEDS = 0, 5000  # training clips are seeds 0.., scored sequences 5000..


@dataclass(frozen=True)
class Budget:
    vae_steps: int
    base_steps: int
    lora_steps: int
    train_clips: int
    sequence_frames: int
    sequences: int
    sample_steps: int


MODES = {
    "quick": Budget(vae_steps=0, base_steps=0, lora_steps=300, train_clips=24, sequence_frames=41, sequences=2, sample_steps=8),
    "full": Budget(vae_steps=4000, base_steps=6000, lora_steps=4000, train_clips=64, sequence_frames=250, sequences=3,
                   sample_steps=8),
}


def standin_dino(seed: int = 0):
    """The structure encoder stand-in: a small DINOv2 with seeded random weights (see the module doc)."""
    from transformers import Dinov2Config, Dinov2Model

    config = Dinov2Config(image_size=64, patch_size=8, hidden_size=96, num_hidden_layers=4, num_attention_heads=4,
                          intermediate_size=192)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Dinov2Model(config).eval()


# ------------------------------------------------------------------------------ training
def trained_components(budget: Budget, seed: int, log, vae_weights: Path | None = None) -> tuple[dict, dict, dict]:
    """(shared components with the base transformer, the base state, training facts).

    ``vae_weights``: a VAE state saved by ``train_vae(snapshot=...)``, used instead of training one."""
    facts: dict = {}
    if budget.vae_steps or vae_weights:
        components = tiny_trained.build_components(seed)
        started = time.perf_counter()
        if vae_weights:
            components["vae"].load_state_dict(torch.load(vae_weights, weights_only=True))
            facts["vae"] = f"loaded from {vae_weights}"
        else:
            components["vae"] = train_vae(list(range(TRAIN_SEEDS, TRAIN_SEEDS + budget.train_clips)), 17, DEFAULT_SIZE,
                                          budget.vae_steps, seed=seed, log=log)[0]
            facts["vae_train_s"] = round(time.perf_counter() - started, 1)
        set_latent_statistics(components["vae"], list(range(TRAIN_SEEDS, TRAIN_SEEDS + 16)), 17, DEFAULT_SIZE)
        started = time.perf_counter()
        pretrain_base(components, list(range(TRAIN_SEEDS, TRAIN_SEEDS + budget.train_clips)), 17, DEFAULT_SIZE,
                      budget.base_steps, seed=seed, log=log)
        facts["base_train_s"] = round(time.perf_counter() - started, 1)
    else:
        components = tiny_trained.load(with_lora=False)
        facts["vae_and_base"] = "committed tiny-trained preset"
    held = [render_clip(HELD_OUT_SEEDS + 100 + k, 17) for k in range(3)]
    facts["vae_psnr_real"] = float(np.mean([psnr(c.real, round_trip(components["vae"], c.real)) for c in held]))
    facts["vae_psnr_coarse"] = float(np.mean([psnr(c.coarse, round_trip(components["vae"], c.coarse)) for c in held]))
    base_state = copy.deepcopy(components["transformer"].state_dict())
    return components, base_state, facts


def with_transformer(components: dict, state: dict) -> dict:
    """The shared components with a fresh transformer holding ``state`` (each LoRA trains its own copy)."""
    from diffusers import WanTransformer3DModel

    transformer = WanTransformer3DModel(**tiny_trained.TRANSFORMER_CONFIG).eval()
    transformer.load_state_dict(state)
    return {**components, "transformer": transformer}


# ------------------------------------------------------------------------------ scoring
def backend_for(components: dict, mode: str) -> ICLoRABackend:
    """The daemon's IC-LoRA backend around in-memory components (its realify is the default stitching)."""
    backend = ICLoRABackend(tiny_trained.PRESET_NAME)
    backend.pipeline = RealifyPipeline(components, attention_mode=mode, max_sequence_length=32)
    return backend


def independent_windows(backend: ICLoRABackend, clip, config: RealifyConfig) -> np.ndarray:
    """The same windows as ``Backend.realify`` but none continues the previous one (no prefix)."""
    out = np.empty(clip.color.shape, np.uint8)
    for w in plan_windows(clip.num_frames, config.window, config.overlap):
        frames = backend.realify_window(WindowRequest(clip.slice(w.start, w.end), config, None, w))
        out[w.emit_start : w.end] = frames[w.prefix_length :]
    return out


def pinned_without_hand_over(backend: ICLoRABackend, clip, config: RealifyConfig) -> np.ndarray:
    """The default stitching with the pipeline's pixel hand-over switched off: prefix pinning alone
    (each window's new frames follow the VAE round trip of the prefix, not the prefix as emitted)."""
    import c2r.models.pipeline as pipeline_module

    kept = pipeline_module.hand_over
    pipeline_module.hand_over = lambda frames, prefix: frames
    try:
        return backend.realify(clip, config)
    finally:
        pipeline_module.hand_over = kept


def anchor_parallel(backend: ICLoRABackend, clip, config: RealifyConfig) -> np.ndarray:
    """The whole sequence anchor-parallel (issue 16's jobs: anchor clips, then chunks pinned to them), in this process."""
    from c2r.models.anchors import realify_anchored

    return realify_anchored(backend.realify_window, clip,
                            RealifyConfig(**{**config.__dict__, "chaining": "anchors", "anchor_every": ANCHOR_EVERY}))


def score(name: str, clip, output: np.ndarray, dino, anchor_every: int = 0) -> dict:
    """One output's figures; seams at the sequential plan's hand-overs, or the anchor plan's with ``anchor_every``."""
    row = evaluate.evaluate_pair(name, clip.coarse, output, dino=dino, window=WINDOW, overlap=OVERLAP,
                                 anchor_every=anchor_every)
    people = clip.figure_mask
    diff = np.abs(output.astype(np.float32) - clip.real.astype(np.float32))
    from c2r.models.research.structure import dino_structure_distance

    return {
        "psnr": psnr(clip.real, output),
        "err": float(diff.mean()),
        "struct_tgt": dino_structure_distance(dino, clip.real, output),
        "struct_in": row["dino_structure"],
        "people": float(diff[people].mean()) if people.any() else float("nan"),
        "flicker": row["temporal_flickering"],
        "smooth": row["motion_smoothness"],
        "seam": row["seam_flicker"],
        "inner": row["inner_flicker"],
        "ratio": row["seam_ratio"],
        "chunk": row["chunk_flicker"],
        "r_chunk": row["seam_ratio_chunk"],
    }


def run_rows(components: dict, base_state: dict, loras: dict, budget: Budget, seed: int, log, samples: dict) -> dict:
    """Every row's mean figures over the held-out sequences; ``samples`` gets each row's output of the first."""
    dino = standin_dino(seed)
    config = RealifyConfig(prompt=PROMPT, steps=budget.sample_steps, guidance=1.0, shift=3.0, window=WINDOW, overlap=OVERLAP,
                           resolution="native", seed=seed)
    variants = {"base (no LoRA)": ("base", config, "pinned")}
    for mode in loras:
        variants[f"IC {mode}"] = (mode, config, "pinned")
    if "full" in loras:
        variants["IC full, independent"] = ("full", config, "independent")
        variants["IC full, no hand-over"] = ("full", config, "no-hand-over")
        variants["IC full, anchor-parallel"] = ("full", config, "anchors")
        variants["IC full, strength 0.6"] = ("full", RealifyConfig(**{**config.__dict__, "strength": 0.6}), "pinned")
        variants["IC full, ref downscale 2"] = ("full", RealifyConfig(**{**config.__dict__, "reference_downscale": 2}), "pinned")
    backends = {"base": backend_for(with_transformer(components, base_state), "full")}
    backends.update({mode: backend_for(lora_components, mode) for mode, lora_components in loras.items()})
    rows: dict[str, list[dict]] = {name: [] for name in ("identity", "vae ceiling", *variants)}
    for k in range(budget.sequences):
        clip = render_clip(HELD_OUT_SEEDS + k, budget.sequence_frames)
        outputs = {"identity": clip.coarse, "vae ceiling": round_trip(components["vae"], clip.real)}
        for name, (key, cfg, stitching) in variants.items():
            backend = backends[key]
            stitch = {"pinned": backend.realify, "independent": partial(independent_windows, backend),
                      "no-hand-over": partial(pinned_without_hand_over, backend),
                      "anchors": partial(anchor_parallel, backend)}[stitching]
            outputs[name] = stitch(clip.gbuffers(), cfg)
        for name, out in outputs.items():
            anchored = name in variants and variants[name][2] == "anchors"
            rows[name].append(score(name, clip, out, dino, ANCHOR_EVERY if anchored else 0))
        if k == 0:
            samples.update(outputs, coarse=clip.coarse, target=clip.real)
        log(f"scored sequence {k + 1}/{budget.sequences}")
    return {name: {col: float(np.nanmean([r[col] for r in values])) for col in values[0]} for name, values in rows.items()}


def run_benchmark(mode: str = "quick", seed: int = 0, workdir: Path | None = None, overrides: dict | None = None,
                  save_preset: Path | None = None, vae_weights: Path | None = None, log=print) -> dict:
    budget = Budget(**{**MODES[mode].__dict__, **(overrides or {}), **({"vae_steps": 0} if vae_weights else {})})
    workdir = Path(workdir or tempfile.mkdtemp(prefix="c2r-testbed-"))
    torch.manual_seed(seed)
    components, base_state, facts = trained_components(budget, seed, log, vae_weights)
    data = write_dataset(workdir / "data", list(range(TRAIN_SEEDS, TRAIN_SEEDS + budget.train_clips)), 17)
    loras, lora_dirs = {}, {}
    for attention in ("full", "causal-ref"):
        started = time.perf_counter()
        trainer = train_lora(with_transformer(components, base_state), attention, data, workdir / f"lora-{attention}",
                             budget.lora_steps, 17, seed=seed)
        facts[f"lora_{attention}_train_s"] = round(time.perf_counter() - started, 1)
        loras[attention], lora_dirs[attention] = trainer.components, workdir / f"lora-{attention}" / "lora"
    adapter = train_adapter_row(components, base_state, data, workdir, budget, seed, facts)
    samples: dict = {}
    results = run_rows(components, base_state, loras, budget, seed, log, samples)
    results.update(run_rows_adapter(adapter, budget, seed, samples))
    if mode == "quick":  # the committed preset, as shipped (its LoRA trained longer than the quick ones)
        results.update(run_rows_preset(budget, seed, samples))
    if save_preset is not None:
        tiny_trained.save(save_preset, with_transformer(components, base_state), lora_dirs["full"],
                          {"trained_by": "benchmarks/bench_testbed.py", "mode": mode, "seed": seed, "budget": budget.__dict__,
                           "facts": facts})
    return {"budget": budget.__dict__, "facts": facts, "results": results, "samples": samples}


def backend_rows(name: str, backend, config: RealifyConfig, budget: Budget, seed: int, samples: dict) -> dict:
    """One row: ``backend``'s default stitching over the held-out sequences (mean figures; the first in ``samples``)."""
    dino = standin_dino(seed)
    rows = []
    for k in range(budget.sequences):
        clip = render_clip(HELD_OUT_SEEDS + k, budget.sequence_frames)
        out = backend.realify(clip.gbuffers(), config)
        rows.append(score(name, clip, out, dino))
        if k == 0:
            samples[name] = out
    return {name: {col: float(np.nanmean([r[col] for r in rows])) for col in rows[0]}}


def run_rows_preset(budget: Budget, seed: int, samples: dict) -> dict:
    backend = ICLoRABackend(tiny_trained.PRESET_NAME)
    backend.load("cpu")
    config = RealifyConfig(prompt=PROMPT, steps=budget.sample_steps, guidance=1.0, shift=3.0, window=WINDOW, overlap=OVERLAP,
                           resolution="native", seed=seed)
    return backend_rows("tiny-trained preset", backend, config, budget, seed, samples)


# ------------------------------------------------------------------------------ the feature adapter (issue 17)
def train_adapter_row(components: dict, base_state: dict, data: Path, workdir: Path, budget: Budget, seed: int, facts: dict):
    """The C2R-style feature adapter on its own copy of the base, with the LoRAs' budget; returns its Trainer."""
    started = time.perf_counter()
    trainer = train_feature_adapter(with_transformer(components, base_state), data, workdir / "adapter", budget.lora_steps, 17,
                                    seed=seed)
    facts["feature_adapter_train_s"] = round(time.perf_counter() - started, 1)
    return trainer


def run_rows_adapter(trainer, budget: Budget, seed: int, samples: dict) -> dict:
    """The "feature adapter" row: the C2R backend over the trained adapter's pipeline, on the held-out sequences."""
    from c2r.models.coarse_to_real.backend import C2RBackend

    backend = C2RBackend(tiny_trained.C2R_PRESET_NAME)
    backend.pipeline = trainer.pipeline
    config = RealifyConfig(prompt=PROMPT, steps=budget.sample_steps, guidance=1.0, guidance_mode="cfg", shift=3.0,
                           window=WINDOW, overlap=OVERLAP, resolution="native", seed=seed)
    return backend_rows("feature adapter", backend, config, budget, seed, samples)


COLUMNS = (("psnr", 7, 2), ("err", 7, 2), ("struct_tgt", 11, 4), ("struct_in", 10, 4), ("people", 8, 2), ("flicker", 8, 4),
           ("smooth", 8, 4), ("seam", 7, 2), ("inner", 7, 2), ("ratio", 7, 2),
           ("chunk", 7, 2), ("r_chunk", 8, 2))


def format_table(results: dict) -> str:
    header = f"{'model':<26}" + "".join(f"{c:>{w}}" for c, w, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        lines.append(f"{name:<26}" + "".join(f"{r[c]:>{w}.{p}f}" for c, w, p in COLUMNS))
    return "\n".join(lines)


SHEET_ROWS = ("coarse", "target", "base (no LoRA)", "IC full", "IC causal-ref", "IC full, strength 0.6", "tiny-trained preset",
              "feature adapter")


def contact_sheet(samples: dict, frames: list[int], scale: int = 3) -> np.ndarray:
    """One labelled row per model (coarse input, target, outputs), ``frames`` across, upscaled ``scale``x."""
    from PIL import Image, ImageDraw

    label_width, gap = 150, 2
    rows = []
    for name in (n for n in SHEET_ROWS if n in samples):
        tiles = [np.kron(samples[name][t], np.ones((scale, scale, 1), np.uint8)) for t in frames]
        strip = np.concatenate([np.pad(tile, ((0, 0), (0, gap), (0, 0))) for tile in tiles], axis=1)
        label = Image.new("RGB", (label_width, strip.shape[0]), (20, 20, 20))
        ImageDraw.Draw(label).text((6, strip.shape[0] // 2 - 6), name, fill=(235, 235, 235))
        rows.append(np.pad(np.concatenate([np.asarray(label), strip], axis=1), ((0, gap), (0, 0), (0, 0))))
    title = Image.new("RGB", (rows[0].shape[1], 18), (20, 20, 20))
    ImageDraw.Draw(title).text((6, 3), f"SYNTHETIC TESTBED (numpy renders, not real footage) - held-out frames {frames}",
                               fill=(255, 210, 120))
    return np.concatenate([np.asarray(title), *rows], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="quick")
    parser.add_argument("--seed", type=int, default=0)
    for field in Budget.__dataclass_fields__:
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, help=f"override the mode's {field}")
    parser.add_argument("--save-preset", type=Path, help="write the trained VAE, base and full-attention LoRA as the tiny-trained preset here")
    parser.add_argument("--vae-weights", type=Path, help="start from this trained VAE state (train_vae's snapshot) instead of training one")
    parser.add_argument("--contact-sheet", type=Path, help="write a PNG of coarse, target and each model's output for a few frames")
    parser.add_argument("--save-adapter", type=Path, help="copy the trained feature adapter folder here (tiny-trained-c2r's --model-path)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared 2-core machine a VAE step took 0.25 s with 1 thread "
                             "and 1.7-12 s with 2, the tiny ops' thread hand-offs waiting on other processes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {f: getattr(args, f) for f in Budget.__dataclass_fields__ if getattr(args, f) is not None}
    workdir = Path(tempfile.mkdtemp(prefix="c2r-testbed-"))
    try:
        report = run_benchmark(args.mode, args.seed, workdir, overrides, args.save_preset, args.vae_weights,
                               log=lambda line: print(line, flush=True))
        if args.save_adapter:
            shutil.copytree(workdir / "adapter" / "adapter", args.save_adapter, dirs_exist_ok=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    samples = report.pop("samples")
    if args.contact_sheet:
        from c2r.client.png import write_png

        count = len(samples["coarse"])
        write_png(args.contact_sheet, contact_sheet(samples, [round(f * (count - 1)) for f in (0.1, 0.4, 0.7, 1.0)]))
    print("SYNTHETIC TESTBED (numpy renders), CPU, tiny models; structure encoder = random-weight DINOv2 stand-in")
    print(format_table(report["results"]))
    print(json.dumps({"benchmark": "testbed", "mode": args.mode, "seed": args.seed, **report}))


if __name__ == "__main__":
    main()
