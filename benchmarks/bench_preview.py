"""Interactive preview and GPU levers: time to the first preview, seconds per window, each lever on/off.

Runs the real RealifyPipeline (IC-LoRA on a Wan transformer, VAE, sampler) with random
weights, so the figures are costs, not quality. Rows:

* ``preview`` / ``final`` presets, plain (``Levers()``: diffusers defaults, every lever off)
  and with the levers the engine itself would use here (``levers_for(device, model)``):
  time to the first preview image and seconds per window. The final preset's 30 CFG steps
  are extrapolated from ``--lever-steps`` measured ones (per-step time x 30 + the rest of
  the window), and said so.
* each lever alone against plain, on the final preset's CFG at ``--lever-steps`` steps:
  seconds per window, speed-up, and the largest pixel difference from plain (0: exact).
  Step caches decide from how much the model's output changes between steps, so their
  speed-up on random weights is labelled as such: it is not the real model's.
* the x0 preview's decode cost: full VAE vs the fitted linear latent->RGB map.

Timing: every row runs once untimed, then ``--rounds`` interleaved rounds run every row once
each, the order rotated per round (benchmarks/rounds.py); figures are medians with their
min-max, speed-ups the median of per-round ratios. Rows that compile blocks run after all
the others (compiling cannot be undone), their first (compiling) window timed apart.

CPU (default): a mid-size transformer (benchmarks/bench_attention.CPU_CONFIG) and the toy
VAE, 33 frames at 192x192 (the transformer dominates, as it does at real size for final).
``--real-size 1.3b|14b``: Wan2.1 1.3B or one Wan2.2 A14B expert at its real shape, Wan2.1's
real VAE shape, 81 frames at 480x832, bf16, on CUDA (refused without one). Peak memory is
CUDA's allocator peak (absent on CPU). Prints a table and its labels, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np
import torch
from diffusers.models.attention_dispatch import attention_backend

from bench_attention import CPU_CONFIG, REAL_SIZES, TEXT_TOKENS, add_shape_arguments, window_shape
from c2r.models.backend import GBuffers, RealifyConfig, apply_quality
from c2r.models.latent_preview import LatentToRGB
from c2r.models.levers import Levers, apply_to_transformer, apply_to_vae, detect_gpu, fastest_attention, stream_blocks
from c2r.models.memory_plan import levers_for
from c2r.models.pipeline import RealifyPipeline, pad_to_wan_length
from c2r.models.preprocess import prepare_conditions
from c2r.models.registry import PRESETS, _TINY_VAE
from c2r.models.text_encoder import build_tiny_text_encoder
from rounds import cell, interleaved, spread, summarise


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_arguments(parser)
    parser.add_argument("--lever-steps", type=int, default=6, help="denoising steps per lever row (caches act from step 2-3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds (each runs every row once)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of every row first")
    parser.add_argument("--threads", type=int, help="CPU threads (1 gives steadier figures on a shared machine)")
    parser.add_argument("--offload-group", action="store_true",
                        help="stream the transformer's blocks from the CPU (group offload) in every row; compare with a run without")
    parser.add_argument("--skip", nargs="*", default=[], help="lever rows to leave out (e.g. compile_blocks on a CPU without a compiler)")
    return parser.parse_args(argv)


def build_components(args) -> tuple[dict, dict]:
    """Random-weight components on the device, and the run's shape."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    real = args.real_size is not None
    if real and not torch.cuda.is_available():
        raise SystemExit("--real-size needs a CUDA GPU: the real shapes do not run on a CPU in useful time")
    device = "cuda" if real else "cpu"
    dtype = torch.bfloat16 if real else torch.float32
    config = dict(PRESETS[REAL_SIZES[args.real_size]].transformer_config) if real else {**CPU_CONFIG, "text_dim": 32}
    previous = torch.get_default_dtype()
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)  # build straight in bf16: a 14B expert in fp32 would not fit
    try:
        with torch.device(device):
            transformer = WanTransformer3DModel(**config).eval()
    finally:
        torch.set_default_dtype(previous)
    with torch.device(device):
        vae = (AutoencoderKLWan() if real else AutoencoderKLWan(**_TINY_VAE)).eval()
    tokenizer, text_encoder = build_tiny_text_encoder(config["text_dim"])
    frames, height, width = window_shape(args)
    shape = dict(device=device, dtype=str(dtype).removeprefix("torch."), frames=frames, height=height, width=width,
                 layers=config["num_layers"], dim=config["num_attention_heads"] * config["attention_head_dim"],
                 text_tokens=TEXT_TOKENS if real else 64)
    if args.offload_group:
        stream_blocks(transformer.to("cpu"), torch.device(device))
    components = dict(transformer=transformer, vae=vae, tokenizer=tokenizer, text_encoder=text_encoder.to(device))
    return components, {**shape, "offload": "group" if args.offload_group else "none"}


