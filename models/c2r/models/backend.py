"""The one interface the daemon calls for every backend (IC-LoRA on Wan, VACE zero-shot, C2R).

Everything crosses it as numpy in the engine's own size and colour space; resizing to the
model grid, colour conversion and windowing happen behind it. ``realify`` runs a whole clip
window by window through ``realify_window``; the daemon calls ``realify_window`` itself
because frames arrive as a stream.

Typed windows: a window is one ``WindowRequest`` (its planes as ``GBuffers``, the config,
the prefix and where it sits in the stream). The daemon's window loop builds it, the engine
client sends it, the engine hands it to ``Backend.realify_window`` unchanged.

One step-callback convention for every backend (``StepFn``): the backend calls
``on_step(ProgressEvent)`` once when the window starts ("window_started"), after every
denoising step ("step"), with every progressive estimate ("preview", ``event.preview`` set)
and at the end ("window_done"). A caller stops a window by raising ``Cancelled`` from the
callback; the backend lets it propagate and holds no state from the cancelled window.

numpy only (no torch): the daemon's front end imports this module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .grid import RESOLUTIONS
from .windows import Window, plan_windows

COLOR_SPACES = ("srgb", "linear")
# How a depth plane is encoded. "distance": eye/view distance (larger = farther; Blender Z,
# Unity linear eye depth, Unreal SceneDepth); "inverse": disparity-like (larger = nearer).
DEPTH_KINDS = ("distance", "inverse")
ATTENTION_MODES = ("full", "causal-ref")
REFERENCE_CONDITIONS = ("color", "depth", "normals", "edges")
GUIDANCE_MODES = ("apg", "cfg")
# How a long clip's windows depend on each other: "sequential" (window k+1 continues window k's
# last frames; the only choice for a live stream) or "anchors" (anchor frames first, then every
# chunk between two anchors independently, pinned to both: ``c2r.models.anchors``; batch jobs)
CHAININGS = ("sequential", "anchors")


class Cancelled(Exception):
    """Raised inside a backend when the caller's cancel check returns True."""


@dataclass
class GBuffers:
    """A clip of coarse frames as the engine rendered them.

    color:   (T, H, W, 3) uint8 sRGB, or float16/float32 linear (scene-referred) when color_space="linear"
    depth:   (T, H, W) float32; inf/NaN allowed for sky and missing samples
    normals: (T, H, W, 3) float in [-1, 1], any consistent space (camera space preferred)
    edges:   (T, H, W) float in [0, 1], when the engine draws its own (else derived)
    """

    color: np.ndarray
    color_space: str = "srgb"
    depth: np.ndarray | None = None
    depth_kind: str = "distance"
    normals: np.ndarray | None = None
    edges: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.color.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.color.shape[1]), int(self.color.shape[2])

    def slice(self, start: int, end: int) -> "GBuffers":
        def cut(a):
            return None if a is None else a[start:end]

        return replace(self, color=self.color[start:end], depth=cut(self.depth), normals=cut(self.normals), edges=cut(self.edges))


