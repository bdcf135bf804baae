"""Reading and writing the files a render pipeline produces: video, PNG/JPG and EXR sequences.

Inputs: a video (PyAV), an image folder or pattern (PNG/JPG through PyAV's image decoders),
an EXR sequence (OpenEXR, scene-linear colour), depth or normals from .npy/.npz/EXR.
Outputs: mp4 at a given fps (PyAV), a PNG sequence, or a half-float EXR sequence.

Sequences are named by a folder (every image in it, in natural order), a glob pattern
(``frames/*.png``) or a frame-number pattern (``frames/f_%04d.png`` or ``frames/f_####.png``).
Frames are read lazily, one at a time, so a long 720p sequence never sits in memory whole.

Shared by both sides of the wire (DESIGN.md's layering): the client CLIs, the Blender add-on
and the research code read and write files with it, and the daemon's job I/O does too. It is
part of the light client, so PyAV and OpenEXR are imported only when a file needs them, and
their absence is a MediaError naming the extra to install.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .png import write_png

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
EXR_SUFFIX = ".exr"
ARRAY_SUFFIXES = (".npy", ".npz")
DEFAULT_SEQUENCE_FPS = 24.0
VIDEO_CODECS = ("libx264", "h264", "mpeg4")  # first one this PyAV build can encode


MEDIA_EXTRA = "pip install 'coarse2real[media]'"  # PyAV + OpenEXR; the daemon extra includes them


class MediaError(ValueError):
    """A file that cannot be read or written as asked; the message names it and what to do."""


def _av():
    """PyAV, for video and PNG/JPG reading and for video writing."""
    try:
        import av
    except ImportError:
        raise MediaError(f"video and PNG/JPG sequences need PyAV, which this Python lacks: {MEDIA_EXTRA}") from None
    return av


def _openexr():
    try:
        import OpenEXR
    except ImportError:
        raise MediaError(f"EXR files need the OpenEXR module, which this Python lacks: {MEDIA_EXTRA}") from None
    return OpenEXR


# ---------------------------------------------------------------------------- sequences


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _pattern_regex(name: str) -> re.Pattern | None:
    """'f_%04d.png' or 'f_####.png' -> a regex matching the numbered files, else None."""
    for token in re.findall(r"%0?\d*d|#+", name):
        head, _, tail = name.partition(token)
        return re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + "$")
    return None


def sequence_files(path: str | Path, suffixes: Sequence[str] = IMAGE_SUFFIXES + (EXR_SUFFIX,)) -> list[Path]:
    """The files of an image sequence named by a folder, a glob or a frame-number pattern."""
    path = Path(path)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix.lower() in suffixes]
    elif any(ch in path.name for ch in "*?["):
        files = [Path(p) for p in glob.glob(str(path))]
    elif (regex := _pattern_regex(path.name)) is not None:
        files = [p for p in path.parent.glob("*") if regex.match(p.name)] if path.parent.is_dir() else []
    else:
        files = [path] if path.is_file() else []
    if not files:
        raise MediaError(f"{path}: no {'/'.join(suffixes)} frames found; give a folder, a glob like frames/*.png or a pattern like frames/f_%04d.png")
    kinds = {p.suffix.lower() in IMAGE_SUFFIXES for p in files}
    if len(kinds) > 1:
        raise MediaError(f"{path}: mixes EXR and PNG/JPG files; point at one kind (e.g. {path}/*.exr)")
    return sorted(files, key=_natural_key)


# ---------------------------------------------------------------------------- EXR


def read_exr(path: str | Path) -> dict[str, np.ndarray]:
    """Every channel of a single-part EXR by its full name ('R', 'Z', 'ViewLayer.Depth.Z', ...)."""
    OpenEXR = _openexr()

    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            return {name: np.asarray(channel.pixels) for name, channel in exr.channels().items()}
    except Exception as error:  # OpenEXR raises plain RuntimeError/ValueError for unreadable files
        raise MediaError(f"{path}: not a readable EXR file ({error})") from None


def write_exr(path: str | Path, channels: dict[str, np.ndarray], half: bool = True) -> None:
    """Write (H, W) channels as one scanline EXR, ZIP compressed, half float by default."""
    OpenEXR = _openexr()

    dtype = np.float16 if half else np.float32
    pixels = {name: np.ascontiguousarray(plane, dtype=dtype) for name, plane in channels.items()}
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, pixels) as exr:
        exr.write(str(path))


def pick_channels(available: dict[str, np.ndarray], wanted: Sequence[Sequence[str]], path: Path) -> np.ndarray:
    """Stack the first group of ``wanted`` suffixes all present under one layer prefix.

    ``wanted`` is tried in order, e.g. (("R","G","B"),) for colour or (("Z",), ("V",), ("R",))
    for depth; a name matches 'R' exactly or as 'Layer.R'. A file with a single channel is
    that channel whatever its name.
    """
    if len(wanted[0]) == 1 and len(available) == 1:
        return next(iter(available.values()))
    for group in wanted:
        prefixes = sorted({name[: -len(group[0])] for name in available if name.endswith(group[0])}, key=len)
        for prefix in prefixes:
            if prefix and not prefix.endswith("."):
                continue
            if all(prefix + c in available for c in group):
                planes = [available[prefix + c] for c in group]
                return planes[0] if len(planes) == 1 else np.stack(planes, axis=-1)
    names = ", ".join(sorted(available))
    raise MediaError(f"{path}: has channels {names}; expected one of {['/'.join(g) for g in wanted]}")


COLOR_CHANNELS = (("R", "G", "B"),)
DEPTH_CHANNELS = (("Z",), ("depth",), ("Depth",), ("V",), ("Y",), ("R",))
NORMAL_CHANNELS = (("X", "Y", "Z"), ("R", "G", "B"))


# ---------------------------------------------------------------------------- colour input


@dataclass
class Clip:
    """A colour clip ready to stream: its frames are read on iteration, one at a time."""

    path: Path
    num_frames: int
    fps: float
    height: int
    width: int
    color_space: str  # "srgb" (uint8) or "linear" (float16/float32, from EXR)
    _frames: Callable[[], Iterator[np.ndarray]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._frames()

    def __len__(self) -> int:
        return self.num_frames


def _video_clip(path: Path) -> Clip:
    av = _av()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or DEFAULT_SEQUENCE_FPS
            count = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
            height, width = stream.codec_context.height, stream.codec_context.width
    except (av.FFmpegError, IndexError) as error:
        raise MediaError(f"{path}: not a readable video ({error}); give an mp4/mov/mkv, an image folder or an EXR sequence") from None

    def frames() -> Iterator[np.ndarray]:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")

    return Clip(path, count, float(rate), height, width, "srgb", frames)


def read_image(path: Path) -> np.ndarray:
    """One PNG/JPG as (H, W, 3) uint8 sRGB (alpha dropped, 16-bit narrowed)."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            return next(container.decode(video=0)).to_ndarray(format="rgb24")
    except (av.FFmpegError, StopIteration) as error:
        raise MediaError(f"{path}: not a readable image ({error})") from None


