"""A synthetic sim-to-real testbed: the same scene and motion rendered twice, coarse and "real".

Deterministic and seedable, numpy only, nothing downloaded. A tiny ray caster renders one
scene (a floor, low-poly boxes and spheres that move, person-like figures that walk into the
frame mid-sequence, a camera that dollies and pans) in two styles:

* **coarse**, as a game engine's quick render: flat albedo, Lambert on faceted (low-poly)
  normals, one hard shadow ray, a flat sky; with its G-buffers (view-space depth, camera-space
  normals of the same facets, edges from depth jumps and object boundaries);
* **real**, the same geometry and motion as a camera would see it: procedural textures in
  object/world space (tiles, wood, marble, fabric), smooth normals, sky light plus a warm sun
  with soft shadows (several jittered shadow rays), a little specular, aerial haze, a filmic
  tone curve, warm grading and vignette, and per-frame sensor noise and grain.

The pair is a fixed, learnable function of the scene, so a model that reads the coarse render
can learn it; the grain is the only part that cannot be predicted (about 1.5/255 per pixel).
This is a stand-in for real footage, and figures measured on it are claims about this testbed only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from c2r.models.backend import GBuffers, RealifyConfig

DEFAULT_SIZE = (48, 64)  # (height, width)
FOV_DEGREES = 55.0
CAMERA_HEIGHT = 1.45
SUN = np.array([0.45, 0.75, -0.5]) / np.linalg.norm([0.45, 0.75, -0.5])
SOFT_SHADOW_SAMPLES = 6
SUN_SPREAD = 0.09  # radians of jitter around the sun direction for the soft shadow
GRAIN = 1.5 / 255  # sensor noise and grain, the unpredictable part of the "real" look
PROMPT = RealifyConfig().prompt  # the daemon's default prompt, so `c2r realify` without --prompt matches training
SKY, FLOOR = 0, 1  # object ids; objects start at 2


# --------------------------------------------------------------------------- primitives
def _hit_ellipsoid(origin, dirs, center, radii):
    """Ray/ellipsoid: (t (N,), smooth normal (N, 3)); t = inf on a miss."""
    o = (origin - center) / radii
    d = dirs / radii
    a = (d * d).sum(-1)
    b = (d * o).sum(-1)
    c = (o * o).sum(-1) - 1.0
    disc = b * b - a * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / a
    t = np.where((disc > 0) & (t > 1e-4), t, np.inf)
    points = origin + dirs * np.where(np.isfinite(t), t, 0.0)[:, None]
    normal = (points - center) / radii**2
    return t, normal / np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)


def _hit_box(origin, dirs, center, half):
    """Ray/axis-aligned box (slab test): (t, face normal)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (center - half - origin) / dirs
        t2 = (center + half - origin) / dirs
    near = np.minimum(t1, t2)
    enter, leave = np.nanmax(near, axis=-1), np.nanmin(np.maximum(t1, t2), axis=-1)
    t = np.where((enter < leave) & (enter > 1e-4), enter, np.inf)
    axis = np.nanargmax(near, axis=-1)
    normal = np.zeros_like(dirs)
    np.put_along_axis(normal, axis[:, None], -np.sign(np.take_along_axis(dirs, axis[:, None], -1)), -1)
    return t, normal


def _hit_floor(origin, dirs):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origin[..., 1] / dirs[:, 1]
    t = np.where(t > 1e-4, t, np.inf)
    return t, np.broadcast_to(np.array([0.0, 1.0, 0.0]), dirs.shape)


def _facet(normal, steps: int = 6):
    """Low-poly look: snap a smooth normal to a polyhedron's facets (azimuth x elevation bins)."""
    azimuth = np.arctan2(normal[:, 2], normal[:, 0])
    elevation = np.arcsin(np.clip(normal[:, 1], -1, 1))
    azimuth = (np.floor(azimuth / (np.pi / steps)) + 0.5) * (np.pi / steps)
    elevation = np.clip((np.floor(elevation / (np.pi / steps)) + 0.5) * (np.pi / steps), -np.pi / 2, np.pi / 2)
    return np.stack([np.cos(elevation) * np.cos(azimuth), np.sin(elevation), np.cos(elevation) * np.sin(azimuth)], -1)


@dataclass(frozen=True)
class Part:
    """One primitive of an object at one frame."""

    kind: str  # "box" | "ellipsoid"
    center: np.ndarray
    size: np.ndarray  # half extents (box) or radii (ellipsoid)
    albedo: np.ndarray
    material: str  # "wood" | "marble" | "fabric" | "skin"
    object_id: int
    figure: bool = False


