"""Time one denoising step of the IC-LoRA transformer: ``full`` vs ``causal-ref`` (cached).

A step is what the sampler runs per sigma: with CFG two transformer forwards (conditional
and unconditional). ``full`` runs the joint sequence (noisy + reference tokens) both times;
``causal-ref`` runs only the noisy tokens against the cached reference keys/values, plus a
reference pass once per window (reported apart, and amortised over ``--steps``).

CPU (default): a mid-size random-weight config that takes a few seconds.
``--real-size 1.3b|14b``: Wan's real transformer shapes at 480p, 81 frames, random weights,
bf16 on CUDA; adds peak memory and achieved TFLOP/s from an analytic FLOP count. Runs on
the CPU too if no GPU is present (slowly; use --frames/--height/--width to shrink it).

Prints a table and, last, one JSON line with the figures and the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from c2r.models.iclora import ICLoRAWan
from c2r.models.registry import PRESETS

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
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per mode (after one warm-up)")
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


def time_mode(transformer, inputs, shape, mode: str, branches: int, repeats: int) -> dict:
    model = ICLoRAWan(transformer, mode)
    device = shape["device"]
    t = torch.tensor(700.0)
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        sync(device)
        start = time.perf_counter()
        cache = model.encode_references(inputs["references"]) if mode == "causal-ref" else None
        sync(device)
        reference_seconds = time.perf_counter() - start

        def step():
            for _ in range(branches):
                model(inputs["noisy"], inputs["references"], t, inputs["text"], cache=cache)

        step()  # warm-up
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        sync(device)
        seconds = (time.perf_counter() - start) / repeats
    result = dict(mode=mode, seconds_per_step=seconds, reference_pass_seconds=reference_seconds)
    if device == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    forward, reference = step_flops(shape["config"], shape["tokens"], len(inputs["references"]), mode)
    result["tflops_per_step"] = branches * forward / 1e12
    result["achieved_tflop_s"] = branches * forward / seconds / 1e12
    if cache is not None:
        result["reference_cache_gib"] = cache.nbytes() / 2**30
        del cache
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    transformer, inputs, shape = build(args)
    branches = 1 if args.no_cfg else 2
    results = [time_mode(transformer, inputs, shape, mode, branches, args.repeats) for mode in ("full", "causal-ref")]
    full, causal = results
    amortised = causal["seconds_per_step"] + causal["reference_pass_seconds"] / args.steps

    print(f"IC-LoRA step ({branches} forward(s)/step) on {shape['device']} {shape['dtype']}: "
          f"{shape['frames']} frames {shape['height']}x{shape['width']}, {shape['tokens']} tokens per clip, "
          f"{args.references} reference clip(s), {shape['config']['num_layers']} layers", file=sys.stderr)
    header = f"{'mode':11} {'s/step':>9} {'ref pass s':>10} {'TFLOP/step':>11} {'TFLOP/s':>8} {'peak GiB':>9}"
    print(header)
    for r in results:
        print(f"{r['mode']:11} {r['seconds_per_step']:9.3f} {r['reference_pass_seconds']:10.3f} "
              f"{r['tflops_per_step']:11.3f} {r['achieved_tflop_s']:8.2f} {r.get('peak_memory_gib', float('nan')):9.2f}")
    ratio = full["seconds_per_step"] / causal["seconds_per_step"]
    print(f"causal-ref speed-up per step: {ratio:.2f}x; amortised over {args.steps} steps with the reference pass: "
          f"{full['seconds_per_step'] / amortised:.2f}x")
    print(json.dumps(dict(benchmark="ic_attention_step", real_size=args.real_size, **{k: v for k, v in shape.items() if k != "config"},
                          references=args.references, cfg_branches=branches, full=full, causal_ref=causal,
                          speedup=ratio, speedup_amortised=full["seconds_per_step"] / amortised)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
