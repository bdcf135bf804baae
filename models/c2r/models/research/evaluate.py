"""The paper's automatic metrics on (input, output) video pairs, as one table.

One row per pair: DINO structure distance (lower = structure kept), ArcFace identity (or
"skipped"), VBench-style temporal flickering and motion smoothness of the output, the flicker
the output adds over the input, and - given the window plan the output was made with - the
frame change at window hand-overs against the change inside windows.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from . import temporal
from .faces import identity_similarity

COLUMNS = (
    "name",
    "frames",
    "dino_structure",
    "arcface",
    "temporal_flickering",
    "motion_smoothness",
    "flicker_excess",
    "seam_flicker",
    "inner_flicker",
    "seam_ratio",
    "chunk_flicker",
    "seam_ratio_chunk",
)


def evaluate_pair(
    name: str,
    inputs: np.ndarray,
    outputs: np.ndarray,
    dino=None,
    face_model=None,
    face_reason: str = "",
    window: int | None = None,
    overlap: int = 0,
    anchor_every: int = 0,
) -> dict:
    """All metrics for one pair of aligned (T, H, W, 3) uint8 clips."""
    if inputs.shape != outputs.shape:
        raise ValueError(
            f"{name}: input {inputs.shape} and output {outputs.shape} differ; realify returns one frame per input "
            "frame at the input size - pass the matching input for each output"
        )
    from .structure import dino_structure_distance

    identity = identity_similarity(face_model, inputs, outputs, reason=face_reason)
    row = {
        "name": name,
        "frames": int(len(outputs)),
        "dino_structure": dino_structure_distance(dino, inputs, outputs) if dino is not None else None,
        "arcface": identity.mean if identity.status == "scored" else identity.status,
        "arcface_detail": identity.as_dict(),
        "temporal_flickering": temporal.temporal_flickering(outputs),
        "motion_smoothness": temporal.motion_smoothness(outputs),
        "flicker_excess": temporal.flicker_excess(outputs, inputs),
    }
    if window:
        row.update(temporal.seam_flicker(outputs, window, overlap, reference=inputs, anchor_every=anchor_every))
    return row


def summarise(rows: list[dict]) -> dict:
    """Mean of every numeric column over the rows (the paper's table reports means)."""
    summary: dict = {"name": "mean", "frames": sum(r["frames"] for r in rows)}
    for col in COLUMNS[2:]:
        values = [r.get(col) for r in rows]
        numbers = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
        summary[col] = float(np.mean(numbers)) if numbers else next((v for v in values if isinstance(v, str)), None)
    return summary


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def format_table(rows: list[dict]) -> str:
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    cells = [[c for c in cols]] + [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]
    lines = ["  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(line, widths))) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_report(rows: list[dict], out_dir: Path) -> tuple[Path, Path]:
    """metrics.csv (one line per pair plus the mean) and metrics.json (everything, with details)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / "metrics.csv", out_dir / "metrics.json"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    json_path.write_text(json.dumps({"pairs": rows[:-1], "mean": rows[-1]}, indent=2, default=float))
    return csv_path, json_path


def side_by_side(inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """input | output, with a 2-pixel dark divider, for a comparison video."""
    divider = np.full((*inputs.shape[:2], 2, 3), 16, np.uint8)
    return np.concatenate([inputs, divider, outputs], axis=2)
