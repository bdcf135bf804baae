"""Media I/O round trips: what is written reads back with the same frames, rate and values."""

from __future__ import annotations

import subprocess
import sys

import av
import numpy as np
import pytest

from c2r.client import media


def moving_frames(count: int, height: int = 32, width: int = 48) -> np.ndarray:
    """A bright square sliding over a gradient: distinct, codec-friendly frames."""
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        frames[i] = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 60)], -1)
        frames[i, 8:16, 2 * i % width : 2 * i % width + 8] = 250
    return frames


@pytest.mark.parametrize("fps", [24.0, 30000 / 1001])
def test_mp4_round_trip_keeps_frame_count_rate_and_pixels(tmp_path, fps):
    frames = moving_frames(13)
    with_path = tmp_path / "clip.mp4"
    writer = media.open_writer(with_path, fps)
    for frame in frames:
        writer.write(frame)
    writer.close()

    clip = media.open_clip(with_path)
    decoded = np.stack(list(clip))
    assert (clip.num_frames, clip.height, clip.width, clip.color_space) == (13, 32, 48, "srgb")
    assert clip.fps == pytest.approx(fps, rel=1e-4)
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 6  # lossy codec, but the same pictures
    with av.open(str(with_path)) as container:  # an ordinary player sees the same
        assert container.streams.video[0].frames == 13


def test_mp4_with_odd_size_keeps_the_size(tmp_path):
    writer = media.open_writer(tmp_path / "odd.mp4", 12)
    for frame in moving_frames(3, 33, 45):
        writer.write(frame)
    writer.close()
    clip = media.open_clip(tmp_path / "odd.mp4")
    assert (clip.num_frames, clip.height, clip.width) == (3, 33, 45)


@pytest.mark.parametrize("output", ["frames", "shot.png", "shot_####.png", "f_%03d.png"])
def test_png_sequence_round_trip_is_lossless(tmp_path, output):
    frames = moving_frames(5)
    writer = media.open_writer(tmp_path / output)
    for frame in frames:
        writer.write(frame)
    writer.close()
    read_from = tmp_path / output if output == "frames" else tmp_path / "*.png"
    clip = media.open_clip(read_from)
    assert (clip.num_frames, clip.fps) == (5, media.DEFAULT_SEQUENCE_FPS)
    np.testing.assert_array_equal(np.stack(list(clip)), frames)


def test_sequence_order_is_natural_not_lexical(tmp_path):
    frames = moving_frames(12)
    for i, frame in enumerate(frames):
        media.write_png(tmp_path / f"f{i}.png", frame)  # f10 sorts before f2 lexically
    np.testing.assert_array_equal(np.stack(list(media.open_clip(tmp_path / "f%d.png"))), frames)


def test_exr_sequence_is_half_float_linear_and_exact(tmp_path):
    rng = np.random.default_rng(0)
    frames = (rng.random((3, 16, 20, 3)) * 4).astype(np.float16)  # scene-linear, above 1 allowed
    writer = media.open_writer(tmp_path / "beauty.exr")
    for frame in frames:
        writer.write(frame)
    channels = media.read_exr(tmp_path / "beauty_00000.exr")
    assert sorted(channels) == ["B", "G", "R"] and all(c.dtype == np.float16 for c in channels.values())
    clip = media.open_clip(tmp_path / "beauty_%05d.exr")
    assert clip.color_space == "linear"
    np.testing.assert_array_equal(np.stack(list(clip)), frames)


def test_exr_output_of_srgb_frames_is_linearised(tmp_path):
    grey = np.full((4, 4, 3), 188, np.uint8)  # sRGB 188 is about 0.5 linear
    media.write_exr_color(tmp_path / "g.exr", grey)
    assert media.read_exr(tmp_path / "g.exr")["R"][0, 0] == pytest.approx(0.5, abs=0.01)


def test_depth_from_npz_npy_and_exr_layers(tmp_path):
    depth = np.linspace(1, 50, 3 * 8 * 10, dtype=np.float32).reshape(3, 8, 10)
    depth[:, 0, 0] = np.inf  # sky
    np.savez_compressed(tmp_path / "d.npz", depth=depth)
    np.save(tmp_path / "d.npy", depth)
    for i, plane in enumerate(depth):  # a Blender-style multilayer name
        media.write_exr(tmp_path / f"z_{i:03d}.exr", {"ViewLayer.Depth.Z": plane}, half=False)
    for source in ("d.npz", "d.npy", "z_%03d.exr"):
        planes = media.open_depth(tmp_path / source)
        assert len(planes) == 3
        np.testing.assert_array_equal(np.stack([planes[i] for i in range(3)]), depth)


