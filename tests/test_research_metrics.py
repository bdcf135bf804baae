"""Eval metrics on synthetic videos whose answers are known."""

import numpy as np
import pytest
import torch

from c2r.models.research import temporal
from c2r.models.windows import plan_windows
from c2r.models.research.evaluate import evaluate_pair, format_table, side_by_side, summarise
from c2r.models.research.faces import identity_similarity
from c2r.models.research.structure import dino_structure_distance


def moving_square(frames=24, size=32, step=1, seed=0):
    """A bright square sliding right over a textured background: smooth, real motion."""
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 90, (size, size, 3), dtype=np.uint8)
    video = np.repeat(background[None], frames, axis=0)
    for t in range(frames):
        x = 2 + t * step % (size - 10)
        video[t, 10:20, x : x + 8] = (220, 180, 60)
    return video


def test_still_video_has_no_flicker_and_perfect_smoothness():
    still = np.repeat(moving_square(1), 12, axis=0)
    assert temporal.temporal_flickering(still) == 1.0
    assert temporal.motion_smoothness(still) == 1.0


def test_shuffled_video_flickers_more_and_is_less_smooth():
    video = moving_square(24)
    shuffled = video[np.random.default_rng(1).permutation(len(video))]
    assert temporal.temporal_flickering(shuffled) < temporal.temporal_flickering(video)
    assert temporal.motion_smoothness(shuffled) < temporal.motion_smoothness(video)
    assert temporal.flicker_excess(shuffled, video) > 0.5
    assert temporal.flicker_excess(video, video) == 0.0


def test_seam_metric_detects_an_injected_seam():
    window, overlap = 9, 1
    video = moving_square(25)
    clean = temporal.seam_flicker(video, window, overlap, reference=video)
    seamed = video.copy()
    emit_starts = [w.emit_start for w in plan_windows(len(video), window, overlap)[1:]]
    for s in emit_starts:
        seamed[s:] = np.clip(seamed[s:].astype(int) + 25, 0, 255).astype(np.uint8)
    result = temporal.seam_flicker(seamed, window, overlap, reference=video)
    assert result["num_seams"] == len(emit_starts) >= 2
    assert result["seam_ratio"] > 10 * max(clean["seam_ratio"] if not np.isnan(clean["seam_ratio"]) else 0, 1)
    assert result["seam_flicker"] > 20 and result["inner_flicker"] < 1
    # windows start at 0, 8, 16: their decodes start chunks at 1, 5 / 13 / 21 (9, 17 are seams)
    assert temporal.chunk_boundaries(25, window, overlap) == [1, 5, 13, 21]
    assert result["chunk_flicker"] < 1 and result["seam_ratio_chunk"] > 20


