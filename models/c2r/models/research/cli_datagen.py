"""`c2r datagen`: build (rendered, realistic) training pairs in a resumable dataset folder."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path

from c2r.client.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", type=Path, help="rendered clips: videos, image folders, or folders of them")
    parser.add_argument("--real", nargs="*", type=Path, default=[], help="real videos for C2R real-footage pairs")
    parser.add_argument("--out", "-o", type=Path, required=True, help="dataset folder (created; re-running resumes)")
    parser.add_argument("--editor", default="Qwen/Qwen-Image-Edit", help="Qwen-Image-Edit folder or hub id (local only), or 'tiny'")
    parser.add_argument("--propagator", default="wan2.1-vace-14b", help="VACE preset: wan2.1-vace-14b, wan2.1-vace-1.3b, tiny-vace")
    parser.add_argument("--propagator-path", help="local diffusers folder of the VACE model")
    parser.add_argument("--edit-prompt", help="instruction for the keyframe editor")
    parser.add_argument("--prompt", dest="video_prompt", help="prompt for VACE propagation (also stored as the training prompt)")
    parser.add_argument("--edit-steps", type=int)
    parser.add_argument("--edit-size", type=_size, help="HxW the editor works at (default: its own ~1 MP)")
    parser.add_argument("--vace-steps", type=int)
    parser.add_argument("--num-frames", type=int, help="frames per clip, 4k+1 (default 81)")
    parser.add_argument("--repeat-frames", type=int, help="show each source frame N times (the paper: 2, 8 -> 16 fps)")
    parser.add_argument("--resolution", choices=("480p", "720p", "native"))
    parser.add_argument("--identity-threshold", type=float, help="min ArcFace similarity to keep a pair (default 0.4)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cuda or cpu")
    parser.add_argument("--dtype", choices=("bfloat16", "float16", "float32"))


def _size(text: str) -> tuple[int, int]:
    height, sep, width = text.lower().partition("x")
    if not sep or not height.isdigit() or not width.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: write the size as HEIGHTxWIDTH, e.g. 480x832")
    return int(height), int(width)


def expand(paths: list[Path]) -> list[Path]:
    """A folder of clips becomes its videos and image-sequence subfolders; anything else is kept."""
    out = []
    for path in paths:
        if path.is_dir() and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES or (p.is_dir() and not p.name.endswith("_depth")))
        else:
            out.append(path)
    return out


def run(args: argparse.Namespace) -> int:
    from .datagen import DatagenConfig, run_datagen

    import torch

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.dtype is None:
        args.dtype = "bfloat16" if args.device.startswith("cuda") else "float32"
    overrides = {f.name: getattr(args, f.name) for f in fields(DatagenConfig) if getattr(args, f.name, None) is not None}
    config = DatagenConfig(**overrides)
    sources = [(p, "anchor") for p in expand(args.inputs)] + [(p, "real") for p in expand(args.real)]
    if not sources:
        print("c2r datagen: give rendered clips (positional) and/or --real videos", file=sys.stderr)
        return 2
    summary = run_datagen(sources, args.out, config)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))
    return 0 if summary["failed"] == 0 else 1
