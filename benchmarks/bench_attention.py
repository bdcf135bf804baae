"""Time one denoising step of the IC-LoRA transformer: ``full`` vs ``causal-ref`` (cached).

A step is what the sampler runs per sigma: with CFG two transformer forwards (conditional
and unconditional). ``full`` runs the joint sequence (noisy + reference tokens) both times;
``causal-ref`` runs only the noisy tokens against the cached reference keys/values, plus a
reference pass once per window (reported apart, and amortised over ``--steps``).

CPU (default): a mid-size random-weight config that takes a few seconds.
``--real-size 1.3b|14b``: Wan's real transformer shapes at 480p, 81 frames, random weights,
bf16 on CUDA; adds peak memory and achieved TFLOP/s from an analytic FLOP count. Runs on
the CPU too if no GPU is present (slowly; use --frames/--height/--width to shrink it).

Timing: one untimed warm-up of each mode (its reference pass included), then ``--rounds``
interleaved rounds (benchmarks/rounds.py); every figure is the median with its min-max, and
the speed-up is the median of the per-round ratios. Prints a table labelled with what the
figures are (device, dtype, random weights) and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from c2r.models.iclora import ICLoRAWan
from c2r.models.registry import PRESETS
from rounds import cell, interleaved, spread, summarise

TEXT_TOKENS = 512
CPU_CONFIG = dict(num_attention_heads=4, attention_head_dim=32, ffn_dim=512, num_layers=4, text_dim=128, freq_dim=64)
REAL_SIZES = {"1.3b": "wan2.1-t2v-1.3b", "14b": "wan2.2-t2v-a14b"}


def add_shape_arguments(parser: argparse.ArgumentParser) -> None:
    """--real-size and the window shape, shared by the GPU benchmarks."""
    parser.add_argument("--real-size", choices=sorted(REAL_SIZES), help="Wan's real transformer shape (480p, 81 frames)")
    parser.add_argument("--frames", type=int, help="video frames (4k+1); default 33 on CPU, 81 at real size")
    parser.add_argument("--height", type=int, help="pixels; default 192 on CPU, 480 at real size")
    parser.add_argument("--width", type=int, help="pixels; default 192 on CPU, 832 at real size")


def window_shape(args) -> tuple[int, int, int]:
    """(frames, height, width): what was asked, else the CPU or real-size default."""
    real = args.real_size is not None
    return args.frames or (81 if real else 33), args.height or (480 if real else 192), args.width or (832 if real else 192)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_arguments(parser)
    parser.add_argument("--references", type=int, default=1, help="reference clips (colour, + depth/edges)")
    parser.add_argument("--no-cfg", action="store_true", help="one forward per step instead of two")
    parser.add_argument("--steps", type=int, default=30, help="steps to amortise the reference pass over")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (each times every mode once)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of every mode first")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's); 1 gives steadier figures on a shared machine")
    return parser.parse_args(argv)


def build(args):
    real = args.real_size is not None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if real and device == "cuda" else torch.float32
    config = PRESETS[REAL_SIZES[args.real_size]].transformer_config if real else CPU_CONFIG
    frames, height, width = window_shape(args)
    from diffusers import WanTransformer3DModel

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build straight in the target dtype: a 14B model in fp32 would not fit
    try:
        with torch.device(device):
            transformer = WanTransformer3DModel(**config).eval()
    finally:
        torch.set_default_dtype(previous)
    latent = (1, 16, (frames - 1) // 4 + 1, height // 8, width // 8)
    gen = torch.Generator().manual_seed(0)
    inputs = dict(
        noisy=torch.randn(latent, generator=gen).to(device, dtype),
        references=[torch.randn(latent, generator=gen).to(device, dtype) for _ in range(args.references)],
        text=torch.randn(1, TEXT_TOKENS, config["text_dim"], generator=gen).to(device, dtype),
    )
    shape = dict(device=device, dtype=str(dtype).removeprefix("torch."), frames=frames, height=height, width=width,
                 tokens=latent[2] * (latent[3] // 2) * (latent[4] // 2), config=config)
    return transformer, inputs, shape


def step_flops(config: dict, tokens: int, references: int, mode: str) -> tuple[float, float]:
    """(FLOPs of one forward, FLOPs of the reference pass) from the layer shapes (matmuls only)."""
    d, f, layers = config["num_attention_heads"] * config["attention_head_dim"], config["ffn_dim"], config["num_layers"]

    def layer(queries: int, keys: int, cross: bool) -> float:
        projections = 8 * queries * d * d  # q, k, v, out
        attention = 4 * queries * keys * d
        ffn = 4 * queries * d * f
        text = (4 * queries * d * d + 4 * TEXT_TOKENS * d * d + 4 * queries * TEXT_TOKENS * d) if cross else 0
        return projections + attention + ffn + text

    total = tokens * (1 + references)
    if mode == "full":
        return layers * layer(total, total, True), 0.0
    reference_tokens = tokens * references
    return layers * layer(tokens, total, True), layers * layer(reference_tokens, reference_tokens, False)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def mode_runs(transformer, inputs, shape, branches: int) -> dict:
    """One call per mode, each timing what that mode costs per window: ``full`` one step;
    ``causal-ref`` its reference pass (once per window) and then one step against the cache."""
    device, t = shape["device"], torch.tensor(700.0)
    models = {mode: ICLoRAWan(transformer, mode) for mode in ("full", "causal-ref")}

    def timed(fn) -> tuple[float, object]:
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        return time.perf_counter() - start, out

    def step(model, cache=None):
        for _ in range(branches):
            model(inputs["noisy"], inputs["references"], t, inputs["text"], cache=cache)

    def measured(mode: str) -> dict:
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        result = {}
        with torch.no_grad():
            cache = None
            if mode == "causal-ref":
                result["reference_pass_seconds"], cache = timed(lambda: models[mode].encode_references(inputs["references"]))
                result["reference_cache_gib"] = cache.nbytes() / 2**30
            result["seconds_per_step"], _ = timed(lambda: step(models[mode], cache))
        if device == "cuda":
            result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        return result

    return {mode: (lambda mode=mode: measured(mode)) for mode in models}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    transformer, inputs, shape = build(args)
    branches = 1 if args.no_cfg else 2
    samples = interleaved(mode_runs(transformer, inputs, shape, branches), args.rounds, args.warmup)
    labels = dict(device=shape["device"], dtype=shape["dtype"], weights="random (timing only)",
                  transformer="Wan real shape " + args.real_size if args.real_size else "mid-size CPU config (bench_attention.CPU_CONFIG)",
                  timing=f"{args.warmup} warm-up(s), then {args.rounds} interleaved rounds; median (min-max)")
    results = {}
    for mode, runs in samples.items():
        forward, _ = step_flops(shape["config"], shape["tokens"], len(inputs["references"]), mode)
        step = summarise(runs, "seconds_per_step")
        results[mode] = dict(seconds_per_step=step, tflops_per_step=branches * forward / 1e12,
                             achieved_tflop_s=branches * forward / step["median"] / 1e12)
        for key in ("reference_pass_seconds", "reference_cache_gib", "peak_memory_gib"):
            if key in runs[0]:
                results[mode][key] = summarise(runs, key)
    # per round: full's step over causal-ref's, and over causal-ref's step + its reference pass spread over --steps
    full_runs, causal_runs = samples["full"], samples["causal-ref"]
    speedup = spread([f["seconds_per_step"] / c["seconds_per_step"] for f, c in zip(full_runs, causal_runs)])
    amortised = spread([f["seconds_per_step"] / (c["seconds_per_step"] + c["reference_pass_seconds"] / args.steps)
                        for f, c in zip(full_runs, causal_runs)])

    print(f"IC-LoRA step ({branches} forward(s)/step) on {shape['device']} {shape['dtype']}, random weights: "
          f"{shape['frames']} frames {shape['height']}x{shape['width']}, {shape['tokens']} tokens per clip, "
          f"{args.references} reference clip(s), {shape['config']['num_layers']} layers; {labels['timing']}", file=sys.stderr)
    print(f"{'mode':11} {'s/step':>22} {'ref pass s (once/window)':>25} {'TFLOP/step':>11} {'TFLOP/s':>8} {'peak GiB':>9}")
    for mode, r in results.items():
        peak = r.get("peak_memory_gib")
        print(f"{mode:11} {cell(r['seconds_per_step']):>22} {cell(r.get('reference_pass_seconds')):>25} "
              f"{r['tflops_per_step']:11.3f} {r['achieved_tflop_s']:8.2f} {peak['median'] if peak else float('nan'):9.2f}")
    print(f"causal-ref speed-up per step: {cell(speedup, 2)}x; amortised over {args.steps} steps with the reference pass: "
          f"{cell(amortised, 2)}x (median of per-round ratios, min-max)")
    print(json.dumps(dict(benchmark="ic_attention_step", labels=labels, real_size=args.real_size,
                          **{k: v for k, v in shape.items() if k != "config"}, references=args.references,
                          cfg_branches=branches, full=results["full"], causal_ref=results["causal-ref"],
                          speedup=speedup, speedup_amortised=amortised)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