@dataclass
class RealifyConfig:
    """Every setting of a realify run, validated in one place (``validate``).

    A field that shares its name with a SessionConfig knob (coarse2real.proto) is set from
    the wire by the daemon and echoed back; a new knob is the .proto field plus one here.
    """

    prompt: str = "photorealistic video, natural lighting, real materials, film grain"
    negative_prompt: str = "cartoon, CG render, video game, plastic, blurry, low quality"
    steps: int = 30
    guidance: float = 5.0  # <= 1.0 turns classifier-free guidance off (one branch per step)
    shift: float | None = None  # flow-matching timestep shift; None: the model's release value (A14B 12, others 5)
    guidance_2: float | None = None  # A14B's low-noise expert; None: the model's (Wan2.2: 3.0), or ``guidance``
    seed: int = 0
    strength: float = 1.0  # 1.0: start from noise; < 1.0: start from the noised input (lighter edit)
    window: int = 81
    overlap: int = 9
    resolution: str = "480p"  # "480p", "720p" or "native" (only padded to the model grid)
    reference: tuple[str, ...] = ("color",)  # conditions that become IC-LoRA reference tokens
    reference_downscale: int = 1  # >1: reference clips at 1/n size each side (n^2 fewer tokens), positions rescaled
    attention_mode: str = "full"  # or "causal-ref"; a trained LoRA's metadata overrides it
    preview_every: int = 0  # >0: decode an x0 estimate every k steps and report it as a preview
    # C2R (``guidance`` is its text scale): "apg" (adaptive projected guidance, released) or "cfg"
    guidance_mode: str = "apg"
    control_scale: float = 1.0  # C2R: weight of the control (DINO features) term
    input_fps: float = 0.0  # the frames' rate; C2R resamples to its 16 fps and back (0: already 16 fps)
    chaining: str = "sequential"  # or "anchors" (jobs only), see CHAININGS
    anchor_every: int = 0  # "anchors": frames between anchors, a multiple of 4 (0: window - 1)

    def validate(self) -> "RealifyConfig":
        from .windows import validate_window

        validate_window(self.window, self.overlap)
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution={self.resolution!r}: choose one of {RESOLUTIONS}")
        if self.steps < 1:
            raise ValueError(f"steps={self.steps}: use at least 1 denoising step")
        if self.shift is not None and self.shift <= 0:
            raise ValueError(f"shift={self.shift}: the timestep shift must be positive (Wan uses 3 to 12), or None")
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength={self.strength}: use a value in (0, 1]; 1.0 ignores the input colours' noise level")
        if self.attention_mode not in ATTENTION_MODES:
            raise ValueError(f"attention_mode={self.attention_mode!r}: choose one of {ATTENTION_MODES}")
        if self.reference_downscale not in (1, 2, 4):
            raise ValueError(f"reference_downscale={self.reference_downscale}: use 1 (full size), 2 or 4")
        if self.guidance_mode not in GUIDANCE_MODES:
            raise ValueError(f"guidance_mode={self.guidance_mode!r}: choose one of {GUIDANCE_MODES}")
        if self.control_scale < 0:
            raise ValueError(f"control_scale={self.control_scale}: use a value >= 0 (1.0 as released; 0 ignores the render)")
        if self.input_fps < 0:
            raise ValueError(f"input_fps={self.input_fps}: give the frames' rate in frames per second (0: the model's own)")
        if self.chaining not in CHAININGS:
            raise ValueError(f"chaining={self.chaining!r}: choose one of {CHAININGS}")
        if self.chaining == "anchors" and self.window < 9:
            raise ValueError(f"chaining='anchors' with window={self.window}: a chunk spans at least 9 frames "
                             "(anchors 8 apart); use window >= 9, or chaining 'sequential'")
        if self.anchor_every and (self.anchor_every % 4 or not 8 <= self.anchor_every < self.window):
            raise ValueError(f"anchor_every={self.anchor_every} with window={self.window}: use 0 (window - 1) or a "
                             f"multiple of 4 from 8 to {self.window - 1} (a chunk spans anchor_every + 1 frames)")
        bad = [r for r in self.reference if r not in REFERENCE_CONDITIONS]
        if bad or not self.reference:
            raise ValueError(f"reference={self.reference}: choose one or more of {REFERENCE_CONDITIONS}")
        return self


# Quality presets: overrides applied over RealifyConfig by the daemon and the CLI.
# "preview" is what Realify shows first: 480p, 4 steps without CFG (a step-distilled LoRA,
# ``Levers.step_lora``, makes 4 steps clean), reference tokens at half size each side (a
# quarter of them), an x0 preview every step; the daemon runs it on the preview backbone
# (``preview_model_for``).
QUALITY_PRESETS: dict[str, dict] = {
    "preview": {"steps": 4, "guidance": 1.0, "resolution": "480p", "preview_every": 1, "reference_downscale": 2},
    "final": {"steps": 30, "guidance": 5.0, "resolution": "720p"},
}


