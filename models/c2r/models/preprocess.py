"""G-buffer preprocessing: engine frames in, model-grid condition videos out, and back.

Everything works on a whole window at once, in torch, on whatever device the model uses, so
the daemon's engine process never round-trips frames through the CPU. Two choices shape it:

* The model grid never distorts the picture: frames are scaled (keeping aspect) and then
  padded by replicating the border pixels up to whole transformer tokens (``grid``). Black bars would be read as
  content and painted into; replicated borders are neutral, and ``model_to_frames`` crops
  and rescales exactly back to the engine's size so output frames map 1:1 onto input frames.
* Statistics are per window, never per frame. Depth is normalised by one robust "near"
  percentile over the whole window, so an object at a fixed distance has the same brightness
  in every frame and nothing flickers. The far end is anchored at infinity (inverse depth 0),
  so changes in the far range of one frame (sky, a distant wall) never rescale the others.

Edges combine a Canny detector on the colour with geometric edges from depth jumps and
normal creases: a coarse render's colour is often flat and untextured, and the geometry is
what it really knows.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from .backend import COLOR_SPACES, DEPTH_KINDS, GBuffers
from .grid import Grid, grid_for

CONDITION_KEYS = ("color", "depth", "normals", "edges")

# Fraction of the window's valid inverse-depth samples that may be nearer than "full bright".
DEPTH_NEAR_QUANTILE = 0.99
# torch.quantile refuses very large inputs; a deterministic stride sample is plenty for a percentile.
QUANTILE_MAX_SAMPLES = 1 << 20
# Geometric edge thresholds: relative depth jump between neighbours, and normal crease angle.
DEPTH_EDGE_RELATIVE_JUMP = 0.1
NORMAL_EDGE_DEGREES = 30.0
# Canny thresholds on the gradient of luma in [0, 1] (Sobel / 4: an unblurred unit step scores 1).
CANNY_SIGMA = 1.0
CANNY_LOW = 0.08
CANNY_HIGH = 0.2
# Frames per chunk when deriving edges, to bound the memory of the intermediate maps.
EDGE_CHUNK_FRAMES = 16


# --------------------------------------------------------------------------- grid mapping


def _resize(planes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W), antialiased so downscaling does not alias."""
    if tuple(planes.shape[-2:]) == tuple(size):
        return planes
    return F.interpolate(planes, size=size, mode="bilinear", align_corners=False, antialias=True)


