"""Anchor-propagation datagen end to end with tiny Qwen-Image-Edit and tiny VACE."""

import json

import numpy as np
import pytest

from c2r.cli.main import main
from c2r.models.research import clips
from c2r.models.research.datagen import DatagenConfig, load_models, read_records, run_datagen

SIZE = 48


def rendered_clip(frames: int, shift: int):
    video = np.zeros((frames, SIZE, SIZE, 3), np.uint8)
    video[:] = (60, 90, 140)
    for t in range(frames):
        video[t, 10:26, 4 + t + shift : 18 + t + shift] = (200, 60, 50)
    return video


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("renders")
    clips.write_clip(folder / "walk.mp4", rendered_clip(9, 0), 16)
    clips.write_clip(folder / "run.mp4", rendered_clip(11, 3), 16)
    depth = np.linspace(2.0, 8.0, SIZE, dtype=np.float32)[None, :, None].repeat(9, 0).repeat(SIZE, 2)
    np.savez(folder / "walk_depth.npz", depth=depth)
    return folder


@pytest.fixture(scope="module")
def anchor_models():
    """Tiny editor + tiny VACE, built once for the module (tests that swap the face model restore it)."""
    return load_models(tiny_config(), need_anchor=True, need_real=True)


def tiny_config():
    return DatagenConfig(editor="tiny", propagator="tiny-vace", edit_steps=2, edit_guidance=1.0, edit_size=(32, 32),
                         vace_steps=2, vace_guidance=1.0, num_frames=9, resolution="native", dtype="float32")


def test_two_clips_become_pairs_then_resume_skips_them(sources, tmp_path, anchor_models):
    config, models = tiny_config(), anchor_models
    todo = [(sources / "walk.mp4", "anchor"), (sources / "run.mp4", "anchor"), (sources / "run.mp4", "real"),
            (sources / "missing.mp4", "anchor")]
    summary = run_datagen(todo, tmp_path, config, models, progress=False)
    assert (summary["ok"], summary["failed"]) == (3, 1)
    assert summary["identity_filter"].startswith("skipped")

    records = read_records(tmp_path)
    walk = next(r for r in records.values() if r["source"].endswith("walk.mp4"))
    assert walk["status"] == "ok" and walk["identity"]["status"] == "skipped" and walk["identity"]["reason"]
    assert walk["frames"] == 9 and walk["fps"] == 16 and walk["depth_kind"] == "distance"
    rendered, _ = clips.read_clip(tmp_path / walk["files"]["rendered.mp4"])
    realistic, _ = clips.read_clip(tmp_path / walk["files"]["realistic.mp4"])
    assert realistic.shape == rendered.shape == (9, SIZE, SIZE, 3)
    assert np.abs(realistic.astype(int) - rendered.astype(int)).mean() > 5  # VACE really regenerated it
    run = next(r for r in records.values() if r["source"].endswith("run.mp4") and r["kind"] == "anchor")
    assert run["frames"] == 9  # 11 frames trimmed to 4k+1 within num_frames
    real = next(r for r in records.values() if r["kind"] == "real")
    assert real["depth_status"].startswith("absent") and "edges.mp4" in real["files"]
    assert real["identity"]["status"] == "not_applicable" and "rendered.mp4" in real["files"]
    footage, _ = clips.read_clip(tmp_path / real["files"]["realistic.mp4"])
    proxy, _ = clips.read_clip(tmp_path / real["files"]["rendered.mp4"])
    assert proxy.shape == footage.shape
    failed = next(r for r in records.values() if r["status"] == "failed")
    assert "missing.mp4" in failed["error"]

    again = run_datagen(todo, tmp_path, config, models, progress=False)
    assert again["skipped_done"] == 3 and again["failed"] == 1
    lines = (tmp_path / "pairs.jsonl").read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(line)["id"] for line in lines)