def test_normals_from_exr_xyz_channels(tmp_path):
    normals = np.random.default_rng(1).uniform(-1, 1, (8, 10, 3)).astype(np.float16)
    media.write_exr(tmp_path / "n_0.exr", {"N.X": normals[..., 0], "N.Y": normals[..., 1], "N.Z": normals[..., 2], "A": normals[..., 0]})
    np.testing.assert_array_equal(media.open_normals(tmp_path / "n_0.exr")[0], normals.astype(np.float32))


def test_depth_that_does_not_match_the_clip_is_refused_with_both_sizes(tmp_path):
    for i, frame in enumerate(moving_frames(2)):
        media.write_png(tmp_path / f"c{i}.png", frame)
    clip = media.open_clip(tmp_path / "c*.png")
    np.save(tmp_path / "small.npy", np.ones((2, 16, 24), np.float32))
    with pytest.raises(media.MediaError, match="24x16 but the colour is 48x32"):
        media.open_depth(tmp_path / "small.npy").check(clip, "depth")
    np.save(tmp_path / "short.npy", np.ones((1, 32, 48), np.float32))
    with pytest.raises(media.MediaError, match="1 depth frames for 2 colour frames"):
        media.open_depth(tmp_path / "short.npy").check(clip, "depth")


def test_missing_and_mixed_inputs_say_what_to_give(tmp_path):
    with pytest.raises(media.MediaError, match="no such video"):
        media.open_clip(tmp_path / "nope.mp4")
    with pytest.raises(media.MediaError, match="give a folder, a glob"):
        media.open_clip(tmp_path / "empty_%04d.png")
    media.write_png(tmp_path / "a.png", moving_frames(1)[0])
    media.write_exr_color(tmp_path / "b.exr", moving_frames(1)[0])
    with pytest.raises(media.MediaError, match="mixes EXR and PNG"):
        media.open_clip(tmp_path)
    with pytest.raises(media.MediaError, match="unknown output type"):
        media.open_writer(tmp_path / "out.gif")


def test_the_shipped_example_is_a_consistent_clip_and_depth_pair(tmp_path):
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples"
    clip = media.open_clip(examples / "coarse_cube.mp4")
    depth = media.open_depth(examples / "coarse_cube_depth.npz").check(clip, "depth")
    assert (clip.num_frames, clip.fps, clip.width, clip.height, len(depth)) == (48, 24.0, 128, 96, 48)
    plane = depth[0]
    assert np.isinf(plane[0]).all() and np.isfinite(plane[-1]).all()  # sky at the top, floor at the bottom
    assert sum(p.stat().st_size for p in examples.glob("coarse_cube*")) < 1 << 20


def test_make_example_renders_moving_shapes_with_matching_depth(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "make_example.py"
    spec = importlib.util.spec_from_file_location("make_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    video, depth_path = module.make_example(tmp_path, frames=4, width=64, height=48)
    frames = np.stack(list(media.open_clip(video)))
    depth = media.open_depth(depth_path)
    assert frames.shape == (4, 48, 64, 3) and len(depth) == 4
    assert np.abs(frames[0].astype(int) - frames[1]).mean() > 1  # the shapes move
    plane = depth[0]
    assert np.isinf(plane[0]).all() and (plane[-1] < plane[plane.shape[0] * 2 // 3]).all()  # sky above, floor recedes


def test_media_loads_pyav_and_openexr_only_for_a_file_and_names_the_extra_when_missing(tmp_path):
    """c2r.client.media is part of the light client: importing it pulls neither library, and a
    Python without them (Blender's, a bare client install) gets the extra to install."""
    writer = media.open_writer(tmp_path / "clip.mp4", 12)
    for frame in moving_frames(2):
        writer.write(frame)
    writer.close()
    code = (
        "import sys; sys.modules['av'] = sys.modules['OpenEXR'] = None\n"  # as if neither were installed
        "from c2r.client import media\n"
        "for call in (lambda: media.open_clip(sys.argv[1]), lambda: media.read_exr(sys.argv[2])):\n"
        "    try: call()\n"
        "    except media.MediaError as e: print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "clip.mp4"), str(tmp_path / "x.exr")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [
        "video and PNG/JPG sequences need PyAV, which this Python lacks: pip install 'coarse2real[media]'",
        "EXR files need the OpenEXR module, which this Python lacks: pip install 'coarse2real[media]'",
    ]
    imported = subprocess.run([sys.executable, "-c", "import sys, c2r.client.media; print('av' in sys.modules, 'OpenEXR' in sys.modules)"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert imported == "False False"
