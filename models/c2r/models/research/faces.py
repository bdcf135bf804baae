"""ArcFace identity similarity between faces in a source video and a generated one.

Used twice: the datagen filter (drop a pair whose *minimum* similarity is under 0.4, the
paper's threshold) and eval (the *mean* over five uniformly sampled frames, the paper's
protocol). The face model (insightface's detector + ArcFace recogniser) is optional; when it
is not installed every score says so as ``status="skipped"`` instead of passing silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class IdentityScore:
    status: str  # "scored" | "no_faces" | "skipped"
    mean: float | None = None
    min: float | None = None
    pairs: int = 0
    reason: str = ""
    per_frame: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"status": self.status, "mean": self.mean, "min": self.min, "pairs": self.pairs, "reason": self.reason}


def load_face_model(name: str = "buffalo_l", device: str = "cpu", root: str = "~/.insightface"):
    """insightface FaceAnalysis (RetinaFace + ArcFace), or None with the reason when absent.

    The model pack must already be in ``root``/models/``name``: insightface would otherwise
    download it on first use, and the research tools never download implicitly.
    """
    try:
        from insightface.app import FaceAnalysis
    except ImportError:
        return None, "insightface is not installed (pip install insightface onnxruntime) - ArcFace identity skipped"
    pack = Path(root).expanduser() / "models" / name
    if not pack.is_dir():
        return None, (f"insightface model pack {name!r} is not in {pack} (fetch it once where there is internet, "
                      "e.g. by running insightface's FaceAnalysis) - ArcFace identity skipped")
    try:
        app = FaceAnalysis(name=name, root=str(Path(root).expanduser()), providers=["CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider"])
        app.prepare(ctx_id=0 if device.startswith("cuda") else -1, det_size=(640, 640))
    except Exception as e:  # model files missing: insightface raises assorted errors
        return None, f"insightface model {name!r} could not load ({e}) - ArcFace identity skipped"
    return app, ""


def _iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_faces(source_faces, generated_faces, min_iou: float = 0.3) -> list[float]:
    """Cosine similarity of each source face and the generated face at the same place (greedy by IoU)."""
    sims, used = [], set()
    for s in source_faces:
        best, best_iou = None, min_iou
        for j, g in enumerate(generated_faces):
            iou = _iou(s.bbox, g.bbox)
            if j not in used and iou >= best_iou:
                best, best_iou = j, iou
        if best is not None:
            used.add(best)
            sims.append(float(np.dot(s.normed_embedding, generated_faces[best].normed_embedding)))
    return sims


def identity_similarity(face_model, source: np.ndarray, generated: np.ndarray, num_frames: int = 5, reason: str = "") -> IdentityScore:
    """ArcFace similarity over ``num_frames`` uniformly sampled frames of two aligned (T, H, W, 3) uint8 clips."""
    if face_model is None:
        return IdentityScore("skipped", reason=reason or "no face model loaded")
    picks = np.unique(np.linspace(0, len(source) - 1, num_frames).round().astype(int))
    sims: list[float] = []
    for t in picks:
        # insightface expects BGR like OpenCV
        sims += match_faces(face_model.get(source[t][..., ::-1].copy()), face_model.get(generated[t][..., ::-1].copy()))
    if not sims:
        return IdentityScore("no_faces", reason="no face found in both clips at the sampled frames")
    return IdentityScore("scored", mean=float(np.mean(sims)), min=float(np.min(sims)), pairs=len(sims), per_frame=sims)