def read_exr_color(path: Path) -> np.ndarray:
    rgb = pick_channels(read_exr(path), COLOR_CHANNELS, path)
    return rgb if rgb.dtype in (np.float16, np.float32) else rgb.astype(np.float32)


def _sequence_clip(path: Path, fps: float) -> Clip:
    files = sequence_files(path)
    is_exr = files[0].suffix.lower() == EXR_SUFFIX
    read = read_exr_color if is_exr else read_image
    first = read(files[0])

    def frames() -> Iterator[np.ndarray]:
        for i, file in enumerate(files):
            frame = first if i == 0 else read(file)
            if frame.shape != first.shape:
                raise MediaError(f"{file}: is {frame.shape[1]}x{frame.shape[0]} but {files[0].name} is {first.shape[1]}x{first.shape[0]}; every frame must have one size")
            yield frame

    return Clip(path, len(files), fps, first.shape[0], first.shape[1], "linear" if is_exr else "srgb", frames)


def open_clip(path: str | Path, fps: float | None = None) -> Clip:
    """A video, image folder/pattern or EXR sequence; ``fps`` overrides (sequences default to 24)."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        if not path.is_file():
            raise MediaError(f"{path}: no such video file")
        clip = _video_clip(path)
        if fps:
            clip.fps = fps
        return clip
    return _sequence_clip(path, fps or DEFAULT_SEQUENCE_FPS)


# ---------------------------------------------------------------------------- depth and normals


class PlaneSequence:
    """Per-frame depth (T, H, W) or normals (T, H, W, 3) from an array file or an EXR sequence."""

    def __init__(self, path: str | Path, channels: Sequence[Sequence[str]], key: str):
        self.path = Path(path)
        self._channels = channels
        self._files: list[Path] = []
        self._array: np.ndarray | None = None
        suffix = self.path.suffix.lower()
        if suffix == ".npy":
            self._array = np.load(self.path, mmap_mode="r")
        elif suffix == ".npz":
            with np.load(self.path) as archive:
                names = archive.files
                if not names:
                    raise MediaError(f"{self.path}: the archive holds no arrays; save one named {key!r}")
                self._array = archive[key if key in names else names[0]]
        else:
            self._files = sequence_files(self.path, (EXR_SUFFIX,))

    def __len__(self) -> int:
        return len(self._files) if self._array is None else int(self._array.shape[0])

    def __getitem__(self, index: int) -> np.ndarray:
        if self._array is not None:
            return np.asarray(self._array[index], dtype=np.float32)
        return pick_channels(read_exr(self._files[index]), self._channels, self._files[index]).astype(np.float32)

    def check(self, clip: Clip, what: str) -> "PlaneSequence":
        """Refuse a sequence that does not match the colour clip frame for frame."""
        if len(self) < clip.num_frames:
            raise MediaError(f"{self.path}: {len(self)} {what} frames for {clip.num_frames} colour frames in {clip.path}; give one per frame")
        first = self[0]
        if first.shape[:2] != (clip.height, clip.width):
            raise MediaError(
                f"{self.path}: {what} is {first.shape[1]}x{first.shape[0]} but the colour is {clip.width}x{clip.height}; render both at one size"
            )
        return self


def open_depth(path: str | Path) -> PlaneSequence:
    return PlaneSequence(path, DEPTH_CHANNELS, "depth")


def open_normals(path: str | Path) -> PlaneSequence:
    return PlaneSequence(path, NORMAL_CHANNELS, "normals")


# ---------------------------------------------------------------------------- writing


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    s = image.astype(np.float32) / 255.0
    return np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)


def write_exr_color(path: str | Path, image: np.ndarray) -> None:
    """uint8 sRGB is converted to scene-linear (EXR's convention); float is written as given."""
    rgb = srgb_to_linear(image) if image.dtype == np.uint8 else image
    write_exr(path, {"R": rgb[..., 0], "G": rgb[..., 1], "B": rgb[..., 2]})


class VideoWriter:
    """mp4 (or mov/mkv) at ``fps``; the stream is created at the first frame, which fixes the size."""

    def __init__(self, path: Path, fps: float):
        if fps <= 0:
            raise MediaError(f"fps={fps}: give a positive frame rate")
        self._av = _av()
        self.path = path
        self.count = 0
        self._rate = Fraction(fps).limit_denominator(1001)
        self._container = self._av.open(str(path), "w")
        self._stream = None

    def _open_stream(self, height: int, width: int):
        codec = next(c for c in VIDEO_CODECS if c in self._av.codecs_available)
        stream = self._container.add_stream(codec, rate=self._rate)
        stream.width, stream.height = width, height
        # 4:2:0 needs even sizes; odd ones keep full chroma so the output size equals the input's.
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        return stream

    def write(self, image: np.ndarray) -> None:
        if self._stream is None:
            self._stream = self._open_stream(*image.shape[:2])
        elif image.shape[:2] != (self._stream.height, self._stream.width):
            raise MediaError(f"{self.path}: frame {self.count} is {image.shape[1]}x{image.shape[0]}, the video is {self._stream.width}x{self._stream.height}")
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = self.count
        frame.time_base = 1 / self._rate
        self._container.mux(self._stream.encode(frame))
        self.count += 1

    def close(self) -> None:
        if self._container is None:
            return
        if self._stream is not None:
            self._container.mux(self._stream.encode(None))
        self._container.close()
        self._container = None


class SequenceWriter:
    """Numbered image files from a pattern ('%05d' style) with one writer function per format."""

    def __init__(self, pattern: str, write_one: Callable[[Path, np.ndarray], None]):
        self.pattern = pattern
        self.path = Path(pattern).parent
        self.count = 0
        self._write_one = write_one

    def write(self, image: np.ndarray) -> None:
        self._write_one(Path(self.pattern % self.count), image)
        self.count += 1

    def close(self) -> None:
        pass


def output_pattern(path: Path) -> str:
    """The numbered-file pattern for a sequence output: keep '%04d'/'####', else add '_%05d'."""
    name = re.sub(r"#+", lambda m: f"%0{len(m.group())}d", path.name)
    if not re.search(r"%0?\d*d", name):
        name = f"{path.stem}_%05d{path.suffix}"
    return str(path.with_name(name))


def open_writer(path: str | Path, fps: float = DEFAULT_SEQUENCE_FPS) -> VideoWriter | SequenceWriter:
    """By the output's name: a video suffix -> video; .png/.exr -> numbered files; no suffix -> a PNG folder."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or not suffix:
        path.mkdir(parents=True, exist_ok=True)
        return SequenceWriter(str(path / "%05d.png"), write_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in VIDEO_SUFFIXES:
        return VideoWriter(path, fps)
    if suffix == ".png":
        return SequenceWriter(output_pattern(path), write_png)
    if suffix == EXR_SUFFIX:
        return SequenceWriter(output_pattern(path), write_exr_color)
    raise MediaError(f"{path}: unknown output type {suffix!r}; use .mp4/.mov/.mkv, .png, .exr, or a folder")