# Models with their own presets (replacing the ones above). C2R as released: 50 steps, shift 5,
# 832x480, APG (control 1, text 10), 81-frame windows, Wan's negative prompt; its preview: 16 steps of CFG at control 1 and
# text 1, i.e. one pass per step (prompt + control) instead of two, and no text guidance.
# Wan's standard negative prompt (Wan2.1's sampling config), which C2R uses as released.
WAN_NEGATIVE_PROMPT = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
                       "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，"
                       "形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")
_C2R_QUALITY = {
    "final": {"negative_prompt": WAN_NEGATIVE_PROMPT, "steps": 50, "shift": 5.0, "resolution": "480p", "window": 81, "guidance_mode": "apg",
              "guidance": 10.0, "control_scale": 1.0},
    "preview": {"negative_prompt": WAN_NEGATIVE_PROMPT, "steps": 16, "shift": 5.0, "resolution": "480p", "window": 81, "guidance_mode": "cfg",
                "guidance": 1.0, "control_scale": 1.0},
}
MODEL_QUALITY_PRESETS: dict[str, dict[str, dict]] = {"c2r": _C2R_QUALITY, "tiny-c2r": _C2R_QUALITY}


# Models that run at a frame rate of their own (C2R: 16 fps, 81 frames). A session or job at
# another rate gets, unless it chose a window, the longest window those 81 frames cover.
MODEL_FRAME_RATES = {"c2r": 16.0, "tiny-c2r": 16.0}


def fit_window_to_rate(config: RealifyConfig, model: str) -> RealifyConfig:
    """``config`` with its window fitted to ``model``'s own frame rate (unchanged for other models)."""
    if model not in MODEL_FRAME_RATES or not config.input_fps:
        return config
    from .frame_rate import longest_window  # plain arithmetic, no torch

    window = longest_window(config.input_fps)
    return replace(config, window=window, overlap=min(config.overlap, window - 4 if window > 4 else 0))


def model_frame_count(model: str, num_frames: int, input_fps: float) -> int:
    """How many frames ``model`` runs for ``num_frames`` input frames (its own rate, for C2R)."""
    if model not in MODEL_FRAME_RATES or not input_fps:
        return num_frames
    from .frame_rate import model_frame_sources

    return len(model_frame_sources(num_frames, input_fps))


# Final model -> preview backbone (same VAE: Wan2.1's 16-channel one). Others preview on themselves
# (Wan2.2 TI2V-5B has its own 48-channel VAE and is already the fast one of its family).
PREVIEW_MODELS = {"wan2.2-t2v-a14b": "wan2.1-t2v-1.3b", "wan2.1-vace-14b": "wan2.1-vace-1.3b", "tiny-a14b": "tiny"}


def preview_model_for(model: str) -> str:
    """The backbone a session's ``preview`` quality runs on when ``model`` is its final model.

    A trained IC-LoRA belongs to one backbone, so a preview on another one runs without it
    (or with a LoRA trained for the preview backbone). Plain data, so the daemon's front end
    (which never imports torch) can decide before a window reaches the engine.
    """
    return PREVIEW_MODELS.get(model, model)


def apply_quality(config: RealifyConfig, quality: str, model: str = "") -> RealifyConfig:
    """``config`` with quality preset ``quality`` applied (``model``'s own presets where it has them)."""
    presets = MODEL_QUALITY_PRESETS.get(model, QUALITY_PRESETS)
    if quality not in presets:
        raise ValueError(f"unknown quality preset {quality!r}: choose one of {sorted(presets)}")
    return replace(config, **presets[quality])


@dataclass
class WindowRequest:
    """One window to realify, as the daemon's window loop, engine client, engine and backends all see it.

    clip:   the window's frames (at most ``config.window``; a shorter last window is padded internally)
    prefix: (P, H, W, 3) uint8 frames already generated for the first P frames of this window by
            the previous one (P == window.prefix_length), or None
    window: where the window sits in the stream (``plan_windows``); None for a standalone clip
            (index 0, frames [0, T))
    suffix: (S, H, W, 3) uint8 frames already generated for the last S frames of this window
            (S = 4j+1; its last j latent frames are pinned, the first frame only gives them
            context), or None. Anchor-parallel chunks (``c2r.models.anchors``) end on their next
            anchor this way; the clip must then have 4k+1 frames (no padding at the end).
    """

    clip: GBuffers
    config: RealifyConfig
    prefix: np.ndarray | None = None
    window: Window | None = None
    suffix: np.ndarray | None = None

    @property
    def index(self) -> int:
        return self.window.index if self.window else 0

    @property
    def span(self) -> tuple[int, int]:
        """[start, end) input frames of this window in its stream."""
        return (self.window.start, self.window.end) if self.window else (0, self.clip.num_frames)