def _to_grid(planes: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(T, C, H, W) at the input size -> (T, C, Hm, Wm): scale, then replicate-pad."""
    scaled = _resize(planes, grid.scaled_size)
    pads = (grid.pad_left, grid.pad_right, grid.pad_top, grid.pad_bottom)
    return F.pad(scaled, pads, mode="replicate") if any(pads) else scaled


def _from_grid(planes: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(T, C, Hm, Wm) -> (T, C, H, W): crop the padding, scale back to the input size."""
    rows = slice(grid.pad_top, grid.pad_top + grid.scaled_height)
    cols = slice(grid.pad_left, grid.pad_left + grid.scaled_width)
    cropped = planes[..., rows, cols]
    return _resize(cropped, (grid.height, grid.width))


def _on_device(array: np.ndarray, device) -> torch.Tensor:
    """A numpy plane as a tensor on ``device``; read-only or strided views (flipped, wire buffers) are copied first."""
    array = np.asarray(array)
    if not (array.flags.c_contiguous and array.flags.writeable):
        array = np.ascontiguousarray(array).copy()
    return torch.from_numpy(array).to(device)


def _to_video(planes: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(T, C, H, W) in [0, 1] -> (1, 3, T, H, W) in [-1, 1] (single channels repeated)."""
    video = planes.clamp(0, 1).mul(2).sub(1).expand(-1, 3, -1, -1)
    return video.permute(1, 0, 2, 3).unsqueeze(0).to(dtype).contiguous()


def _check_grid_size(name: str, array_shape: tuple[int, ...], grid: Grid) -> None:
    if tuple(array_shape[1:3]) != (grid.height, grid.width):
        raise ValueError(
            f"{name} frames are {array_shape[1]}x{array_shape[2]} but the grid was made for "
            f"{grid.height}x{grid.width}: build the grid with grid_for(height, width, resolution) of these frames"
        )


def frames_to_model(frames: np.ndarray, grid: Grid, device="cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(T, H, W, 3) uint8 sRGB frames -> (1, 3, T, Hm, Wm) in [-1, 1] on the model grid."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) uint8 sRGB; got shape {frames.shape} dtype {frames.dtype}")
    _check_grid_size("frames", frames.shape, grid)
    planes = _on_device(frames, device).permute(0, 3, 1, 2).float().div(255)
    return _to_video(_to_grid(planes, grid), dtype)


def model_to_frames(video: torch.Tensor, grid: Grid) -> np.ndarray:
    """(1, 3, T, Hm, Wm) in [-1, 1] -> (T, H, W, 3) uint8 at the input size."""
    if video.ndim != 5 or video.shape[0] != 1 or video.shape[1] != 3 or tuple(video.shape[-2:]) != grid.model_size:
        raise ValueError(
            f"video must be (1, 3, T, {grid.model_height}, {grid.model_width}) on this grid; got {tuple(video.shape)}"
        )
    planes = video[0].permute(1, 0, 2, 3).float().add(1).div(2)
    frames = _from_grid(planes, grid).clamp(0, 1).mul(255).round().to(torch.uint8)
    return frames.permute(0, 2, 3, 1).cpu().numpy()


# --------------------------------------------------------------------------- colour


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Scene-linear -> display sRGB in [0, 1] with the IEC 61966-2-1 curve.

    This is the "Standard" view transform of the engines (no filmic shoulder): values above
    1.0 clip to white, negatives and NaN to black, so an LDR render sent as linear half-float
    gives the same image as its sRGB8 twin.
    """
    x = torch.nan_to_num(linear.float(), nan=0.0, posinf=1.0, neginf=0.0).clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(0.0031308).pow(1 / 2.4) - 0.055)


def _color_planes(color: np.ndarray, color_space: str, device) -> torch.Tensor:
    """Engine colour -> (T, 3, H, W) sRGB in [0, 1]."""
    if color_space == "srgb":
        if color.dtype != np.uint8:
            raise ValueError(
                f"color_space='srgb' needs uint8 colour, got {color.dtype}: send 8-bit sRGB, "
                "or float colour with color_space='linear'"
            )
        return _on_device(color, device).permute(0, 3, 1, 2).float().div(255)
    if color.dtype not in (np.float16, np.float32, np.float64):
        raise ValueError(
            f"color_space='linear' needs float16/float32 colour, got {color.dtype}: send scene-linear floats, "
            "or 8-bit colour with color_space='srgb'"
        )
    return linear_to_srgb(_on_device(color, device).permute(0, 3, 1, 2))


def _luma(srgb: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) -> (T, 1, H, W) Rec. 709 luma."""
    weights = srgb.new_tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)
    return (srgb * weights).sum(1, keepdim=True)


# --------------------------------------------------------------------------- depth


def _robust_quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    stride = max(1, values.numel() // QUANTILE_MAX_SAMPLES)
    return torch.quantile(values[::stride], q)


def normalized_inverse_depth(depth: torch.Tensor, depth_kind: str = "distance") -> torch.Tensor:
    """(T, H, W) engine depth -> (T, H, W) inverse depth in [0, 1], near = 1, sky/invalid = 0.

    One scale for the whole window: inverse depth divided by its robust near percentile.
    Sky (+inf distance, or 0 inverse) and broken samples (NaN, zero or negative distance)
    read as infinitely far.
    """
    depth = depth.float()
    if depth_kind == "distance":
        valid = torch.isfinite(depth) & (depth > 0)
        inverse = torch.where(valid, 1.0 / depth.where(valid, torch.ones_like(depth)), torch.zeros_like(depth))
        sky = depth == math.inf
    else:
        valid = torch.isfinite(depth) & (depth >= 0)
        inverse = torch.where(valid, depth, torch.zeros_like(depth))
        sky = depth == 0
    positive = inverse[inverse > 0]
    if positive.numel() == 0:
        if bool((sky | ~valid).all()) and bool(sky.any()):
            return torch.zeros_like(inverse)  # an all-sky window: everything is far
        bad = int((~valid).sum())
        raise ValueError(
            f"depth ({depth_kind}) has no usable sample in this window ({bad} of {depth.numel()} are NaN, "
            "infinite, zero or negative): check the engine's depth pass, or send no depth to skip depth conditioning"
        )
    near = _robust_quantile(positive, DEPTH_NEAR_QUANTILE)
    return (inverse / near).clamp(0, 1)


# --------------------------------------------------------------------------- edges


def _gaussian_blur(planes: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(2 * sigma)))
    x = torch.arange(-radius, radius + 1, device=planes.device, dtype=planes.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = F.pad(planes, (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    return F.conv2d(blurred, kernel.view(1, 1, -1, 1))


def _sobel(planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical gradients of (N, 1, H, W), scaled so a unit step gives 1."""
    kx = planes.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4
    padded = F.pad(planes, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kx.view(1, 1, 3, 3)), F.conv2d(padded, kx.t().reshape(1, 1, 3, 3))


def _shifted(planes: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """planes[y + dy, x + dx] with replicated borders."""
    padded = F.pad(planes, (1, 1, 1, 1), mode="replicate")
    h, w = planes.shape[-2:]
    return padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def _non_max_suppression(magnitude: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """Keep only pixels that are the gradient maximum across the edge (one pixel wide)."""
    angle = torch.rad2deg(torch.atan2(gy, gx)) % 180
    sector = torch.bucketize(angle, angle.new_tensor([22.5, 67.5, 112.5, 157.5])) % 4
    keep = torch.zeros_like(magnitude, dtype=torch.bool)
    # Neighbour offsets (dy, dx) along the gradient for 0, 45, 90 and 135 degrees (y points down).
    for index, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        is_max = (magnitude >= _shifted(magnitude, dy, dx)) & (magnitude > _shifted(magnitude, -dy, -dx))
        keep |= (sector == index) & is_max
    return magnitude * keep


def _hysteresis(strong: torch.Tensor, weak: torch.Tensor) -> torch.Tensor:
    """Keep the weak edge pixels 8-connected to a strong one.

    Weak pixels are a small fraction of a frame, so the growth runs on a graph of just those
    pixels (each one's 8 neighbours found by binary search of their flat indices) instead of
    dilating full frames once per pixel of chain length.
    """
    frames, _, height, width = weak.shape
    index = weak.flatten().nonzero().squeeze(1)  # ascending flat indices of the weak pixels
    reached = strong.flatten()[index]
    if index.numel() == 0:
        return torch.zeros_like(weak)
    frame, y, x = index // (height * width), index // width % height, index % width
    itself = torch.arange(index.numel(), device=index.device)
    neighbours = []
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        ny, nx = y + dy, x + dx
        key = (frame * height + ny.clamp(0, height - 1)) * width + nx.clamp(0, width - 1)
        position = torch.searchsorted(index, key).clamp(max=index.numel() - 1)
        found = (index[position] == key) & (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        neighbours.append(torch.where(found, position, itself))
    neighbours = torch.stack(neighbours, 1)
    while True:
        for _ in range(16):  # several growth steps per convergence check keeps GPU syncs rare
            reached = reached | reached[neighbours].any(1)
        grown = reached | reached[neighbours].any(1)
        if torch.equal(grown, reached):
            break
        reached = grown
    edges = torch.zeros(weak.numel(), dtype=torch.bool, device=weak.device)
    edges[index] = reached
    return edges.view_as(weak)


def canny(
    luma: torch.Tensor,
    low: float = CANNY_LOW,
    high: float = CANNY_HIGH,
    sigma: float = CANNY_SIGMA,
    upscale: float = 1.0,
) -> torch.Tensor:
    """(N, 1, H, W) luma in [0, 1] -> (N, 1, H, W) bool Canny edges.

    ``upscale``: how much the frames were enlarged to reach this grid. Enlarging spreads a
    sharp step over that many pixels, so gradients are measured per source pixel to keep the
    thresholds meaning the same contrast.
    """
    gx, gy = _sobel(_gaussian_blur(luma, sigma))
    thin = _non_max_suppression(torch.hypot(gx, gy) * upscale, gx, gy)
    return _hysteresis(thin >= high, thin >= low)


def depth_edges(inverse: torch.Tensor, relative_jump: float = DEPTH_EDGE_RELATIVE_JUMP) -> torch.Tensor:
    """(N, 1, H, W) inverse depth -> bool, marking the nearer pixel of each depth discontinuity.

    A jump is relative (|d1 - d2| / min(d1, d2) in depth, which equals |i1 - i2| / min(i1, i2)
    in inverse depth), so the same silhouette is found near and far.
    """
    edges = torch.zeros_like(inverse, dtype=torch.bool)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        other = _shifted(inverse, dy, dx)
        jump = (inverse - other) > relative_jump * torch.minimum(inverse, other).clamp_min(0)
        edges |= jump & (inverse > 0)
    return edges


def normal_edges(normals: torch.Tensor, degrees: float = NORMAL_EDGE_DEGREES) -> torch.Tensor:
    """(N, 3, H, W) unit normals -> bool where a neighbour's normal turns more than ``degrees``.

    Pixels without a normal (zero vectors: sky, background) have no creases among themselves;
    a surface pixel next to one is an outline and is marked.
    """
    cos_limit = math.cos(math.radians(degrees))
    has_normal = normals.square().sum(1, keepdim=True) > 0.25
    edges = torch.zeros_like(has_normal)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        cosine = (normals * _shifted(normals, dy, dx)).sum(1, keepdim=True)
        edges |= has_normal & ((cosine < cos_limit) | (_shifted(has_normal.float(), dy, dx) < 0.5))
    return edges


def _derived_edges(
    srgb: torch.Tensor, inverse: torch.Tensor | None, normals: torch.Tensor | None, grid: Grid
) -> torch.Tensor:
    """Colour Canny OR depth discontinuities OR normal creases, chunked over frames."""
    upscale = max(1.0, grid.scaled_height / grid.height, grid.scaled_width / grid.width)
    chunks = []
    for start in range(0, srgb.shape[0], EDGE_CHUNK_FRAMES):
        part = slice(start, start + EDGE_CHUNK_FRAMES)
        edges = canny(_luma(srgb[part]), upscale=upscale)
        if inverse is not None:
            edges |= depth_edges(inverse[part])
        if normals is not None:
            edges |= normal_edges(normals[part])
        chunks.append(edges.float())
    return torch.cat(chunks)


# --------------------------------------------------------------------------- conditions


def _check_plane(name: str, array, shape: tuple[int, ...], layout: str, allow_integer: bool = False) -> None:
    array = np.asarray(array)
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape} but the colour frames need {name} {layout} = {shape}")
    if not (np.issubdtype(array.dtype, np.floating) or (allow_integer and array.dtype == np.uint8)):
        raise ValueError(f"{name} has dtype {array.dtype}: send float16/float32 values")


def validate_clip(clip: GBuffers) -> None:
    """Raise a ValueError naming the plane, the value and the fix for anything malformed."""
    color = np.asarray(clip.color)
    if color.ndim != 4 or color.shape[-1] != 3:
        hint = " (drop the alpha channel)" if color.ndim == 4 and color.shape[-1] == 4 else ""
        raise ValueError(f"color has shape {color.shape}: expected (T, H, W, 3) frames{hint}")
    if color.shape[0] < 1:
        raise ValueError("color has no frames: send at least one frame")
    if clip.color_space not in COLOR_SPACES:
        raise ValueError(f"color_space={clip.color_space!r}: choose one of {COLOR_SPACES}")
    if clip.depth_kind not in DEPTH_KINDS:
        raise ValueError(f"depth_kind={clip.depth_kind!r}: choose one of {DEPTH_KINDS}")
    t, h, w = color.shape[:3]
    if clip.depth is not None:
        _check_plane("depth", clip.depth, (t, h, w), "(T, H, W)")
    if clip.normals is not None:
        _check_plane("normals", clip.normals, (t, h, w, 3), "(T, H, W, 3)")
    if clip.edges is not None:
        _check_plane("edges", clip.edges, (t, h, w), "(T, H, W)", allow_integer=True)


def prepare_conditions(
    clip: GBuffers,
    grid: Grid,
    device="cpu",
    dtype: torch.dtype = torch.float32,
    include: Iterable[str] = CONDITION_KEYS,
) -> dict[str, torch.Tensor]:
    """Condition videos for one window, each (1, 3, T, Hm, Wm) in [-1, 1].

    Keys among ``include``: "color" (sRGB), "depth" (normalised inverse depth, near bright),
    "normals" (xyz as RGB) and "edges" (white on black); depth and normals only when the clip
    has them. Edges are the engine's when it sent some, else derived from colour and geometry.
    """
    include = set(include)
    unknown = include - set(CONDITION_KEYS)
    if unknown:
        raise ValueError(f"unknown condition(s) {sorted(unknown)}: choose among {CONDITION_KEYS}")
    validate_clip(clip)
    _check_grid_size("color", clip.color.shape, grid)

    derive_edges = "edges" in include and clip.edges is None
    srgb = None
    if "color" in include or derive_edges:
        srgb = _to_grid(_color_planes(np.asarray(clip.color), clip.color_space, device), grid)
    inverse = normals = None
    if clip.depth is not None and ({"depth", "edges"} & include):
        depth = _on_device(clip.depth, device)
        inverse = _to_grid(normalized_inverse_depth(depth, clip.depth_kind).unsqueeze(1), grid)
    if clip.normals is not None and ({"normals", "edges"} & include):
        raw = _on_device(clip.normals, device).float().permute(0, 3, 1, 2)
        normals = F.normalize(_to_grid(torch.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0), grid), dim=1)

    conditions = {}
    if "color" in include:
        conditions["color"] = _to_video(srgb, dtype)
    if "depth" in include and inverse is not None:
        conditions["depth"] = _to_video(inverse, dtype)
    if "normals" in include and normals is not None:
        conditions["normals"] = _to_video(normals.add(1).div(2), dtype)
    if derive_edges:
        conditions["edges"] = _to_video(_derived_edges(srgb, inverse, normals, grid), dtype)
    elif "edges" in include:
        given = _on_device(np.asarray(clip.edges, dtype=np.float32), device)
        if np.asarray(clip.edges).dtype == np.uint8:
            given = given / 255
        conditions["edges"] = _to_video(_to_grid(given.nan_to_num(0.0).clamp(0, 1).unsqueeze(1), grid), dtype)
    return conditions