def _value_noise(p: np.ndarray, seed: float) -> np.ndarray:
    """Smooth 2-D value noise in [0, 1] at points (N, 2): a hash of the integer lattice, blended."""
    cell, frac = np.floor(p), p - np.floor(p)
    frac = frac * frac * (3 - 2 * frac)

    def hashed(offset):
        q = cell + offset
        return np.modf(np.sin(q[:, 0] * 127.1 + q[:, 1] * 311.7 + seed * 74.7) * 43758.5453)[0] % 1.0

    a, b = hashed(np.array([0, 0])), hashed(np.array([1, 0]))
    c, d = hashed(np.array([0, 1])), hashed(np.array([1, 1]))
    top = a + (b - a) * frac[:, 0]
    bottom = c + (d - c) * frac[:, 0]
    return top + (bottom - top) * frac[:, 1]


def _texture(material: str, local: np.ndarray, seed: float) -> np.ndarray:
    """Brightness multiplier (N,) of a procedural material at object-space points (N, 3)."""
    if material == "wood":
        rings = 0.5 + 0.5 * np.sin(local[:, 0] * 9.0 + 3.0 * _value_noise(local[:, [1, 2]] * 3.0, seed))
        return 0.72 + 0.28 * rings
    if material == "marble":
        veins = np.abs(np.sin(local[:, 0] * 6.0 + local[:, 1] * 4.0 + 4.0 * _value_noise(local[:, [0, 2]] * 2.5, seed)))
        return 0.68 + 0.32 * veins
    if material == "fabric":
        return 0.82 + 0.18 * (0.5 + 0.5 * np.sin(local[:, 1] * 28.0))
    return 0.92 + 0.08 * _value_noise(local[:, [0, 1]] * 8.0, seed)  # skin


def _floor_texture(points: np.ndarray, seed: float) -> np.ndarray:
    """Tiles of 1 m with soft dark grout and mottled stone."""
    xz = points[:, [0, 2]]
    grout = np.minimum(np.abs(xz - np.round(xz)).min(axis=-1) / 0.08, 1.0)
    stone = 0.8 + 0.2 * _value_noise(points[:, [0, 2]] * 1.2, seed)
    return stone * (0.7 + 0.3 * grout)


