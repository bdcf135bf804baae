"""`c2r eval`: score (input, output) video pairs with the paper's automatic metrics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", nargs="+", type=Path, required=True, help="input (rendered) clips")
    parser.add_argument("--outputs", nargs="+", type=Path, required=True, help="realified clips, same order and frame count")
    parser.add_argument("--report", type=Path, default=Path("eval"), help="folder for metrics.csv, metrics.json, comparison videos")
    parser.add_argument("--window", type=int, help="window length the outputs were made with (enables the seam metric)")
    parser.add_argument("--overlap", type=int, default=0, help="window overlap the outputs were made with")
    parser.add_argument("--anchor-every", type=int, default=0,
                        help="the outputs were made anchor-parallel (--chaining anchors) with anchors every N frames: "
                             "seams are that plan's hand-overs")
    parser.add_argument("--dino", default="facebook/dinov2-base", help="DINOv2 folder or hub id (local files only)")
    parser.add_argument("--no-dino", action="store_true", help="skip the DINO structure distance")
    parser.add_argument("--no-video", action="store_true", help="skip the side-by-side comparison videos")
    parser.add_argument("--device", default="cpu")


def pair_names(outputs: list[Path]) -> list[str]:
    """Each output's file stem, with its folder's name in front where stems repeat (datagen's
    clips/<id>/realistic.mp4), so table rows and comparison videos stay apart."""
    stems = [p.stem for p in outputs]
    return [f"{p.parent.name}_{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in outputs]


def run(args: argparse.Namespace) -> int:
    from c2r.client.media import MediaError

    from .clips import read_clip, write_clip
    from .evaluate import evaluate_pair, format_table, side_by_side, summarise, write_report
    from .faces import load_face_model

    if len(args.inputs) != len(args.outputs):
        print(f"c2r eval: {len(args.inputs)} inputs but {len(args.outputs)} outputs; give one output per input, in order",
              file=sys.stderr)
        return 2
    if args.anchor_every and not args.window:
        print("c2r eval: --anchor-every needs --window (the model window the anchor-parallel job used)", file=sys.stderr)
        return 2
    dino = None
    if not args.no_dino:
        from .structure import load_dino

        try:
            dino = load_dino(args.dino, args.device)
        except FileNotFoundError as e:
            print(f"c2r eval: {e}", file=sys.stderr)
            return 2
    face_model, face_reason = load_face_model(device=args.device)
    rows = []
    for src, out, name in zip(args.inputs, args.outputs, pair_names(args.outputs)):
        try:
            inputs, fps = read_clip(src)
            outputs, _ = read_clip(out)
            rows.append(evaluate_pair(name, inputs, outputs, dino, face_model, face_reason, args.window, args.overlap,
                                      args.anchor_every))
        except (MediaError, ValueError) as e:
            print(f"c2r eval: {e}", file=sys.stderr)
            return 2
        if not args.no_video:
            write_clip(args.report / f"{name}_side_by_side.mp4", side_by_side(inputs, outputs), fps)
    rows.append(summarise(rows))
    csv_path, json_path = write_report(rows, args.report)
    print(format_table(rows))
    print(f"\nwrote {csv_path} and {json_path}")
    return 0