def test_chunk_ratio_separates_a_codec_step_from_a_stitching_step():
    """A step at every 4-frame chunk start (what the VAE does) raises seam_ratio but not seam_ratio_chunk."""
    window, overlap = 17, 5
    video = moving_square(53)
    stepped = video.copy()
    for s in range(1, 53, 4):  # every window starts on a multiple of 4 here: chunk starts are 1 mod 4 everywhere
        stepped[s:] = np.clip(stepped[s:].astype(int) + 12 * (1 if (s // 4) % 2 else -1), 0, 255).astype(np.uint8)
    result = temporal.seam_flicker(stepped, window, overlap, reference=video)
    assert result["seam_ratio"] > 2.5
    assert result["seam_ratio_chunk"] == pytest.approx(1.0, abs=0.1)


def test_seam_metric_at_anchor_parallel_hand_overs():
    # anchors every 8 frames of 9-frame windows, 33 frames: anchors 8, 16, 24, 32 (the last frame)
    from c2r.models.anchors import BLEND, plan_anchors

    hand_overs = temporal.hand_over_frames(33, 9, anchor_every=8)
    assert hand_overs == [8 - BLEND, 9, 16 - BLEND, 17, 24 - BLEND, 25, 32 - BLEND]
    assert hand_overs == list(plan_anchors(33, 9, 8).hand_overs)
    video = moving_square(33)
    seamed = video.copy()
    for s in hand_overs:  # a jump at each of the plan's hand-overs, none at the sequential plan's
        seamed[s:] = np.clip(seamed[s:].astype(int) + 20, 0, 255).astype(np.uint8)
    at_anchors = temporal.seam_flicker(seamed, 9, 0, reference=video, anchor_every=8)
    assert at_anchors["num_seams"] == len(hand_overs)
    assert at_anchors["seam_flicker"] > 15 and at_anchors["inner_flicker"] < 1
    # chunk 8..17 starts latents at 9 (its seam) and 13 (where its fade into anchor 16 starts): only chunk 0..8's 1 is left
    assert temporal.chunk_boundaries(33, 9, anchor_every=8) == [1]
    assert temporal.chunk_boundaries(250, 17, anchor_every=16)[:4] == [1, 5, 9, 21]
    assert at_anchors["chunk_flicker"] < 1 and at_anchors["seam_ratio_chunk"] > 15
    sequential = temporal.seam_flicker(seamed, 9, 1, reference=video)  # seams at 9, 17, 25 only: diluted
    assert sequential["seam_ratio"] < at_anchors["seam_ratio"]


def test_bad_video_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="uint8"):
        temporal.temporal_flickering(np.zeros((3, 8, 8, 3), np.float32))


def tiny_dino():
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    config = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=56, patch_size=14)
    return Dinov2Model(config).eval()


def test_dino_structure_distance_zero_for_same_clip_and_grows_with_structure_change():
    dino = tiny_dino()
    video = moving_square(4, size=56)
    scrambled = np.ascontiguousarray(np.rot90(video, k=1, axes=(1, 2)))
    assert dino_structure_distance(dino, video, video) == pytest.approx(0.0, abs=1e-9)
    assert dino_structure_distance(dino, video, scrambled) > 0


def test_evaluate_pair_table_and_skipped_identity(tmp_path):
    video = moving_square(17)
    noisy = np.clip(video.astype(int) + np.random.default_rng(2).integers(-30, 30, video.shape), 0, 255).astype(np.uint8)
    row = evaluate_pair("clip", video, noisy, dino=tiny_dino(), face_model=None, face_reason="insightface missing", window=9, overlap=1)
    assert row["arcface"] == "skipped" and row["arcface_detail"]["reason"] == "insightface missing"
    assert row["dino_structure"] > 0 and row["flicker_excess"] > 0
    table = format_table([row, summarise([row])])
    assert "skipped" in table and "dino_structure" in table
    assert side_by_side(video, noisy).shape == (17, 32, 66, 3)
    assert identity_similarity(None, video, noisy).status == "skipped"
    with pytest.raises(ValueError, match="one frame per input"):
        evaluate_pair("bad", video, noisy[:5])


def test_eval_cli_writes_table_csv_json_and_comparison_video(tmp_path, capsys):
    from c2r.cli.main import main
    from c2r.models.research.clips import read_clip, write_clip

    dino_dir = tmp_path / "dino"
    tiny_dino().save_pretrained(dino_dir)
    video = moving_square(17)
    write_clip(tmp_path / "in.mp4", video, 16)
    write_clip(tmp_path / "out.mp4", video[::-1].copy(), 16)
    report = tmp_path / "report"
    args = ["eval", "--inputs", str(tmp_path / "in.mp4"), "--outputs", str(tmp_path / "out.mp4"), "--report", str(report),
            "--dino", str(dino_dir), "--window", "9", "--overlap", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "seam_ratio" in printed and "mean" in printed
    assert (report / "metrics.csv").read_text().count("\n") == 3
    side, _ = read_clip(report / "out_side_by_side.mp4")
    assert side.shape == (17, 32, 66, 3)
    assert main(["eval", "--inputs", str(tmp_path / "in.mp4"), "--outputs", str(tmp_path / "out.mp4"), "--report",
                 str(report), "--dino", str(tmp_path / "nowhere")]) == 2
    assert "--no-dino" in capsys.readouterr().err
    assert main(["eval", "--inputs", str(tmp_path / "in.mp4"), "--outputs", str(tmp_path / "out.mp4"), "--report",
                 str(report), "--no-dino", "--anchor-every", "8"]) == 2
    assert "--anchor-every needs --window" in capsys.readouterr().err
