"""`c2r plan`: will this model run on my card? The memory planner's answer, per component.

Imports no torch (it is the planner alone), so the Blender and Unreal helpers can call it as a
subprocess. Output: a table, then one last line of JSON
``{"fits", "gpus_per_window", "levers", "offload", "planned_peak_gib", "seconds_per_window", "windows"}``
(seconds_per_window: the denoise estimate of ``memory_plan.window_seconds``, null for an unknown card); exit 1 when nothing
fits, with the reason and the setting to lower on stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(gib|gb|g)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """"24GB", "24 GiB", "24" (GiB) -> bytes. A card's "24 GB" is 24 GiB as tools report it."""
    match = SIZE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"--gpu-memory {text!r}: give the card's memory, e.g. 24GB, 80GiB or 24")
    return int(float(match.group(1)) * 2**30)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .backend import QUALITY_PRESETS
    from .grid import RESOLUTIONS

    p.add_argument("--model", required=True, help="preset name (see `c2r models list`)")
    p.add_argument("--gpu-memory", required=True, type=parse_size, metavar="SIZE", help="the card's memory, e.g. 24GB")
    p.add_argument("--gpu-name", default="NVIDIA GPU", help="the card's name, for the attention kernel (e.g. 'NVIDIA H100')")
    p.add_argument("--resolution", choices=RESOLUTIONS, help="default: the quality preset's")
    p.add_argument("--frames", type=int, default=81, help="frames per window (4k+1, default 81)")
    p.add_argument("--width", type=int, default=1920, help="engine frame width (aspect ratio; default 1920)")
    p.add_argument("--height", type=int, default=1080, help="engine frame height (default 1080)")
    p.add_argument("--quality", choices=sorted(QUALITY_PRESETS), default="final")
    p.add_argument("--gpus-per-window", type=int, default=1, metavar="N",
                   help="GPUs one window runs over (c2r serve --gpus-per-window; sequence parallel, no offload)")
    p.add_argument("--sequence", type=int, default=0, metavar="FRAMES",
                   help="frames in the whole sequence, to estimate its windows and time (default: one window)")
    p.add_argument("--lora", metavar="NAME", help="a trained IC-LoRA (a name in --lora-dir, or a folder): its attention "
                                                  "mode and reference conditions are planned")
    p.add_argument("--lora-dir", default=str(Path.home() / ".cache" / "coarse2real" / "loras"),
                   help="the daemon's LoRA folder (c2r serve --lora-dir; default ~/.cache/coarse2real/loras)")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .backend import RealifyConfig, apply_quality
    from .levers import Levers, fastest_attention
    from .memory_plan import choose_plan, describe, plan_table
    from .windows import plan_windows
    from .lora import read_lora_info
    from .registry import get_preset
    from .windows import validate_window

    try:
        preset = get_preset(args.model)
        config = apply_quality(RealifyConfig(), args.quality)
        if args.resolution:
            config = replace(config, resolution=args.resolution)
        validate_window(args.frames, 0)
        if args.gpus_per_window < 1:
            raise ValueError(f"--gpus-per-window {args.gpus_per_window}: use 1 or more")
        config = replace(config, window=args.frames, overlap=0)
        mode = None
        if args.lora:
            info = read_lora_info(lora_folder(args.lora, args.lora_dir))
            mode = info.attention_mode
            config = replace(config, reference=info.reference)
    except (ValueError, FileNotFoundError) as err:
        print(f"c2r plan: {err}", file=sys.stderr)
        return 2
    base = Levers(attention_backend=fastest_attention(args.gpu_name), compile_blocks=True, preview_decoder="latent")
    plan = choose_plan(preset, args.gpu_memory, args.frames, args.height, args.width, config, base, attention_mode=mode,
                       ranks=args.gpus_per_window)
    windows = len(plan_windows(args.sequence, args.frames, config.overlap)) if args.sequence else 1
    summary, seconds = describe(plan, config, args.gpu_name, windows)
    group = f" x {args.gpus_per_window} per window" if args.gpus_per_window > 1 else ""
    print(f"{preset.name} on a {args.gpu_memory / 2**30:.0f} GiB card{group}, {args.quality} quality, {config.resolution}, "
          f"{args.frames} frames of {args.width}x{args.height} -> model grid {plan.model_size[0]}x{plan.model_size[1]}")
    print(plan_table(plan))
    print(f"levers: offload {plan.offload}, batched_cfg {plan.levers.batched_cfg}, vae_tiling {plan.levers.vae_tiling}, "
          f"attention {plan.levers.attention_backend or 'torch SDPA'}")
    if plan.fits:
        print(summary)
    else:
        print(f"c2r plan: {summary[0].lower()}{summary[1:]}", file=sys.stderr)
    print(json.dumps({**plan.as_json(), "seconds_per_window": round(seconds, 1) if seconds else None,
                      "windows": windows}, sort_keys=True))
    return 0 if plan.fits else 1


def lora_folder(name: str, lora_dir: str) -> Path:
    """A LoRA given by name (a folder in ``lora_dir``, as sessions name them) or by its own folder path."""
    own = Path(name).expanduser()
    if own.is_dir():
        return own
    inside = Path(lora_dir).expanduser() / name
    if inside.is_dir():
        return inside
    raise FileNotFoundError(f"--lora {name!r}: no such LoRA folder, neither {own} nor {inside}; give a folder written "
                            "by `c2r train`, or its name in --lora-dir")