def coarse_clip(shape: dict) -> GBuffers:
    rng = np.random.default_rng(0)
    color = rng.integers(0, 256, (shape["frames"], shape["height"] // 8, shape["width"] // 8, 3), dtype=np.uint8)
    return GBuffers(color.repeat(8, axis=1).repeat(8, axis=2))


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_window(components: dict, levers: Levers, clip: GBuffers, config: RealifyConfig, text_tokens: int) -> dict:
    """One window with ``levers`` applied to the shared components, undone afterwards."""
    pipeline = RealifyPipeline(components, levers=levers, max_sequence_length=text_tokens, device=components["vae"].device)
    transformer, vae = components["transformer"], components["vae"]
    apply_to_vae(vae, levers)
    steps, first_preview = [], []
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    def on_step(step, num_steps, preview):
        sync()
        steps.append(time.perf_counter())
        if preview is not None and not first_preview:
            first_preview.append(time.perf_counter())

    try:
        with attention_backend():  # set_attention_backend also changes diffusers' global default: restore it after
            apply_to_transformer(transformer, levers)
            sync()
            start = time.perf_counter()
            frames = pipeline(clip, config, on_step=on_step)
            sync()
            seconds = time.perf_counter() - start
    finally:
        if transformer.is_cache_enabled:
            transformer.disable_cache()
        transformer.reset_attention_backend()
        vae.disable_tiling()
    step_seconds = float(np.median(np.diff([start, *steps])))
    result = dict(seconds=seconds, step_seconds=step_seconds, steps=config.steps, frames=frames)
    if first_preview:
        result["first_preview_seconds"] = first_preview[0] - start
    if torch.cuda.is_available():
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def extrapolated(run: dict, steps: int) -> float:
    """Window seconds at ``steps`` from a run of fewer: the measured rest + steps x per-step time."""
    return run["seconds"] - run["steps"] * run["step_seconds"] + steps * run["step_seconds"]


def lever_rows(shape: dict) -> dict[str, Levers]:
    rows = {"batched_cfg": Levers(batched_cfg=True), "causal_ref": Levers(causal_ref=True),
            "step_cache=first-block": Levers(step_cache="first-block"), "step_cache=taylorseer": Levers(step_cache="taylorseer"),
            "vae_tiling": Levers(vae_tiling=True)}
    gpu = detect_gpu() if shape["device"] == "cuda" else None
    kernel = fastest_attention(gpu[0]) if gpu else None
    if kernel:
        rows[f"attention_backend={kernel}"] = Levers(attention_backend=kernel)
    if shape["offload"] == "none":  # compiling blocks that stream through offload hooks is not measured
        rows["compile_blocks"] = Levers(compile_blocks=True)  # last: compilation cannot be undone
    return rows


def decode_runs(components: dict, clip: GBuffers, config: RealifyConfig) -> dict:
    """One x0 estimate turned into frames two ways: the full VAE, and the fitted linear map (fit included)."""
    pipeline = RealifyPipeline(components, device=components["vae"].device)
    window = pipeline._prepare_window(clip, config, None, seed=0)
    x0 = window.noise
    video = prepare_conditions(pad_to_wan_length(clip), window.grid, pipeline.vae.device, pipeline.vae.dtype)["color"]

    def timed(fn) -> dict:
        with torch.no_grad():
            sync()
            start = time.perf_counter()
            fn()
            sync()
        return dict(seconds=time.perf_counter() - start)

    def latent_preview():
        window.latent_to_rgb = LatentToRGB.fit(window.references[0], video)
        pipeline._preview(x0, window)

    return {"vae_decode": lambda: timed(lambda: pipeline._to_frames(x0, window)), "latent_preview": lambda: timed(latent_preview)}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    components, shape = build_components(args)
    clip = coarse_clip(shape)
    lever_steps, text = args.lever_steps, shape["text_tokens"]
    resolution = {"resolution": "native"}  # the clip is already at the size to measure
    preview = replace(apply_quality(RealifyConfig(), "preview"), **resolution)
    final = replace(apply_quality(RealifyConfig(), "final"), **resolution, preview_every=0)
    lever_config = replace(final, steps=lever_steps)
    model = REAL_SIZES.get(args.real_size, "tiny")
    chosen = levers_for(shape["device"], model)  # exactly what the engine runs this model with on this device
    labels = dict(device=shape["device"], dtype=shape["dtype"], weights="random: costs, not quality",
                  transformer=f"Wan real shape {args.real_size}" if args.real_size else "mid-size CPU config (bench_attention.CPU_CONFIG)",
                  vae="Wan2.1 VAE shape, random weights" if args.real_size else "toy VAE (registry._TINY_VAE)",
                  chosen=f"levers_for({shape['device']!r}, {model!r}), the engine's own choice",
                  timing=f"{args.warmup} warm-up(s) of every row, then {args.rounds} interleaved rounds; median (min-max)")
    if chosen.offload != shape["offload"]:  # offload belongs to load(); this benchmark shares one resident build
        labels["chosen_not_applied"] = f"offload={chosen.offload} (this run: {shape['offload']}; see --offload-group)"
        chosen = replace(chosen, offload=shape["offload"])
    print(f"bench_preview on {shape['device']} {shape['dtype']}, random weights: {shape['frames']} frames "
          f"{shape['height']}x{shape['width']}, {shape['layers']} layers x {shape['dim']} dim; chosen levers: {chosen}; "
          f"{labels['timing']}", file=sys.stderr)

    # rows: (levers, config). Compiling cannot be undone, so rows that compile run after all others.
    rows = {"plain/preview": (Levers(), preview), "plain/final": (Levers(), lever_config),
            "chosen/preview": (chosen, preview), "chosen/final": (chosen, lever_config)}
    rows.update({f"lever/{name}": (lever, lever_config) for name, lever in lever_rows(shape).items()
                 if name.split("=")[0] not in args.skip})
    frames, first_window = {}, {}

    def run(name: str):
        def once() -> dict:
            levers, config = rows[name]
            result = run_window(components, levers, clip, config, text)
            frames[name] = result.pop("frames")
            return result
        return once

    samples = {}
    with torch.no_grad():
        for compiled in (False, True):
            phase = {name: run(name) for name, (levers, _) in rows.items() if levers.compile_blocks == compiled}
            if compiled and phase:  # the first window of a compiled row compiles: time it apart
                for name, once in phase.items():
                    started = time.perf_counter()
                    once()
                    first_window[name] = time.perf_counter() - started
            samples.update(interleaved(phase, args.rounds, args.warmup) if phase else {})
        decode = interleaved(decode_runs(components, clip, replace(preview, preview_every=1, reference_downscale=1)),
                             args.rounds, args.warmup)

    presets = {}
    for name in ("plain", "chosen"):
        p, f = samples[f"{name}/preview"], samples[f"{name}/final"]
        presets[name] = dict(first_preview_seconds=summarise(p, "first_preview_seconds") if "first_preview_seconds" in p[0] else None,
                             preview_window_seconds=summarise(p, "seconds"),
                             final_window_seconds=spread([extrapolated(r, final.steps) for r in f]),
                             peak_memory_gib=max(r.get("peak_memory_gib", 0) for r in p + f) or None)
    plain = samples["plain/final"]
    levers = {}
    for row in [r for r in samples if r.startswith("lever/")]:
        name, runs = row.removeprefix("lever/"), samples[row]
        levers[name] = dict(seconds=summarise(runs, "seconds"),
                            speedup=spread([b["seconds"] / r["seconds"] for b, r in zip(plain, runs)]),
                            max_pixel_diff=int(np.abs(frames[row].astype(int) - frames["plain/final"]).max()),
                            peak_memory_gib=max(r.get("peak_memory_gib", 0) for r in runs) or None)
        if name.startswith("step_cache"):
            levers[name]["note"] = "random weights: how often the cache skips a step, so this speed-up, is not the real model's"
        if row in first_window:
            levers[name]["first_window_seconds"] = first_window[row]
            levers[name]["note"] = "compiled blocks, measured after every uncompiled row; speed-up vs the same rounds' plain median"
    preview_decode = dict(vae_decode_seconds=summarise(decode["vae_decode"], "seconds"),
                          latent_preview_seconds=summarise(decode["latent_preview"], "seconds"),
                          ratio=spread([v["seconds"] / l["seconds"] for v, l in zip(decode["vae_decode"], decode["latent_preview"])]))

    print(f"{'levers':7} {'1st preview s':>22} {'preview s/win':>22} {'final s/win*':>22} {'peak GiB':>9}")
    for name, p in presets.items():
        print(f"{name:7} {cell(p['first_preview_seconds']):>22} {cell(p['preview_window_seconds']):>22} "
              f"{cell(p['final_window_seconds'], 2):>22} {p['peak_memory_gib'] or float('nan'):9.2f}")
    print(f"* final: {final.steps} CFG steps, extrapolated from {lever_steps} measured (per round)")
    print(f"\n{'lever (final CFG, ' + str(lever_steps) + ' steps)':28} {'s/win':>22} {'speed-up':>19} {'max px diff':>11}")
    print(f"{'plain (Levers())':28} {cell(summarise(plain, 'seconds')):>22} {'1.00':>19} {0:11d}")
    for name, r in levers.items():
        print(f"{name:28} {cell(r['seconds']):>22} {cell(r['speedup'], 2):>19} {r['max_pixel_diff']:11d}"
              + (f"  [{r['note']}]" if "note" in r else ""))
    print(f"\nx0 preview decode: full VAE {cell(preview_decode['vae_decode_seconds'], 4)} s, linear latent map "
          f"{cell(preview_decode['latent_preview_seconds'], 4)} s (ratio {cell(preview_decode['ratio'], 1)})")
    print("labels: " + "; ".join(f"{k}: {v}" for k, v in labels.items()))
    print(json.dumps(dict(benchmark="preview_levers", labels=labels, real_size=args.real_size, **shape, lever_steps=lever_steps,
                          rounds=args.rounds, chosen_levers=str(chosen), presets=presets,
                          plain_seconds=summarise(plain, "seconds"), levers=levers, preview_decode=preview_decode)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
