"""Anchor-parallel long sequences: anchor frames first, then every chunk between two anchors at once.

Sequential chaining (``windows``) makes window k+1 wait for window k's last frames. For a
whole file (a job) the RealMaster sparse-to-dense idea removes that chain at inference: a
short *anchor clip* is realified around every ``every``-th frame first (all of them
independent), then every *chunk* from one anchor to the next is realified independently,
its first frame pinned to the earlier anchor and its last latent frames to the later one
(``pinning``; VACE also keeps them with its mask). Both neighbours of an anchor are
conditioned on the same realified frames, so every seam sits on frames both share, and
the chunks, like the anchors, can run on as many engines or cluster workers as there are.

Layout for anchors a_1 < a_2 < ... (multiples of ``every``, ``every`` a multiple of 4):

    anchor clip j   input [a_j - 4, a_j + 1)   output [a_j, a_j + 1)         (its last latent: 4 frames)
    chunk i         input [a_i, a_{i+1} + 1)   output [a_i + 1, a_{i+1})
                    prefix: frame a_i (one latent), suffix: the anchor clip of a_{i+1} (5 frames)

A chunk's last latent and the anchor clip's are the same (pinned), but Wan's VAE decodes
causally, so the chunk (with its own frames before) and the anchor clip (with one context
frame) decode it to different pictures; a hard cut from one to the other at a_{i+1} - 3 was
the most visible seam (bench_scale's seams). So a chunk's last ``BLEND`` frames cross-fade
from its own decode into the anchor clip's (``emitted``), which reaches the anchor frame
itself, the frame the next chunk starts from.

The first chunk starts at frame 0 without a prefix and the last ends at the clip's end
without a suffix. The outputs tile [0, num_frames): one frame out per frame in.
numpy only: the daemon's front end plans jobs with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .backend import GBuffers, RealifyConfig, WindowRequest
from .windows import Window

ANCHOR_CLIP = 5  # frames an anchor clip spans: one latent frame of context, then the 4 pinned frames
BLEND = 3  # a chunk's last frames before its next anchor, cross-faded into the anchor clip's


@dataclass(frozen=True)
class Piece:
    """One unit of anchor-parallel work: an anchor clip or a chunk."""

    index: int  # unique in the plan: anchor clips first, then chunks (the job store's window number)
    kind: str  # "anchor" or "chunk"
    start: int  # input frames [start, end)
    end: int
    emit_start: int  # output frames [emit_start, emit_end) it contributes
    emit_end: int
    prefix_anchor: int | None = None  # chunk: the anchor frame its first frame is pinned to
    suffix_anchor: int | None = None  # chunk: the anchor whose clip its last latents are pinned to

    @property
    def window(self) -> Window:
        """Where the piece sits in the stream, as the engine and progress reports see a window."""
        return Window(self.index, self.start, self.end, self.start + (self.prefix_anchor is not None))


@dataclass(frozen=True)
class AnchorPlan:
    num_frames: int
    every: int
    anchors: tuple[int, ...]  # anchor frame indices
    pieces: tuple[Piece, ...]  # anchor clips (stage 1), then chunks (stage 2)

    @property
    def anchor_clips(self) -> tuple[Piece, ...]:
        return tuple(p for p in self.pieces if p.kind == "anchor")

    @property
    def chunks(self) -> tuple[Piece, ...]:
        return tuple(p for p in self.pieces if p.kind == "chunk")

    @property
    def hand_overs(self) -> tuple[int, ...]:
        """Output frames where the source changes (the seam metric's frames): where a chunk's
        cross-fade into its next anchor clip starts (a - BLEND) and where the next chunk starts
        (a + 1); the anchor frame a itself comes from the anchor clip both neighbours share."""
        fades = [a - BLEND for a in self.anchors if a - BLEND > 0]
        return tuple(sorted(set(fades + [c.emit_start for c in self.chunks if c.emit_start])))


def anchor_spacing(config: RealifyConfig) -> int:
    return config.anchor_every or config.window - 1


def plan_anchors(num_frames: int, window: int, every: int = 0) -> AnchorPlan:
    """The anchor clips and chunks of a ``num_frames`` clip with ``window``-frame model windows."""
    every = every or window - 1
    if every % 4 or every < 8 or every >= window:
        raise ValueError(f"anchors every {every} frames with {window}-frame windows: use a multiple of 4 from 8 to "
                         f"{window - 1} (a chunk spans every + 1 frames and must fit one window)")
    if num_frames < 1:
        raise ValueError("nothing to realify: the clip has no frames")
    anchors = tuple(range(every, num_frames, every))
    pieces = [Piece(j, "anchor", a - 4, a + 1, a, a + 1) for j, a in enumerate(anchors)]
    bounds = (None, *anchors, None)
    for i, (left, right) in enumerate(zip(bounds[:-1], bounds[1:])):
        start = 0 if left is None else left
        end = num_frames if right is None else right + 1
        emit_start = 0 if left is None else left + 1
        emit_end = num_frames if right is None else right
        if emit_start < emit_end:  # the last anchor may be the clip's last frame: no chunk after it
            pieces.append(Piece(len(pieces), "chunk", start, end, emit_start, emit_end, left, right))
    return AnchorPlan(num_frames, every, anchors, tuple(pieces))


AnchorFrames = Callable[[int, int], np.ndarray]  # realified frames [start, end) of the anchor clips


def piece_request(piece: Piece, clip: GBuffers, config: RealifyConfig, anchor_frames: AnchorFrames) -> WindowRequest:
    """The window a piece runs: its input frames, and for a chunk the anchor frames it is pinned to.

    clip: the whole input (sliced here) or just the piece's frames (``len == piece.end - piece.start``).
    """
    frames = clip if clip.num_frames == piece.end - piece.start else clip.slice(piece.start, piece.end)
    prefix = anchor_frames(piece.prefix_anchor, piece.prefix_anchor + 1) if piece.prefix_anchor is not None else None
    suffix = None
    if piece.suffix_anchor is not None:
        suffix = anchor_frames(piece.suffix_anchor - ANCHOR_CLIP + 1, piece.suffix_anchor + 1)
    return WindowRequest(frames, config, prefix, piece.window, suffix)


def emitted(piece: Piece, frames: np.ndarray, anchor_frames: AnchorFrames) -> np.ndarray:
    """The frames of a piece's result that go to the output: a chunk's last ``BLEND`` cross-faded into its
    next anchor clip's frames (weights 1/4, 2/4, 3/4 of the anchor clip's; the anchor frame is all of it)."""
    out = frames[piece.emit_start - piece.start : piece.emit_end - piece.start]
    if piece.kind != "chunk" or piece.suffix_anchor is None:
        return out
    anchor = piece.suffix_anchor
    theirs = anchor_frames(anchor - BLEND, anchor).astype(np.float32)
    weights = (np.arange(1, BLEND + 1, dtype=np.float32) / (BLEND + 1))[:, None, None, None]
    out = out.copy()
    out[-BLEND:] = np.rint((1 - weights) * out[-BLEND:] + weights * theirs).astype(np.uint8)
    return out


def realify_anchored(run: Callable[[WindowRequest], np.ndarray], clip: GBuffers, config: RealifyConfig) -> np.ndarray:
    """A whole clip anchor-parallel in this process (``run`` = a backend's ``realify_window``).

    The pieces of each stage are independent; here they run one after another. The daemon
    runs them concurrently over its engines, or as Ray tasks (``c2r.daemon.cluster``).
    """
    plan = plan_anchors(clip.num_frames, config.window, config.anchor_every)
    height, width = clip.size
    out = np.empty((clip.num_frames, height, width, 3), np.uint8)
    anchor_out = np.empty_like(out)  # whole anchor clips, including the context frame not emitted

    def anchor_frames(start: int, end: int) -> np.ndarray:
        return anchor_out[start:end]

    for piece in plan.pieces:  # anchor clips come first in the plan
        frames = run(piece_request(piece, clip, config, anchor_frames))
        if piece.kind == "anchor":
            anchor_out[piece.start : piece.end] = frames
        out[piece.emit_start : piece.emit_end] = emitted(piece, frames, anchor_frames)
    return out

