"""Render the shipped coarse example clip: flat-shaded shapes moving over a floor.

A tiny numpy ray caster (no engine needed) so anyone can regenerate the files exactly:

    python examples/make_example.py            # writes coarse_cube.mp4 + coarse_cube_depth.npz

Colour is what a coarse engine render looks like (flat shading, no textures); depth is the
view-space distance along the camera axis ("distance" convention, sky = inf), one plane per
frame, saved as float16 under the key "depth".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from c2r.client.media import open_writer

HERE = Path(__file__).resolve().parent
LIGHT = np.array([0.4, 0.8, -0.45]) / np.linalg.norm([0.4, 0.8, -0.45])
SKY_TOP, SKY_HORIZON = np.array([0.35, 0.55, 0.85]), np.array([0.8, 0.85, 0.9])


def camera_rays(height: int, width: int, fov_deg: float = 55.0) -> tuple[np.ndarray, np.ndarray]:
    """Unit ray directions (H, W, 3) from a camera at the origin looking down +z, tilted down a little."""
    f = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    y, x = np.mgrid[0:height, 0:width] + 0.5
    dirs = np.stack([(x - width / 2) / f, -(y - height / 2) / f, np.ones_like(x)], axis=-1)
    tilt = np.radians(-14)
    rot = np.array([[1, 0, 0], [0, np.cos(tilt), np.sin(tilt)], [0, -np.sin(tilt), np.cos(tilt)]])
    dirs = dirs @ rot.T
    forward = rot @ np.array([0.0, 0.0, 1.0])
    return dirs / np.linalg.norm(dirs, axis=-1, keepdims=True), forward


def hit_floor(dirs, origin, level=-1.0):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (level - origin[1]) / dirs[..., 1]
    t = np.where(t > 0, t, np.inf)
    normal = np.broadcast_to(np.array([0.0, 1.0, 0.0]), dirs.shape)
    return t, normal


def hit_sphere(dirs, origin, center, radius):
    oc = origin - center
    b = dirs @ oc
    disc = b * b - (oc @ oc - radius * radius)
    with np.errstate(invalid="ignore"):
        t = -b - np.sqrt(disc)
    t = np.where((disc > 0) & (t > 0), t, np.inf)
    points = origin + dirs * np.where(np.isfinite(t), t, 0)[..., None]
    return t, (points - center) / radius


def hit_box(dirs, origin, center, half, angle):
    """A box of half-size ``half`` rotated by ``angle`` about y: slab test in its own frame."""
    c, s = np.cos(angle), np.sin(angle)
    to_local = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
    o = to_local @ (origin - center)
    d = dirs @ to_local.T
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-half - o) / d, (half - o) / d
    t_near = np.minimum(t1, t2)
    enter = np.nanmax(t_near, axis=-1)
    leave = np.nanmin(np.maximum(t1, t2), axis=-1)
    t = np.where((enter < leave) & (enter > 0), enter, np.inf)
    axis = np.nanargmax(t_near, axis=-1)
    local_n = np.zeros(dirs.shape)
    np.put_along_axis(local_n, axis[..., None], -np.sign(np.take_along_axis(d, axis[..., None], -1)), -1)
    return t, local_n @ to_local  # back to world space (to_local is orthonormal)


def render_frame(dirs, forward, phase: float) -> tuple[np.ndarray, np.ndarray]:
    origin = np.zeros(3)
    objects = [
        (hit_floor(dirs, origin), np.array([0.55, 0.5, 0.45])),
        (hit_box(dirs, origin, np.array([-0.9 + 0.6 * np.sin(phase), -0.45, 4.2]), 0.55, phase * 1.5), np.array([0.8, 0.25, 0.2])),
        (hit_sphere(dirs, origin, np.array([1.1, -0.55 + 0.25 * abs(np.sin(phase * 2)), 3.6]), 0.45), np.array([0.2, 0.45, 0.8])),
    ]
    t = np.full(dirs.shape[:2], np.inf)
    image = SKY_HORIZON + (SKY_TOP - SKY_HORIZON) * np.clip(dirs[..., 1:2] * 3, 0, 1)
    for (hit_t, normal), albedo in objects:
        nearer = hit_t < t
        shade = 0.3 + 0.7 * np.clip(normal @ LIGHT, 0, 1)
        image = np.where(nearer[..., None], albedo * shade[..., None], image)
        t = np.where(nearer, hit_t, t)
    depth = t * (dirs @ forward)  # distance along the camera axis; inf stays inf for the sky
    return (np.clip(image, 0, 1) ** (1 / 2.2) * 255).round().astype(np.uint8), depth.astype(np.float32)


def make_example(out_dir: Path, frames: int = 48, width: int = 128, height: int = 96, fps: float = 24.0) -> tuple[Path, Path]:
    dirs, forward = camera_rays(height, width)
    video, depth_path = out_dir / "coarse_cube.mp4", out_dir / "coarse_cube_depth.npz"
    writer = open_writer(video, fps)
    depths = []
    for i in range(frames):
        color, depth = render_frame(dirs, forward, 2 * np.pi * i / frames)
        writer.write(color)
        depths.append(depth)
    writer.close()
    np.savez_compressed(depth_path, depth=np.stack(depths).astype(np.float16))
    return video, depth_path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the two files (default: examples/)")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--fps", type=float, default=24.0)
    args = parser.parse_args()
    for path in make_example(args.out, args.frames, args.width, args.height, args.fps):
        print(f"{path} ({path.stat().st_size / 1024:.0f} KiB)")
