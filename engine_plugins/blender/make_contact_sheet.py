"""Render the README's contact sheet: what the add-on sends and what comes back, side by side.

Headless Blender cannot screenshot its panel, so the sheet shows the data instead. Rows, top
to bottom: the coarse Cycles render (as sent: 8-bit, through the scene's view transform), its Z pass (inverse depth, near = bright, sky = black),
its Normal pass in camera space ((n + 1) / 2 as RGB), and the realified frame. Columns are
frames of the demo scene (moving objects, moving camera).

    python engine_plugins/blender/make_contact_sheet.py [--model tiny] [--out docs/contact_sheet.png]

It starts its own daemon on a free 127.0.0.1 port with the given model and stops it after.
With `tiny` (random weights) the bottom row is noise-like: that row shows plumbing, not quality.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
COLUMNS = (1, 3, 5, 7, 9)
GAP = 2


def depth_tile(depth):
    inverse = np.where(np.isfinite(depth), 1.0 / np.maximum(depth, 1e-6), 0.0)
    scale = inverse.max() or 1.0
    grey = np.round(inverse / scale * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def normals_tile(normals):
    shown = np.round((normals.astype(np.float32) + 1.0) * 127.5).astype(np.uint8)
    shown[np.all(normals == 0, axis=-1)] = 0
    return shown


def sheet(rows):
    """A grid of equally sized RGB tiles with a white gap between them."""
    height, width, _ = rows[0][0].shape
    out = np.full((len(rows) * (height + GAP) - GAP, len(rows[0]) * (width + GAP) - GAP, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            out[r * (height + GAP) : r * (height + GAP) + height, c * (width + GAP) : c * (width + GAP) + width] = tile
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--out", type=Path, default=HERE / "docs" / "contact_sheet.png")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=96)
    args = parser.parse_args(argv)

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="c2r-blender-user-"))
    import bpy
    from c2r.client.launcher import start_daemon

    sys.path.insert(0, str(HERE))
    import demo_scene

    work = Path(tempfile.mkdtemp(prefix="c2r-contact-sheet-"))
    (work / "repo").mkdir()
    (work / "repo" / "coarse2real").symlink_to(HERE / "coarse2real", target_is_directory=True)
    bpy.ops.preferences.extension_repo_add(name="c2r-sheet", type="LOCAL", custom_directory=str(work / "repo"), use_custom_directory=True)
    repo = next(r.module for r in bpy.context.preferences.extensions.repos if r.directory == str(work / "repo"))
    name = f"bl_ext.{repo}.coarse2real"
    bpy.ops.preferences.addon_enable(module=name)
    job, passes = (sys.modules[f"{name}.{part}"] for part in ("job", "passes"))

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    daemon = start_daemon(address, model=args.model, extra_args=(
        "--device", "cpu", "--preview-port", "0", "--state-dir", str(work / "state"), "--output-root", str(work / "output"),
    ))  # fmt: skip
    try:
        scene = demo_scene.build_scene(args.width, args.height, frames=max(COLUMNS), samples=16)
        scene.render.filepath = str(work / "render") + os.sep
        settings = scene.coarse2real
        settings.preset, settings.resolution, settings.window, settings.overlap = "preview", "native", 9, 1
        prefs = bpy.context.preferences.addons[name].preferences
        prefs.address, prefs.start_daemon = address, False
        bpy.ops.coarse2real.realify_range()
        run = job.ACTIVE
        while run.tick() is not None:
            time.sleep(0.02)
        report = job.status()
        if report.is_error:
            raise SystemExit(report.message)
        capture = passes.PassCapture(scene)
        inputs = [capture.render(frame) for frame in COLUMNS]
        capture.close()
        # An 8-bit PNG's pixels come back as stored (sRGB code values / 255), not linearised.
        realified = [passes.read_image_pixels(str(work / "render" / "realified" / f"{f:04d}.png"))[..., :3] for f in COLUMNS]
    finally:
        daemon.stop()
    rows = [
        [f.color for f in inputs],
        [depth_tile(f.depth) for f in inputs],
        [normals_tile(f.normals) for f in inputs],
        [np.round(r * 255).astype(np.uint8) for r in realified],
    ]
    from c2r.client.png import write_png

    write_png(args.out, sheet(rows))
    print(f"{args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
