"""G-buffer preprocessing on a synthetic rendered box: edges, depth order, window statistics, grid."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from c2r.models.backend import GBuffers
from c2r.models.preprocess import (
    frames_to_model,
    grid_for,
    model_to_frames,
    normalized_inverse_depth,
    prepare_conditions,
)

BACKGROUND, FRONT, SIDE, TOP = 0, 1, 2, 3
FAR = 10.0


def render_box(frames: int = 5, height: int = 48, width: int = 64, step: int = 2) -> tuple[GBuffers, np.ndarray]:
    """A shaded box (front, right side and top faces) in front of a far plane, moving right.

    Returns the G-buffers and the (T, H, W) face label of every pixel, the ground truth.
    """
    labels = np.full((frames, height, width), BACKGROUND, np.int8)
    depth = np.full((frames, height, width), FAR, np.float32)
    normals = np.zeros((frames, height, width, 3), np.float32)
    normals[..., 2] = 1.0
    shade = np.full((frames, height, width), 0.3, np.float32)
    rows, cols = np.mgrid[0:height, 0:width]
    shade += 0.05 * np.sin(cols / 9.0)  # a soft shading gradient on the wall, not an edge
    faces = {
        FRONT: ((0.0, 0.0, 1.0), 0.8),
        SIDE: ((0.71, 0.0, 0.71), 0.55),
        TOP: ((0.0, -0.71, 0.71), 0.95),
    }
    for t in range(frames):
        x0 = 12 + step * t
        masks = {
            FRONT: (rows >= 16) & (rows < 38) & (cols >= x0) & (cols < x0 + 20),
            SIDE: (rows >= 16) & (rows < 38) & (cols >= x0 + 20) & (cols < x0 + 27),
            TOP: (rows >= 9) & (rows < 16) & (cols >= x0) & (cols < x0 + 27),
        }
        for face, mask in masks.items():
            normal, value = faces[face]
            labels[t][mask] = face
            normals[t][mask] = normal
            shade[t][mask] = value
        depth[t][masks[FRONT]] = 3.0
        depth[t][masks[SIDE]] = (3.0 + (cols - x0 - 20) / 7.0)[masks[SIDE]]
        depth[t][masks[TOP]] = (3.0 + (16 - rows) / 7.0)[masks[TOP]]
    color = np.repeat((shade.clip(0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=-1)
    return GBuffers(color=color, depth=depth, normals=normals), labels


def _boundaries(labels: np.ndarray, between) -> np.ndarray:
    """Pixels whose 4-neighbour has a different label, where between(a, b) holds for the pair."""
    out = np.zeros(labels.shape, bool)
    for axis in (1, 2):
        for shift in (1, -1):
            other = np.roll(labels, shift, axis=axis)
            out |= (labels != other) & between(labels, other)
    # np.roll wraps around; the image border is not a boundary
    out[:, 0, :] = out[:, -1, :] = out[:, :, 0] = out[:, :, -1] = False
    return out


def _dilate(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    t = torch.from_numpy(mask.astype(np.float32)).unsqueeze(1)
    return (torch.nn.functional.max_pool2d(t, 2 * radius + 1, 1, radius) > 0).squeeze(1).numpy()


def _edges(clip: GBuffers) -> np.ndarray:
    grid = grid_for(*clip.size, "native")
    video = prepare_conditions(clip, grid, include=("edges",))["edges"]
    return (video[0, 0] > 0).numpy()


@pytest.mark.parametrize(
    "planes",
    [
        pytest.param(("color", "depth", "normals"), id="all-planes"),
        pytest.param(("color",), id="colour-only-canny"),
        pytest.param(("depth", "normals"), id="geometry-on-flat-colour"),
    ],
)
def test_edges_lie_on_the_box_silhouette(planes):
    clip, labels = render_box()
    if "color" not in planes:  # a flat, untextured render: only the geometry knows the box
        clip = replace(clip, color=np.full_like(clip.color, 128))
    clip = replace(
        clip,
        depth=clip.depth if "depth" in planes else None,
        normals=clip.normals if "normals" in planes else None,
    )
    edges = _edges(clip)

    silhouette = _boundaries(labels, lambda a, b: (a == BACKGROUND) | (b == BACKGROUND)) & (labels != BACKGROUND)
    recall = (_dilate(edges) & silhouette).sum() / silhouette.sum()
    assert recall > 0.9, f"only {recall:.0%} of the silhouette has an edge within a pixel"

    all_boundaries = _dilate(_boundaries(labels, lambda a, b: np.ones_like(a, bool)))
    stray = (edges & ~all_boundaries).sum() / max(1, edges.sum())
    assert stray < 0.05, f"{stray:.0%} of edge pixels are away from any face boundary"
    assert edges.sum() < 0.3 * edges.size


def test_color_edges_survive_upscaling_to_the_model_grid():
    """A small render enlarged ~10x to 480p spreads each step over ten pixels: still one thin edge."""
    clip, labels = render_box(frames=1)
    clip = replace(clip, depth=None, normals=None)
    grid = grid_for(*clip.size, "480p")
    edges = prepare_conditions(clip, grid, include=("edges",))["edges"][0, 0] > 0
    edges = edges[:, grid.pad_top : grid.pad_top + grid.scaled_height, grid.pad_left : grid.pad_left + grid.scaled_width]
    big = torch.nn.functional.interpolate(torch.from_numpy(labels).float().unsqueeze(1), size=grid.scaled_size)
    big = big.squeeze(1).numpy().astype(np.int8)
    silhouette = _boundaries(big, lambda a, b: (a == BACKGROUND) | (b == BACKGROUND)) & (big != BACKGROUND)
    near = _dilate(edges.numpy(), radius=3)
    assert (near & silhouette).sum() / silhouette.sum() > 0.9
    boundaries = _boundaries(big, lambda a, b: np.ones_like(a, bool))  # every face boundary, two pixels wide
    assert edges.float().mean() < boundaries.mean()  # thin lines, not ten-pixel bands


def test_engine_edges_are_used_when_given():
    clip, _ = render_box(frames=2)
    given = np.zeros(clip.color.shape[:3], np.float32)
    given[:, 5, :] = 1.0
    edges = _edges(replace(clip, edges=given))
    assert edges[:, 5, :].all() and edges.sum() == edges[:, 5, :].sum()


def test_inverse_depth_keeps_depth_order():
    clip, labels = render_box()
    depth = prepare_conditions(clip, grid_for(*clip.size, "native"), include=("depth",))["depth"][0, 0].numpy()
    front = depth[labels == FRONT]
    side = depth[labels == SIDE]
    wall = depth[labels == BACKGROUND]
    assert front.min() > side.mean() > wall.max()  # nearer is brighter
    assert front.max() == pytest.approx(1.0) and wall.min() > -1.0  # the wall is finitely far, not sky


def test_inverse_depth_kind_is_honoured():
    clip, _ = render_box(frames=2)
    grid = grid_for(*clip.size, "native")
    from_distance = prepare_conditions(clip, grid, include=("depth",))["depth"]
    inverse = replace(clip, depth=1.0 / clip.depth, depth_kind="inverse")
    from_inverse = prepare_conditions(inverse, grid, include=("depth",))["depth"]
    torch.testing.assert_close(from_inverse, from_distance, atol=1e-5, rtol=0)


def test_sky_and_broken_depth_read_as_far():
    clip, labels = render_box(frames=3)
    depth = clip.depth.copy()
    wall = labels == BACKGROUND
    depth[wall] = np.inf  # sky
    depth[0, :4] = np.nan  # missing samples
    depth[1, :4] = 0.0
    depth[2, :4] = -5.0
    out = prepare_conditions(replace(clip, depth=depth), grid_for(*clip.size, "native"), include=("depth",))["depth"]
    assert torch.isfinite(out).all()
    image = out[0, 0].numpy()
    assert np.all(image[wall] == -1.0)
    assert np.all(image[:, :4] == -1.0)
    assert image[labels == FRONT].min() > 0.9


def test_depth_without_any_usable_sample_is_refused_with_advice():
    clip, _ = render_box(frames=2)
    with pytest.raises(ValueError, match="no usable sample.*send no depth"):
        prepare_conditions(replace(clip, depth=np.full_like(clip.depth, np.nan)), grid_for(*clip.size, "native"))
    all_sky = normalized_inverse_depth(torch.full((2, 4, 4), float("inf")))
    assert torch.equal(all_sky, torch.zeros(2, 4, 4))


def test_depth_statistics_are_per_window_not_per_frame():
    clip, labels = render_box(frames=5)
    grid = grid_for(*clip.size, "native")
    farther = clip.depth.copy()
    farther[2][labels[2] == BACKGROUND] = 4 * FAR  # one frame's far range changes
    before = prepare_conditions(clip, grid, include=("depth",))["depth"][0, 0]
    after = prepare_conditions(replace(clip, depth=farther), grid, include=("depth",))["depth"][0, 0]
    others = [0, 1, 3, 4]
    assert torch.equal(after[others], before[others])  # other frames are not rescaled
    front = torch.from_numpy(labels == FRONT)
    assert torch.equal(after[2][front[2]], before[2][front[2]])  # same distance, same brightness
    assert after[2][torch.from_numpy(labels[2] == BACKGROUND)].max() < before[2].min() + 1.0  # the wall moved away

    nearer = clip.depth.copy()
    nearer[2, :, 50:] = 1.5  # a near pole enters one frame only
    with_pole = prepare_conditions(replace(clip, depth=nearer), grid, include=("depth",))["depth"][0, 0]
    front_brightness = torch.stack([with_pole[t][front[t]].mean() for t in range(5)])
    assert front_brightness[0] < before[0][front[0]].mean() - 0.5  # the whole window was rescaled ...
    torch.testing.assert_close(front_brightness, front_brightness[:1].expand(5))  # ... alike, so no flicker


@pytest.mark.parametrize("size", [(48, 64), (50, 70), (33, 17)])
def test_native_grid_round_trip_is_exact(size):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, *size, 3), dtype=np.uint8)
    grid = grid_for(*size, "native")
    video = frames_to_model(frames, grid)
    assert video.shape == (1, 3, 3, grid.model_height, grid.model_width)
    assert grid.model_height % 16 == 0 and grid.model_width % 16 == 0
    np.testing.assert_array_equal(model_to_frames(video, grid), frames)


def test_padding_replicates_the_border_instead_of_black_bars():
    frames = np.full((1, 50, 70, 3), 200, np.uint8)
    video = frames_to_model(frames, grid_for(50, 70, "native"))
    assert torch.allclose(video, torch.full_like(video, 200 / 255 * 2 - 1))


@pytest.mark.parametrize("resolution", ["480p", "720p"])
def test_preset_grid_keeps_aspect_and_area(resolution):
    for height, width in [(50, 70), (1080, 1920), (1920, 1080), (720, 720)]:
        grid = grid_for(height, width, resolution)
        assert grid.model_height % 16 == 0 and grid.model_width % 16 == 0
        assert grid.scaled_height <= grid.model_height and grid.scaled_width <= grid.model_width
        assert abs(grid.scaled_width / grid.scaled_height - width / height) < 0.02 * width / height
        target = {"480p": 832 * 480, "720p": 1280 * 720}[resolution]
        assert 0.9 < grid.model_height * grid.model_width / target < 1.1


def test_scaled_grid_round_trip_of_an_odd_size():
    t, h, w = 2, 50, 70
    y, x = np.mgrid[0:h, 0:w]
    smooth = 127 + 100 * np.sin(x / 11.0)[None] * np.cos(y / 7.0)[None] * np.array([1, 0.6, -0.8])[:, None, None]
    frames = np.stack([np.moveaxis(smooth + 10 * k, 0, -1) for k in range(t)]).clip(0, 255).astype(np.uint8)
    grid = grid_for(h, w, "480p")
    video = frames_to_model(frames, grid)
    assert video.shape[-2:] == (grid.model_height, grid.model_width) and video.shape[-2] > 10 * h
    back = model_to_frames(video, grid)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames).mean() < 2.0


def test_linear_half_float_color_matches_the_srgb_path():
    clip, _ = render_box(frames=2)
    srgb = clip.color.astype(np.float32) / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4).astype(np.float16)
    grid = grid_for(*clip.size, "480p")
    reference = prepare_conditions(clip, grid, include=("color",))["color"]
    converted = prepare_conditions(replace(clip, color=linear, color_space="linear"), grid, include=("color",))["color"]
    assert (converted - reference).abs().max() < 2 * 2 / 255  # within about a code value (half-float rounding)

    hot = np.zeros((1, 16, 16, 3), np.float16)
    hot[0, :8] = 40.0  # an HDR highlight
    hot[0, 8:, :4] = np.nan
    hot_clip = GBuffers(color=hot, color_space="linear")
    out = prepare_conditions(hot_clip, grid_for(16, 16, "native"), include=("color",))["color"]
    assert torch.all(out[..., :8, :] > 0.9999) and torch.all(out[..., 8:, :] == -1.0)


def test_conditions_have_the_contract_shape_range_and_dtype():
    clip, _ = render_box(frames=3)
    grid = grid_for(*clip.size, "480p")
    conditions = prepare_conditions(clip, grid, dtype=torch.float16)
    assert set(conditions) == {"color", "depth", "normals", "edges"}
    for video in conditions.values():
        assert video.shape == (1, 3, 3, grid.model_height, grid.model_width) and video.dtype == torch.float16
        assert video.min() >= -1 and video.max() <= 1
    assert set(prepare_conditions(replace(clip, depth=None, normals=None), grid)) == {"color", "edges"}


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(color=np.zeros((2, 48, 64, 4), np.uint8)), "drop the alpha"),
        (dict(color=np.zeros((2, 48, 64, 3), np.float32)), "color_space='linear'"),
        (dict(color=np.zeros((2, 48, 64, 3), np.int32), color_space="linear"), "needs float16/float32"),
        (dict(depth=np.ones((3, 48, 64), np.float32)), r"depth has shape \(3, 48, 64\).*\(2, 48, 64\)"),
        (dict(normals=np.ones((2, 48, 64), np.float32)), "normals has shape"),
        (dict(depth_kind="z-buffer"), "depth_kind='z-buffer'"),
        (dict(color_space="acescg"), "color_space='acescg'"),
    ],
)
def test_bad_planes_are_refused_with_the_value_and_the_fix(change, message):
    clip, _ = render_box(frames=2)
    with pytest.raises(ValueError, match=message):
        prepare_conditions(replace(clip, **change), grid_for(48, 64, "native"))


def test_read_only_and_flipped_planes_are_accepted():
    """Wire buffers arrive read-only and engines often hand over vertically flipped views."""
    clip, _ = render_box(frames=2)
    grid = grid_for(*clip.size, "native")
    upright = replace(clip, color=clip.color[:, ::-1].copy(), depth=clip.depth[:, ::-1].copy())
    views = replace(clip, color=clip.color[:, ::-1], depth=clip.depth[:, ::-1])
    views.color.flags.writeable = False
    expected = prepare_conditions(upright, grid)
    for key, video in prepare_conditions(views, grid).items():
        assert torch.equal(video, expected[key]), key


def test_grid_mismatch_and_bad_resolution_are_refused():
    clip, _ = render_box(frames=1)
    with pytest.raises(ValueError, match="grid was made for 50x70"):
        prepare_conditions(clip, grid_for(50, 70, "native"))
    with pytest.raises(ValueError, match="resolution='1080p'"):
        grid_for(48, 64, "1080p")
    with pytest.raises(ValueError, match="uint8"):
        frames_to_model(np.zeros((1, 48, 64, 3), np.float32), grid_for(48, 64, "native"))