@dataclass
class ProgressEvent:
    kind: str  # "window_started" | "step" | "preview" | "window_done"
    window: int
    step: int = 0
    num_steps: int = 0
    frames: tuple[int, int] = (0, 0)  # [start, end) input frames of this window
    preview: np.ndarray | None = field(default=None, repr=False)  # (T, H, W, 3) uint8 at the input size

    @classmethod
    def of(cls, request: WindowRequest, kind: str, step: int = 0, preview: np.ndarray | None = None,
           num_steps: int | None = None) -> "ProgressEvent":
        """num_steps: the steps the window really runs (fewer than config.steps when strength < 1)."""
        return cls(kind, request.index, step, request.config.steps if num_steps is None else num_steps, request.span, preview)


# The one step callback of every backend: called with each ProgressEvent; raise Cancelled to stop the window.
StepFn = Callable[[ProgressEvent], None]


class StepReporter:
    """A backend's side of the step callback for one window: ``reporter(kind, step, preview)`` sends a
    ProgressEvent (nothing without a callback); ``reporter.pipeline_step`` is the pipelines' per-step hook."""

    def __init__(self, request: WindowRequest, on_step: StepFn | None):
        self.request, self.on_step = request, on_step

    def __call__(self, kind: str, step: int = 0, preview: np.ndarray | None = None, num_steps: int | None = None) -> None:
        if self.on_step is not None:
            self.on_step(ProgressEvent.of(self.request, kind, step, preview, num_steps))

    def pipeline_step(self, step: int, num_steps: int, preview: np.ndarray | None) -> None:
        self("step", step, num_steps=num_steps)
        if preview is not None:
            self("preview", step, preview, num_steps=num_steps)


class Backend(ABC):
    """A loaded (or loadable) model that turns coarse windows into realistic frames."""

    name: str = "backend"

    @abstractmethod
    def load(self, device: str = "cpu", dtype: str = "float32", offload: str = "none") -> None:
        """Put weights on ``device``; offload is "none", "model" or "group"."""

    @abstractmethod
    def unload(self) -> None:
        """Free the weights and device memory."""

    @abstractmethod
    def memory_estimate(self, num_frames: int, height: int, width: int, config: RealifyConfig) -> int:
        """Peak device bytes to run one window of this shape (weights included)."""

    def adopt_plan(self, plan) -> None:
        """Take the run-time levers of a window's ``memory_plan.MemoryPlan`` (default: none to take)."""

    @abstractmethod
    def realify_window(self, request: WindowRequest, on_step: StepFn | None = None) -> np.ndarray:
        """Realify one window of at most ``request.config.window`` frames (any count; padded internally).

        The new frames continue ``request.prefix`` without a seam. ``on_step`` follows the one
        step-callback convention (module docstring). Returns (T, H, W, 3) uint8 sRGB at the
        input size, one frame per input frame.
        """

    def realify(self, clip: GBuffers, config: RealifyConfig, on_step: StepFn | None = None) -> np.ndarray:
        """Realify a clip of any length: windows in order, each continuing the last."""
        config.validate()
        height, width = clip.size
        out = np.empty((clip.num_frames, height, width, 3), np.uint8)
        for w in plan_windows(clip.num_frames, config.window, config.overlap):
            prefix = out[w.start : w.emit_start] if w.prefix_length else None
            frames = self.realify_window(WindowRequest(clip.slice(w.start, w.end), config, prefix, w), on_step)
            out[w.emit_start : w.end] = frames[w.prefix_length :]
        return out