# --------------------------------------------------------------------------- the scene
class Scene:
    """One seeded scene: camera path, props and figures as functions of the frame index."""

    def __init__(self, seed: int, num_frames: int, size: tuple[int, int] = DEFAULT_SIZE):
        rng = np.random.default_rng(seed)
        self.seed, self.num_frames, self.size = seed, num_frames, size
        self.floor_albedo = rng.uniform(0.45, 0.7, 3)
        self.sky = rng.uniform([0.45, 0.6, 0.8], [0.6, 0.75, 0.95])
        self.camera_speed = rng.uniform(0.5, 1.0) * 2 * np.pi / rng.uniform(90, 160)  # radians of path phase per frame
        self.camera_phase = rng.uniform(0, 2 * np.pi)
        self.camera_sway = rng.uniform(0.6, 1.3)  # metres side to side
        self.pan = np.radians(rng.uniform(6, 14))
        self.props = []
        for k in range(int(rng.integers(3, 6))):
            kind = "box" if rng.random() < 0.5 else "ellipsoid"
            size_ = rng.uniform(0.3, 0.7, 3) if kind == "box" else np.full(3, rng.uniform(0.3, 0.6))
            base = np.array([rng.uniform(-2.8, 2.8), size_[1], rng.uniform(4.0, 9.0)])
            moving = rng.random() < 0.6
            motion = (rng.uniform(-1, 1, 3) * [0.9, 0.0, 0.6] if moving else np.zeros(3), rng.uniform(40, 90), rng.uniform(0, 6.3))
            self.props.append((kind, size_, base, motion, rng.uniform(0.2, 0.95, 3),
                               "wood" if kind == "box" else "marble"))
        count = 1 + num_frames // 80
        starts = np.sort(rng.uniform(0.15, 0.55, count)) if count == 1 else np.linspace(0.12, 0.8, count) + rng.uniform(-0.04, 0.04, count)
        self.figures = []
        for k, start in enumerate(starts):
            side = 1.0 if rng.random() < 0.5 else -1.0
            self.figures.append(dict(
                enter=max(1, int(start * num_frames)), side=side, depth=rng.uniform(4.0, 6.5),
                speed=rng.uniform(0.08, 0.13), shirt=rng.uniform(0.15, 0.9, 3), trousers=rng.uniform(0.1, 0.5, 3),
                skin=rng.uniform([0.55, 0.38, 0.28], [0.85, 0.65, 0.5]), phase=rng.uniform(0, 6.3)))

    # camera ---------------------------------------------------------------------------
    def camera(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(origin (3,), rotation (3, 3): camera -> world; camera looks down its +z)."""
        phase = self.camera_phase + self.camera_speed * t
        origin = np.array([self.camera_sway * np.sin(phase), CAMERA_HEIGHT, 0.6 * np.sin(0.5 * phase)])
        yaw, pitch = self.pan * np.sin(phase + 0.8), np.radians(15.0)  # tilted down at the floor
        cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
        yaw_m = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        pitch_m = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        return origin, yaw_m @ pitch_m

    def rays(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(origin, world directions (H*W, 3), rotation) of frame ``t``."""
        height, width = self.size
        focal = 0.5 * width / np.tan(np.radians(FOV_DEGREES) / 2)
        y, x = np.mgrid[0:height, 0:width] + 0.5
        local = np.stack([(x - width / 2) / focal, -(y - height / 2) / focal, np.ones_like(x)], -1).reshape(-1, 3)
        origin, rotation = self.camera(t)
        dirs = local @ rotation.T
        return origin, dirs / np.linalg.norm(dirs, axis=-1, keepdims=True), rotation

    # objects --------------------------------------------------------------------------
    def parts(self, t: int) -> list[Part]:
        parts = []
        for i, (kind, size, base, (amplitude, period, phase), albedo, material) in enumerate(self.props):
            center = base + amplitude * np.sin(2 * np.pi * t / period + phase)
            parts.append(Part(kind, center, size, albedo, material, 2 + i))
        for j, fig in enumerate(self.figures):
            if t < fig["enter"]:
                continue  # not in the scene yet: it walks in from beside the frame
            parts += self._figure_parts(fig, t, 2 + len(self.props) + j)
        return parts

    def _figure_parts(self, fig: dict, t: int, object_id: int) -> list[Part]:
        """A person-like figure: head, torso, two swinging legs, walking across the view."""
        origin, rotation = self.camera(fig["enter"])
        edge = fig["depth"] * np.tan(np.radians(FOV_DEGREES) / 2) + 0.15  # just outside the frame's side
        start_local = np.array([fig["side"] * edge, 0.0, fig["depth"]])
        walk_dir = rotation @ np.array([-fig["side"], 0.0, 0.0])
        walk_dir[1] = 0.0
        start = origin + rotation @ start_local
        start[1] = 0.0
        feet = start + walk_dir / np.linalg.norm(walk_dir) * fig["speed"] * (t - fig["enter"])
        swing = 0.14 * np.sin(fig["phase"] + 0.55 * (t - fig["enter"]))
        side = np.cross(walk_dir, [0.0, 1.0, 0.0])
        side /= np.linalg.norm(side)
        forward = walk_dir / np.linalg.norm(walk_dir)
        up = np.array([0.0, 1.0, 0.0])
        make = lambda offset, radii, albedo, material: Part("ellipsoid", feet + offset, np.asarray(radii), albedo, material,
                                                            object_id, figure=True)
        return [
            make(up * 1.62, [0.11, 0.13, 0.11], fig["skin"], "skin"),
            make(up * 1.15, [0.2, 0.33, 0.14], fig["shirt"], "fabric"),
            make(up * 0.45 + side * 0.09 + forward * swing, [0.08, 0.42, 0.08], fig["trousers"], "fabric"),
            make(up * 0.45 - side * 0.09 - forward * swing, [0.08, 0.42, 0.08], fig["trousers"], "fabric"),
        ]


def _intersect(parts: list[Part], origin, dirs):
    """Nearest hit: (t, smooth normal, part index; -1 floor, -2 sky)."""
    t, normal = _hit_floor(origin, dirs)
    t, normal = t.copy(), normal.copy()
    index = np.where(np.isfinite(t), -1, -2)
    for i, part in enumerate(parts):
        hit = _hit_box if part.kind == "box" else _hit_ellipsoid
        ti, ni = hit(origin, dirs, part.center, part.size)
        closer = ti < t
        t[closer], normal[closer], index[closer] = ti[closer], ni[closer], i
    return t, normal, index


def _occluded(parts: list[Part], points, direction) -> np.ndarray:
    """Whether a ray from each point towards ``direction`` hits any part (floor excluded: it is below)."""
    blocked = np.zeros(len(points), bool)
    dirs = np.broadcast_to(direction, points.shape)
    for part in parts:
        hit = _hit_box if part.kind == "box" else _hit_ellipsoid
        blocked |= np.isfinite(hit(points, dirs, part.center, part.size)[0])
    return blocked


def _sun_samples() -> np.ndarray:
    """Fixed jittered sun directions for the soft shadow (a ring around the sun)."""
    helper = np.cross(SUN, [0.0, 0.0, 1.0])
    u = helper / np.linalg.norm(helper)
    v = np.cross(SUN, u)
    angles = 2 * np.pi * np.arange(SOFT_SHADOW_SAMPLES) / SOFT_SHADOW_SAMPLES
    dirs = SUN + SUN_SPREAD * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v)
    return dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)