@pytest.mark.parametrize("generated_embedding, expected", [((0.6, 0.8), "ok"), ((0.3, 0.95), "filtered")])
def test_identity_filter_drops_pairs_under_the_threshold(sources, tmp_path, anchor_models, monkeypatch,
                                                        generated_embedding, expected):
    """A FaceModelDouble stands in for insightface: the source shows face (1, 0), the generated
    frames show ``generated_embedding`` at the same place (cosine 0.6: kept; 0.3: under 0.4)."""

    class Face:
        def __init__(self, embedding):
            self.bbox, self.normed_embedding = (10, 10, 30, 30), np.asarray(embedding, np.float32)

    class FaceModelDouble:
        calls = 0

        def get(self, image_bgr):  # identity_similarity asks source, generated, source, ...
            FaceModelDouble.calls += 1
            return [Face((1.0, 0.0) if FaceModelDouble.calls % 2 else generated_embedding)]

    monkeypatch.setattr(anchor_models, "face_model", FaceModelDouble())
    summary = run_datagen([(sources / "walk.mp4", "anchor")], tmp_path, tiny_config(), anchor_models, progress=False)
    record = next(iter(read_records(tmp_path).values()))
    assert record["identity"]["status"] == "scored"
    assert record["identity"]["min"] == pytest.approx(float(np.dot((1.0, 0.0), generated_embedding)))
    assert record["status"] == expected and summary[expected] == 1
    assert summary["identity_filter"] == "scored"


def test_cli_says_what_is_missing(capsys, tmp_path):
    assert main(["datagen", "--out", str(tmp_path)]) == 2
    assert "rendered clips" in capsys.readouterr().err


def test_real_footage_gets_estimated_depth_and_repeated_frames(tmp_path):
    """A tiny Depth Anything saved locally stands in for the real one (same classes, random weights)."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    backbone = Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, image_size=518,
                            patch_size=14, out_features=["stage1", "stage2"], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 16], reassemble_factors=[2, 1],
                                 fusion_hidden_size=8, head_hidden_size=8, reassemble_hidden_size=16)
    DepthAnythingForDepthEstimation(config).save_pretrained(tmp_path / "depth-model")
    clips.write_clip(tmp_path / "street.mp4", rendered_clip(5, 0), 8)
    datagen_config = DatagenConfig(depth_model=str(tmp_path / "depth-model"), repeat_frames=2, num_frames=81, dtype="float32")
    models = load_models(datagen_config, need_anchor=False, need_real=True)
    summary = run_datagen([(tmp_path / "street.mp4", "real")], tmp_path / "out", datagen_config, models, progress=False)
    assert summary["ok"] == 1
    record = next(iter(read_records(tmp_path / "out").values()))
    assert (record["frames"], record["fps"]) == (9, 16.0)  # 5 frames shown twice = 10 -> 9 (4k+1) at 16 fps
    assert record["depth_status"] == "estimated" and record["depth_kind"] == "inverse"
    with np.load(tmp_path / "out" / record["files"]["depth.npz"]) as archive:
        assert archive["depth"].shape == (9, SIZE, SIZE)


def test_saved_editor_folder_loads_like_the_hub_layout(tmp_path):
    """load_image_editor reads a diffusers folder (tokenizer/, processor/, ...) and edits identically."""
    import torch

    from c2r.models.research.editor import build_tiny_image_editor, edit_keyframes, load_image_editor

    editor = build_tiny_image_editor(seed=3)
    editor.save_pretrained(tmp_path / "editor")
    loaded = load_image_editor(str(tmp_path / "editor"), "cpu", torch.float32)
    keyframes = rendered_clip(2, 0)
    a = edit_keyframes(editor, keyframes, "make it photorealistic", 1, 1.0, "", 0, (32, 32))
    b = edit_keyframes(loaded, keyframes, "make it photorealistic", 1, 1.0, "", 0, (32, 32))
    assert a.shape == keyframes.shape and np.array_equal(a, b)
    with pytest.raises(FileNotFoundError, match="--editor"):
        load_image_editor(str(tmp_path / "nowhere"))


def test_coarse_proxy_flattens_texture_but_keeps_layout():
    from c2r.models.research.datagen import coarse_proxy

    rng = np.random.default_rng(0)
    footage = rendered_clip(2, 0).astype(int) + rng.integers(-40, 40, (2, SIZE, SIZE, 3))
    footage = np.clip(footage, 0, 255).astype(np.uint8)
    proxy = coarse_proxy(footage, levels=6)
    assert proxy.shape == footage.shape
    assert len(np.unique(proxy.reshape(-1, 3), axis=0)) <= 6**3
    assert np.abs(np.diff(proxy.astype(int), axis=2)).mean() < 0.5 * np.abs(np.diff(footage.astype(int), axis=2)).mean()
    box = (slice(None), slice(12, 24), slice(8, 14))  # inside the red box in both frames
    assert proxy[box][..., 0].mean() > proxy[box][..., 2].mean() + 60
