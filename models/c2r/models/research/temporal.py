"""Temporal-consistency metrics on uint8 videos: VBench-style flicker and smoothness, and window seams.

All scores work on (T, H, W, 3) uint8 arrays, so they measure exactly what a viewer sees.

Departures from VBench (Huang et al., 2023), and why:
- Temporal flickering: VBench scores ``(255 - mean |frame_t - frame_{t-1}|) / 255`` on
  static-camera clips it filters with an optical-flow model first. We score every clip as
  given (our clips come from a moving game camera and no flow model ships with the project),
  so the number also contains genuine motion; compare methods on the same inputs, or read
  ``flicker_excess`` (output change minus input change), which cancels the scene's own motion.
- Motion smoothness: VBench drops the odd frames, re-creates them with the AMT frame
  interpolation network and scores ``(255 - MAE) / 255`` against the real odd frames. We do
  the same but re-create each odd frame as the mean of its two neighbours, because AMT is a
  separate 100 MB model that is not part of this project. Linear blending is a weaker
  interpolator, so absolute scores are lower than VBench's; rankings between methods on the
  same inputs are what the metric is for.
"""

from __future__ import annotations

import numpy as np

from c2r.models.windows import plan_windows


def _as_video(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"expected a (T, H, W, 3) uint8 video, got shape {frames.shape} dtype {frames.dtype}: "
            "convert frames to 8-bit RGB first"
        )
    return frames


def frame_changes(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change between consecutive frames, in 0..255: (T-1,)."""
    video = _as_video(frames).astype(np.float32)
    if len(video) < 2:
        return np.zeros(0, np.float32)
    return np.abs(video[1:] - video[:-1]).mean(axis=(1, 2, 3))


def temporal_flickering(frames: np.ndarray) -> float:
    """VBench-style score in [0, 1]: 1 for a still video, lower the more frames jump."""
    changes = frame_changes(frames)
    if changes.size == 0:
        return 1.0
    return float((255.0 - changes.mean()) / 255.0)


def motion_smoothness(frames: np.ndarray) -> float:
    """VBench-style score in [0, 1]: how well each odd frame is predicted from its neighbours."""
    video = _as_video(frames).astype(np.float32)
    if len(video) < 3:
        return 1.0
    odd = np.arange(1, len(video) - 1, 2)
    predicted = (video[odd - 1] + video[odd + 1]) / 2.0
    error = np.abs(predicted - video[odd]).mean()
    return float((255.0 - error) / 255.0)


def hand_over_frames(num_frames: int, window: int, overlap: int = 0, anchor_every: int = 0) -> list[int]:
    """The output frames where one piece of work hands over to the next: each window's first new
    frame (sequential chaining), or with ``anchor_every`` the anchor-parallel plan's hand-overs
    (``anchors.AnchorPlan.hand_overs``)."""
    if anchor_every:
        from ..anchors import plan_anchors

        return list(plan_anchors(num_frames, window, anchor_every).hand_overs)
    return [w.emit_start for w in plan_windows(num_frames, window, overlap)[1:]]


def chunk_boundaries(num_frames: int, window: int, overlap: int = 0, anchor_every: int = 0) -> list[int]:
    """Output frames inside a piece of work where its VAE decode starts a new latent chunk.

    Wan's causal VAE decodes frame 0 alone, then 4 frames per latent: a piece starting at
    input frame ``start`` begins chunks at ``start + 1 + 4j``. Its own seam is not counted (it
    is a hand-over); anchor clips emit only one frame and have none.
    """
    if anchor_every:
        from ..anchors import plan_anchors

        spans = [(p.start, p.emit_start, p.emit_end) for p in plan_anchors(num_frames, window, anchor_every).chunks]
    else:
        spans = [(w.start, w.emit_start, w.end) for w in plan_windows(num_frames, window, overlap)]
    seams = set(hand_over_frames(num_frames, window, overlap, anchor_every))
    return sorted({s for start, emit, end in spans for s in range(start + 1, end, 4) if emit < s and s not in seams})


def seam_flicker(frames: np.ndarray, window: int, overlap: int, reference: np.ndarray | None = None,
                 anchor_every: int = 0) -> dict:
    """Frame change where one window hands over to the next, against the change inside windows.

    ``seam_ratio`` near 1 means the hand-over is invisible; well above 1 means a visible jump.
    When ``reference`` (the input clip) is given, the input's own change at the same frames is
    subtracted first so a cut or fast motion in the scene is not blamed on the windowing.
    ``anchor_every``: the outputs were made anchor-parallel (anchors every so many frames);
    the seams are then that plan's hand-overs (``hand_over_frames``).

    The seams of both plans fall where a window's VAE decode starts a new 4-frame latent chunk,
    and a video VAE's own decode can step there too. ``chunk_flicker`` is the change at the
    chunk starts inside windows (``chunk_boundaries``) and ``seam_ratio_chunk`` = seam / that:
    near 1 when the stitching adds nothing beyond what the codec does at every chunk start.
    """
    changes = frame_changes(frames)
    if reference is not None:
        changes = np.maximum(changes - frame_changes(reference), 0.0)
    seams = hand_over_frames(len(frames), window, overlap, anchor_every)
    # change i is between frame i and i+1; the seam before frame s is change s-1
    seam_idx = np.array([s - 1 for s in seams], dtype=int)
    inside = np.setdiff1d(np.arange(changes.size), seam_idx)
    chunk_idx = np.array([s - 1 for s in chunk_boundaries(len(frames), window, overlap, anchor_every)], dtype=int)
    seam_mean = float(changes[seam_idx].mean()) if seam_idx.size else float("nan")
    inside_mean = float(changes[inside].mean()) if inside.size else float("nan")
    chunk_mean = float(changes[chunk_idx].mean()) if chunk_idx.size else float("nan")
    ratio = seam_mean / max(inside_mean, 1e-6) if seam_idx.size and inside.size else float("nan")
    chunk_ratio = seam_mean / max(chunk_mean, 1e-6) if seam_idx.size and chunk_idx.size else float("nan")
    return {"seam_flicker": seam_mean, "inner_flicker": inside_mean, "seam_ratio": ratio, "num_seams": int(seam_idx.size),
            "chunk_flicker": chunk_mean, "seam_ratio_chunk": chunk_ratio}


def flicker_excess(output: np.ndarray, reference: np.ndarray) -> float:
    """Mean frame change the output adds on top of the input's (0..255); 0 = no extra flicker."""
    return float(np.maximum(frame_changes(output) - frame_changes(reference), 0.0).mean()) if len(output) > 1 else 0.0
