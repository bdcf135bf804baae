"""Command-line options shared by `c2r realify`, `c2r jobs submit`, `c2r info` and `c2r preview`."""

from __future__ import annotations

import argparse
import os

from .transport import DEFAULT_ADDRESS


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=os.environ.get("C2R_ADDRESS", DEFAULT_ADDRESS),
                        help=f"daemon HOST:PORT (default: $C2R_ADDRESS or {DEFAULT_ADDRESS})")
    parser.add_argument("--token", default=os.environ.get("C2R_TOKEN"),
                        help="bearer token of a daemon started with --token (default: $C2R_TOKEN)")


def add_realify_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", default="", help="what the realistic video shows (default: the daemon's)")
    parser.add_argument("--negative-prompt", default="", help="what to avoid (default: the daemon's)")
    parser.add_argument("--quality", choices=("preview", "final"), default="final",
                        help="preset: 'preview' is fast (few steps, 480p), 'final' is full quality (default)")
    parser.add_argument("--model", default="", help="backbone name, e.g. tiny or wan2.2-t2v-a14b (default: the daemon's)")
    parser.add_argument("--lora", default="", help="LoRA name in the daemon's LoRA folder (default: the model's)")
    parser.add_argument("--seed", type=int, help="random seed (default: the daemon's)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: from --quality)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale; <= 1 turns it off")
    parser.add_argument("--strength", type=float, help="(0, 1]: 1 starts from noise, lower keeps more of the input")
    parser.add_argument("--window", type=int, help="frames per model window, 4k+1 (default 81)")
    parser.add_argument("--overlap", type=int, help="frames shared by consecutive windows, 0 or 4j+1")
    parser.add_argument("--resolution", default="", help="model grid: 480p, 720p or native (default: from --quality)")


def realify_options(args: argparse.Namespace) -> dict:
    """The parsed options as keyword arguments of Client.realify."""
    return {
        "prompt": args.prompt, "negative_prompt": args.negative_prompt, "quality": args.quality, "model": args.model,
        "lora": args.lora, "seed": args.seed, "steps": args.steps, "guidance": args.guidance, "strength": args.strength,
        "window": args.window, "overlap": args.overlap, "resolution": args.resolution,
    }  # fmt: skip
