"""Where realified frames go and how they come back into Blender for A/B comparison.

Frames land in ``realified/`` beside the render output (the folder of Output Properties >
Output path) and keep the scene's frame numbers (``0001.png`` ...), so they line up with the
coarse render in the Image Editor and the Sequencer without any offset bookkeeping.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from .passes import read_image_pixels

SUBFOLDER = "realified"
LAYERS_SUBFOLDER = "layers"  # realified/layers/0001.exr: multilayer EXR, render passes + Realified
LIVE_IMAGE = "coarse2real live"
SEQUENCE_IMAGE = "coarse2real realified"
STRIP_NAME = "coarse2real realified"
COARSE_STRIP = "coarse render"
AB_SCENE = "coarse2real A/B"


def output_folder(scene: bpy.types.Scene) -> Path:
    """``realified/`` in the folder of the scene's render output path."""
    raw = scene.render.filepath
    if raw.startswith("//") and not bpy.data.is_saved:
        raise ValueError(
            f"the render output path {raw!r} is relative to the .blend file, which is not saved yet: "
            "save the file or set an absolute path in Output Properties > Output"
        )
    base = Path(bpy.path.abspath(raw))
    folder = base if raw.endswith(("/", "\\")) or base.is_dir() else base.parent
    return folder / SUBFOLDER


def render_size(scene: bpy.types.Scene) -> tuple[int, int]:
    """(width, height) in pixels of the frames a render of ``scene`` gives (Output Properties > Format)."""
    render = scene.render
    return (max(1, render.resolution_x * render.resolution_percentage // 100),
            max(1, render.resolution_y * render.resolution_percentage // 100))  # fmt: skip


def frame_path(folder: Path, frame: int) -> Path:
    return folder / f"{frame:04d}.png"


def show_live(image: np.ndarray, name: str = LIVE_IMAGE) -> bpy.types.Image:
    """Put an RGB8 frame into an Image datablock an Image Editor can show while the run goes on."""
    height, width, _ = image.shape
    target = bpy.data.images.get(name)
    if target is None or tuple(target.size) != (width, height):
        if target is not None:
            bpy.data.images.remove(target)
        target = bpy.data.images.new(name, width, height, alpha=False)
    rgba = np.ones((height, width, 4), dtype=np.float32)
    rgba[..., :3] = image[::-1] / 255.0
    target.pixels.foreach_set(rgba.ravel())
    target.update()
    for area in _image_editors():
        if area.spaces.active.image is None:  # an empty Image Editor starts following the run
            area.spaces.active.image = target
        area.tag_redraw()
    return target


def _image_editors():
    """Every open Image Editor area (none in background mode)."""
    window_manager = bpy.context.window_manager
    for window in window_manager.windows if window_manager else ():
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                yield area


def load_sequence(folder: Path, frames: list[int]) -> bpy.types.Image | None:
    """The written frames as one image-sequence datablock, shown in every open Image Editor."""
    written = [f for f in frames if frame_path(folder, f).exists()]
    if not written:
        return None
    old = bpy.data.images.get(SEQUENCE_IMAGE)
    if old is not None:
        bpy.data.images.remove(old)
    image = bpy.data.images.load(str(frame_path(folder, written[0])), check_existing=False)
    image.name = SEQUENCE_IMAGE
    image.source = "SEQUENCE"
    for area in _image_editors():
        space = area.spaces.active
        space.image = image
        # Scene frame f shows file f: Blender reads file (f - frame_start + 1 + frame_offset).
        space.image_user.frame_start = written[0]
        space.image_user.frame_offset = written[0] - 1
        space.image_user.frame_duration = len(written)
        space.image_user.use_auto_refresh = True
    return image


def ab_scene(source: bpy.types.Scene) -> bpy.types.Scene:
    """A scene of its own for the comparison, so the artist's scene and its renders stay untouched.

    (Strips in the rendered scene's own Sequencer would replace its 3D render on the next F12.)
    """
    scene = bpy.data.scenes.get(AB_SCENE) or bpy.data.scenes.new(AB_SCENE)
    for attribute in ("resolution_x", "resolution_y", "resolution_percentage", "fps", "fps_base"):
        setattr(scene.render, attribute, getattr(source.render, attribute))
    scene.frame_start, scene.frame_end = source.frame_start, source.frame_end
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = _strips(editor)
    for strip in list(strips):
        strips.remove(strip)
    return scene


def _strips(editor):
    return editor.strips if hasattr(editor, "strips") else editor.sequences  # renamed in Blender 4.4


def add_ab_strips(source: bpy.types.Scene, folder: Path, frames: list[int], movie: Path | None = None):
    """The coarse render (a scene strip) under the realified frames (image or movie strip), frame for frame."""
    written = [f for f in frames if frame_path(folder, f).exists()]
    if not written:
        return None
    scene = ab_scene(source)
    strips = _strips(scene.sequence_editor)
    strips.new_scene(COARSE_STRIP, source, 1, source.frame_start)
    if movie is not None:
        return strips.new_movie(STRIP_NAME, str(movie), 2, written[0])
    strip = strips.new_image(STRIP_NAME, str(frame_path(folder, written[0])), 2, written[0])
    for frame in written[1:]:
        strip.elements.append(frame_path(folder, frame).name)
    return strip


def layers_path(folder: Path, frame: int) -> Path:
    return folder / LAYERS_SUBFOLDER / f"{frame:04d}.exr"


def write_layers(path: Path, layer: str, passes: dict[str, np.ndarray], realified: np.ndarray) -> None:
    """One multilayer EXR: the render passes (Combined, Depth, Normal) of view layer ``layer`` and
    the realified frame as a pass beside them (``<layer>.Realified.R/G/B``), as Blender's own
    multilayer files name channels, so the compositor's Image node offers each pass.

    Realified is converted from sRGB to scene-linear (EXR's convention); it went through the
    scene's view transform on the way to the daemon, so it is display-referred linear light, not
    the render's radiometric Combined. Raises media.MediaError where this Python lacks OpenEXR.
    """
    from c2r.client import media

    channels = {f"{layer}.Combined.{c}": passes["Combined"][..., i] for i, c in enumerate("RGBA")}
    channels[f"{layer}.Depth.Z"] = passes["Depth"]
    channels.update({f"{layer}.Normal.{c}": passes["Normal"][..., i] for i, c in enumerate("XYZ")})
    linear = media.srgb_to_linear(realified)
    channels.update({f"{layer}.Realified.{c}": linear[..., i] for i, c in enumerate("RGB")})
    path.parent.mkdir(parents=True, exist_ok=True)
    media.write_exr(path, channels, half=False)


def write_movie(folder: Path, frames: list[int], fps: float) -> tuple[Path | None, str]:
    """An mp4 of the written frames via coarse2real's media writer, when this Python has PyAV."""
    from c2r.client import media

    written = [f for f in frames if frame_path(folder, f).exists()]
    if not written:
        return None, "movie skipped: no frames came back"
    movie = folder / f"realified_{written[0]:04d}-{written[-1]:04d}.mp4"
    try:
        writer = media.open_writer(movie, fps=fps)
    except media.MediaError as error:  # no PyAV in this Blender's Python
        return None, f"movie skipped: {error}; the PNG sequence is complete"
    try:
        for frame in written:
            writer.write(np.round(read_image_pixels(str(frame_path(folder, frame)))[..., :3] * 255.0).astype(np.uint8))
    finally:
        writer.close()
    return movie, f"movie written: {movie}"
