"""`c2r train`: train the IC-LoRA (or a C2R-style feature adapter) on a `c2r datagen` folder (multi-GPU: `accelerate launch -m c2r.cli.main train ...`)."""

from __future__ import annotations

import argparse
import ast
import logging
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings over the paper defaults (models/research/realmaster.toml)")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder written by `c2r datagen`")
    parser.add_argument("--out", "-o", type=Path, required=True, help="run folder: cache, checkpoints, loss.csv, lora/")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set rank=16 --set reference=['edges']")
    parser.add_argument("--resume", metavar="CHECKPOINT", help="'latest' or a checkpoints/step_XXXXXXX folder")


def parse_overrides(items: list[str]) -> dict:
    """KEY=VALUE pairs; values are Python literals when they parse as one, else strings."""
    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: write KEY=VALUE, for example --set rank=16")
        try:
            overrides[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            overrides[key.strip()] = raw
    return overrides


def run(args: argparse.Namespace) -> int:
    from .train import load_config, run_training

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    config = load_config(args.config, parse_overrides(args.set))
    result = run_training(config, args.data, args.out, resume=args.resume)
    if config.is_adapter:
        print(f"Feature adapter written to {result} (released layout, c2r-dino-adapter.safetensors). On the tiny-trained "
              f"base: c2r realify --model tiny-trained-c2r --model-path {result.resolve()}")
        return 0
    print(f"LoRA written to {result}. Serve it: c2r serve --model {config.model} --lora {result.resolve()} "
          "(or copy the folder into the daemon's LoRA folder and pick it with c2r realify --lora NAME)")
    return 0
