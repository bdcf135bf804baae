"""IC-LoRA training on the tiny model: steps, LoRA into the backend, exact resume, config errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from c2r.models.backend import GBuffers, RealifyConfig, WindowRequest
from c2r.models.backends import create_backend
from c2r.models.lora import read_lora_info
from c2r.models.research import clips
from c2r.models.research.train import Trainer, latest_checkpoint, load_config

FRAMES, SIZE = 9, 32


def shapes_pair(seed: int):
    """A flat-shaded moving box (rendered) and the same box textured (realistic)."""
    rng = np.random.default_rng(seed)
    flat = np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8)
    flat[:] = (40, 60, 90)
    real = np.repeat(rng.integers(50, 120, (1, SIZE, SIZE, 3), dtype=np.uint8), FRAMES, axis=0)
    for t in range(FRAMES):
        x = 2 + t + seed
        flat[t, 8:20, x : x + 10] = (200, 50, 50)
        real[t, 8:20, x : x + 10] = rng.integers(150, 255, (12, 10, 3))
    return flat, real


def write_dataset(root: Path, count: int = 2) -> Path:
    """A dataset folder in the layout `c2r datagen` writes (pairs.jsonl + clips/<id>/*.mp4)."""
    records = []
    for i in range(count):
        flat, real = shapes_pair(i)
        cid = f"shapes{i}"
        files = {}
        for name, video in (("rendered.mp4", flat), ("realistic.mp4", real), ("edges.mp4", np.zeros_like(flat))):
            clips.write_clip(root / "clips" / cid / name, video, 16)
            files[name] = f"clips/{cid}/{name}"
        records.append({"id": cid, "kind": "anchor", "status": "ok", "prompt": "a real photo", "fps": 16, "files": files})
    records.append({"id": "bad", "kind": "anchor", "status": "failed", "error": "for the test"})
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("pairs"))


def tiny_config(**overrides):
    settings = dict(model="tiny", rank=4, num_frames=FRAMES, resolution="native", max_steps=3, warmup_steps=1,
                    checkpoint_every=0, validation_every=0, gradient_checkpointing=False, learning_rate=2e-3)
    return load_config(None, {**settings, **overrides})


def test_paper_defaults_and_config_errors(tmp_path):
    config = load_config()
    assert (config.model, config.rank, config.num_frames, config.reference) == ("wan2.2-t2v-a14b", 32, 81, ("color",))
    assert config.reference_downscales == (1,)
    with pytest.raises(ValueError, match="reference_downscale"):
        load_config(None, {"reference_downscales": [3]})
    with pytest.raises(ValueError, match="unknown training setting"):
        load_config(None, {"rnak": 8})
    with pytest.raises(ValueError, match="4k\\+1"):
        load_config(None, {"num_frames": 80})
    bad = tmp_path / "bad.toml"
    bad.write_text('attention_mode = "sideways"\n')
    with pytest.raises(ValueError, match="attention_mode"):
        load_config(bad)


def test_train_a_few_steps_save_and_load_into_backend(dataset, tmp_path):
    config = tiny_config(attention_mode="causal-ref", reference_downscales=(1, 2), max_steps=4, validation_every=4,
                         validation_steps=2)
    rows = Trainer(config, dataset, tmp_path / "run").train()
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in rows)
    assert {r["reference_downscale"] for r in rows} == {1, 2}  # trains for the preview preset's half-size references
    lora = tmp_path / "run" / "lora"
    info = read_lora_info(lora)
    assert (info.rank, info.attention_mode, info.reference) == (4, "causal-ref", ("color",))
    assert len((tmp_path / "run" / "loss.csv").read_text().splitlines()) == 5
    assert (tmp_path / "run" / "validation" / "step_0000004.mp4").is_file()

    flat, _ = shapes_pair(0)
    clip = GBuffers(color=flat)
    config = RealifyConfig(steps=2, guidance=1.0, window=FRAMES, overlap=0, resolution="native")
    outputs = {}
    for name, path in (("base", None), ("trained", str(lora))):
        backend = create_backend("tiny", lora=path)
        backend.load("cpu")
        outputs[name] = backend.realify_window(WindowRequest(clip, config))
    assert outputs["trained"].shape == flat.shape
    assert np.abs(outputs["trained"].astype(int) - outputs["base"].astype(int)).mean() > 0.5


def test_resume_gives_the_same_next_step_loss(dataset, tmp_path):
    config = tiny_config(max_steps=4, checkpoint_every=3)
    uninterrupted = Trainer(config, dataset, tmp_path / "a").train()
    Trainer(config, dataset, tmp_path / "b").train(stop_after=3)
    assert latest_checkpoint(tmp_path / "b").name == "step_0000003"
    resumed = Trainer(config, dataset, tmp_path / "b")
    assert resumed.resume("latest") == 3
    after = resumed.train()
    assert [r["step"] for r in after] == [4]
    assert after[0]["loss"] == pytest.approx(uninterrupted[3]["loss"], rel=1e-6, abs=1e-7)
    with pytest.raises(ValueError, match="rank"):
        Trainer(tiny_config(max_steps=4, rank=8), dataset, tmp_path / "b").resume("latest")


def test_a14b_trains_one_lora_per_expert_on_its_sigma_range(dataset, tmp_path):
    trainer = Trainer(tiny_config(model="tiny-a14b", max_steps=6, gradient_checkpointing=True), dataset, tmp_path / "run")
    rows = trainer.train()
    for row in rows:
        assert (row["sigma"] >= 0.875) == (row["expert"] == "transformer")
    assert {r["expert"] for r in rows} == {"transformer", "transformer_2"}
    names = sorted(p.name for p in (tmp_path / "run" / "lora").glob("*.safetensors"))
    assert names == ["pytorch_lora_weights.safetensors", "pytorch_lora_weights_transformer_2.safetensors"]


def test_a_pair_without_a_coarse_side_is_refused(tmp_path):
    root = write_dataset(tmp_path / "pairs", count=1)
    records = [json.loads(line) for line in (root / "pairs.jsonl").read_text().splitlines()]
    records[0]["kind"] = "real"
    del records[0]["files"]["rendered.mp4"]
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ValueError, match="no rendered.mp4"):
        Trainer(tiny_config(), root, tmp_path / "run").train()


def test_train_cli_runs_with_overrides(dataset, tmp_path, capsys):
    from c2r.cli.main import main
    from c2r.models.research.cli_train import parse_overrides

    assert parse_overrides(["rank=8", "reference=['edges']", "model=tiny"]) == {"rank": 8, "reference": ["edges"], "model": "tiny"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["rank"])
    sets = ["model=tiny", "rank=2", "num_frames=9", "resolution=native", "max_steps=1", "checkpoint_every=1",
            "validation_every=0", "gradient_checkpointing=False"]
    args = ["train", "--data", str(dataset), "--out", str(tmp_path / "run")] + [a for s in sets for a in ("--set", s)]
    assert main(args) == 0
    assert "LoRA written to" in capsys.readouterr().out
    assert read_lora_info(tmp_path / "run" / "lora").rank == 2
    assert (tmp_path / "run" / "checkpoints" / "step_0000001" / "optimizer.pt").is_file()