# --------------------------------------------------------------------------- rendering
@dataclass
class TestbedClip:
    """One rendered sequence: the coarse render with its G-buffers and the "real" target."""

    coarse: np.ndarray  # (T, H, W, 3) uint8 sRGB
    real: np.ndarray  # (T, H, W, 3) uint8 sRGB
    depth: np.ndarray  # (T, H, W) float32 view-space distance, inf = sky
    normals: np.ndarray  # (T, H, W, 3) float32 camera-space facet normals, 0 on the sky
    edges: np.ndarray  # (T, H, W) float32 in {0, 1}: depth jumps and object boundaries
    object_ids: np.ndarray  # (T, H, W) int16: 0 sky, 1 floor, 2.. objects
    figure_mask: np.ndarray  # (T, H, W) bool: pixels of person-like figures
    figure_enter: tuple[int, ...]  # the frame each figure enters the scene

    def gbuffers(self) -> GBuffers:
        """The coarse side as the daemon takes it."""
        return GBuffers(color=self.coarse, depth=self.depth, depth_kind="distance", normals=self.normals, edges=self.edges)


def _edges(depth: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """1 on both sides of an object boundary (silhouettes, contacts, the horizon) and where one object's
    surface jumps in depth by more than 10% (self-occlusion); the floor's smooth grazing slope is no edge."""
    out = np.zeros(depth.shape, bool)
    finite = np.where(np.isfinite(depth), depth, 1e6)
    for axis in (0, 1):
        a, b = np.swapaxes(finite, 0, axis), np.swapaxes(ids, 0, axis)
        same_prop = (b[1:] == b[:-1]) & (b[1:] > FLOOR)
        jump = (b[1:] != b[:-1]) | (same_prop & (np.abs(a[1:] - a[:-1]) > 0.1 * np.minimum(a[1:], a[:-1])))
        o = np.swapaxes(out, 0, axis)
        o[1:] |= jump
        o[:-1] |= jump
    return out


def _srgb(linear: np.ndarray) -> np.ndarray:
    c = np.clip(linear, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def render_frame(scene: Scene, t: int) -> dict:
    height, width = scene.size
    origin, dirs, rotation = scene.rays(t)
    parts = scene.parts(t)
    dist, smooth, index = _intersect(parts, origin, dirs)
    hit = index > -2
    points = origin + dirs * np.where(hit, dist, 0.0)[:, None]
    lifted = points + smooth * 1e-3
    facet = smooth.copy()
    ellipsoids = np.array([p.kind == "ellipsoid" for p in parts] + [False, False])[index]  # index -1/-2: floor/sky
    facet[ellipsoids] = _facet(smooth[ellipsoids])

    albedo = np.tile(scene.floor_albedo, (len(dirs), 1))
    texture = np.ones(len(dirs))
    ids = np.where(hit, FLOOR, SKY).astype(np.int16)
    figure = np.zeros(len(dirs), bool)
    floor = index == -1
    texture[floor] = _floor_texture(points[floor], scene.seed)
    for i, part in enumerate(parts):
        on = index == i
        if on.any():
            albedo[on], ids[on], figure[on] = part.albedo, part.object_id, part.figure
            texture[on] = _texture(part.material, (points[on] - part.center) / part.size.max(), scene.seed + part.object_id)

    # coarse: flat albedo, Lambert on facets, one hard shadow ray, flat sky
    hard = ~_occluded(parts, lifted, SUN)
    lambert = np.clip(facet @ SUN, 0, 1)
    coarse = albedo * (0.35 + 0.65 * (lambert * hard))[:, None]
    coarse[~hit] = scene.sky

    # real: textures, sky light + soft sun shadow, specular, haze, grading, noise
    soft = np.mean([~_occluded(parts, lifted, d) for d in _sun_samples()], axis=0)
    sun = np.array([1.0, 0.9, 0.75]) * 1.25 * (np.clip(smooth @ SUN, 0, 1) * soft)[:, None]
    sky_light = scene.sky * 0.55 * (0.6 + 0.4 * smooth[:, 1:2])
    half = SUN - dirs
    half /= np.linalg.norm(half, axis=-1, keepdims=True)
    specular = 0.25 * np.clip((smooth * half).sum(-1), 0, 1) ** 24 * soft
    linear = (albedo * texture[:, None]) ** 2.2 * (sun + sky_light) + specular[:, None]
    yy = np.linspace(1, 0, height).repeat(width)
    sky = (scene.sky ** 2.2) * (0.75 + 0.45 * yy[:, None])
    linear[~hit] = sky[~hit]
    haze = 1 - np.exp(-np.where(hit, dist, 1e3) / 90.0)
    linear = linear * (1 - haze[:, None]) + (scene.sky ** 2.2) * haze[:, None]
    graded = linear * 1.6 / (1 + linear * 1.6)  # filmic shoulder
    graded = graded * np.array([1.06, 1.0, 0.9])  # warm grade
    y, x = np.mgrid[0:height, 0:width]
    vignette = 1 - 0.28 * (((y - height / 2) / height) ** 2 + ((x - width / 2) / width) ** 2).reshape(-1)
    real = _srgb(graded * vignette[:, None])
    luma = real.mean(-1, keepdims=True)
    real = 0.5 + 1.2 * (luma + 1.2 * (real - luma) - 0.5)  # contrast and saturation
    grain = np.random.default_rng([scene.seed, t]).normal(0.0, 1.0, real.shape)
    real = real + GRAIN * grain * (0.6 + 0.4 * real.mean(-1, keepdims=True))

    view_z = np.where(hit, dist * (dirs @ rotation[:, 2]), np.inf).astype(np.float32)
    normals = np.where(hit[:, None], facet @ rotation, 0.0).astype(np.float32)  # world -> camera
    shape = (height, width)
    to_u8 = lambda c: (np.clip(c, 0, 1) * 255).round().astype(np.uint8).reshape(*shape, 3)
    depth = view_z.reshape(shape)
    ids = ids.reshape(shape)
    return dict(coarse=to_u8(_srgb(coarse ** 2.2)), real=to_u8(real), depth=depth, normals=normals.reshape(*shape, 3),
                edges=_edges(depth, ids).astype(np.float32), object_ids=ids, figure_mask=figure.reshape(shape))


def render_clip(seed: int, num_frames: int, size: tuple[int, int] = DEFAULT_SIZE) -> TestbedClip:
    """Render sequence ``seed``: the same (seed, num_frames, size) always gives the same arrays."""
    if num_frames < 1:
        raise ValueError(f"num_frames={num_frames}: render at least one frame")
    height, width = size
    if height < 8 or width < 8:
        raise ValueError(f"size={size}: frames need at least 8x8 pixels (height, width)")
    scene = Scene(seed, num_frames, size)
    frames = [render_frame(scene, t) for t in range(num_frames)]
    stacked = {k: np.stack([f[k] for f in frames]) for k in frames[0]}
    return TestbedClip(**stacked, figure_enter=tuple(f["enter"] for f in scene.figures))


def write_dataset(root: Path, seeds: list[int], num_frames: int, size: tuple[int, int] = DEFAULT_SIZE,
                  fps: int = 16) -> Path:
    """Training pairs in the layout `c2r datagen` writes (pairs.jsonl + clips/<id>/...), read by `c2r train`.

    Clips are PNG folders (lossless): H.264 at this size would move the pixels more than the
    grain and is not bit-reproducible, so training and scoring would see different frames.
    """
    from .clips import write_clip

    root = Path(root)
    records = []
    for seed in seeds:
        clip = render_clip(seed, num_frames, size)
        cid = f"testbed{seed}"
        files = {}
        edges_rgb = np.repeat((clip.edges[..., None] * 255).astype(np.uint8), 3, axis=-1)
        for name, video in (("rendered.mp4", clip.coarse), ("realistic.mp4", clip.real), ("edges.mp4", edges_rgb)):
            folder = f"clips/{cid}/{name.removesuffix('.mp4')}"
            write_clip(root / folder, video, fps)
            files[name] = folder
        depth_file = f"clips/{cid}/depth.npz"
        np.savez_compressed(root / depth_file, depth=clip.depth.astype(np.float16))
        files["depth.npz"] = depth_file
        records.append({"id": cid, "kind": "anchor", "status": "ok", "prompt": PROMPT, "fps": fps, "files": files,
                        "depth_kind": "distance"})
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root
